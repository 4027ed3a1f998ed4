// Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay —
// PyTorch's torch.optim.SGD update rule.
#pragma once
#include <vector>

#include "optimizer.hpp"

namespace xgrad::optim {

// Fields in PyTorch's order with its defaults (lr as in this project's API), so that
// `SGD sgd(params, {.lr = 0.1, .momentum = 0.9});` works.
struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

// For each parameter p with gradient g (all arithmetic in p's dtype):
//   g = g + weight_decay * p                           if weight_decay != 0
//   buf = g (first step), else momentum * buf + (1 - dampening) * g      if momentum != 0
//   g = g + momentum * buf (nesterov), else g = buf                      if momentum != 0
//   p = p - lr * g
class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<Tensor> params, SGDOptions options = {});
  SGDOptions options() const;

 protected:
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }
  bool counts_steps() const override { return false; }
  std::vector<std::pair<std::string, std::vector<double>>> hyper_parameters() const override;
  void check_hyper_parameters(const HyperValues& values) const override;
  void apply_hyper_parameters(const HyperValues& values) noexcept override;
  std::vector<std::string> required_buffers(const HyperValues&) const override { return {}; }
  void update(Tensor& param, const Tensor& grad, ParamState& state) override;

 private:
  void check(const SGDOptions& o) const;
  SGDOptions options_;  // lr lives in the base
};

}  // namespace xgrad::optim
