// Adam (with L2 weight decay and AMSGrad) and AdamW (decoupled weight decay) — PyTorch's
// torch.optim.Adam / torch.optim.AdamW update rules.
#pragma once
#include <array>
#include <vector>

#include "optimizer.hpp"

namespace xgrad::optim {

// Fields in PyTorch's order with its defaults: `Adam adam(params, {.lr = 1e-3, .betas = {0.9, 0.99}});`
struct AdamOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
};

// The same fields; weight decay is decoupled (applied to the parameter, not the gradient) and on by default.
struct AdamWOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

// For each parameter p with gradient g at step t (tensor arithmetic in p's dtype, scalars in double):
//   p = p * (1 - lr * weight_decay)                    AdamW only
//   g = g + weight_decay * p                           Adam, if weight_decay != 0
//   m = lerp(m, g, 1 - beta1)                          (m + (1-beta1)(g - m), like PyTorch's lerp_)
//   v = beta2 * v + (1 - beta2) * g * g
//   vmax = max(vmax, v), used instead of v             amsgrad
//   step_size = lr / (1 - beta1^t);  denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p - step_size * m / denom
class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<Tensor> params, AdamOptions options = {});
  AdamOptions options() const;

 protected:
  // For AdamW.
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, std::string name);

  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}; }
  bool counts_steps() const override { return true; }
  std::vector<std::pair<std::string, std::vector<double>>> hyper_parameters() const override;
  void check_hyper_parameters(const HyperValues& values) const override;
  void apply_hyper_parameters(const HyperValues& values) noexcept override;
  std::vector<std::string> required_buffers(const HyperValues& values) const override;
  void update(Tensor& param, const Tensor& grad, ParamState& state) override;

 private:
  void check(const AdamOptions& o) const;
  AdamOptions options_;  // lr lives in the base
  bool decoupled_;       // AdamW
};

class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<Tensor> params, AdamWOptions options = {});
  AdamWOptions options() const;
};

}  // namespace xgrad::optim
