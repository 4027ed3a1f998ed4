#include "utils.hpp"

#include <cmath>

#include "../autograd/detail/op_support.hpp"

namespace xgrad::nn::utils {

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type) {
  if (!(norm_type > 0.0)) detail::fail("clip_grad_norm_: norm_type must be > 0 or INFINITY, got ", norm_type);
  // A negative (or NaN) max_norm would flip (or poison) every gradient instead of clipping it.
  if (!(max_norm >= 0.0)) detail::fail("clip_grad_norm_: max_norm must be >= 0, got ", max_norm);
  const bool max_abs = std::isinf(norm_type);
  double accumulated = 0.0;  // Σ|g|^p, or max |g|
  for (const Tensor& p : parameters) {
    if (!p.defined()) detail::fail("clip_grad_norm_: a parameter is undefined");
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    detail::dispatch(g.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const auto& a = g.data<T>();
      const T* v = a.data();
      for (std::size_t i = 0; i < a.size(); ++i) {
        const double x = std::abs(static_cast<double>(v[i]));
        if (max_abs)
          accumulated = std::max(accumulated, x);
        else if (norm_type == 2.0)
          accumulated += x * x;
        else
          accumulated += std::pow(x, norm_type);
      }
    });
  }
  const double total = max_abs ? accumulated : std::pow(accumulated, 1.0 / norm_type);
  const double coefficient = max_norm / (total + 1e-6);
  if (coefficient < 1.0) {
    NoGradGuard no_grad;
    for (const Tensor& p : parameters) {
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      Tensor handle = p;  // shares p's TensorImpl
      handle.set_grad(g * coefficient);
    }
  }
  return total;
}

}  // namespace xgrad::nn::utils
