// RMSprop with weight decay, momentum and the centered variant — PyTorch's torch.optim.RMSprop update rule.
#pragma once
#include <vector>

#include "optimizer.hpp"

namespace xgrad::optim {

// Fields in PyTorch's order with its defaults: `RMSprop rms(params, {.lr = 1e-3, .momentum = 0.9});`
struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;  // appended, as in PyTorch's signature (lr, alpha, eps, weight_decay, momentum, centered)
};

// For each parameter p with gradient g (tensor arithmetic in p's dtype):
//   g = g + weight_decay * p                           if weight_decay != 0
//   v = alpha * v + (1 - alpha) * g * g
//   if centered:   m = lerp(m, g, 1 - alpha) (m starts at zero: a running mean of the gradient)
//                  avg = sqrt(v - m * m) + eps
//   otherwise:     avg = sqrt(v) + eps
//   buf = momentum * buf + g / avg;  p = p - lr * buf  if momentum > 0 (buf starts at zero)
//   p = p - lr * g / avg                               otherwise
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
  RMSpropOptions options() const;

 protected:
  std::vector<std::string> buffer_names() const override { return {"square_avg", "momentum_buffer", "grad_avg"}; }
  bool counts_steps() const override { return true; }
  std::vector<std::pair<std::string, std::vector<double>>> hyper_parameters() const override;
  void check_hyper_parameters(const HyperValues& values) const override;
  void apply_hyper_parameters(const HyperValues& values) noexcept override;
  std::vector<std::string> required_buffers(const HyperValues& values) const override;
  void update(Tensor& param, const Tensor& grad, ParamState& state) override;

 private:
  void check(const RMSpropOptions& o) const;
  RMSpropOptions options_;  // lr lives in the base
};

}  // namespace xgrad::optim
