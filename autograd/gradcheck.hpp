// Gradient checking as a user tool: compares the analytical Jacobian (the engine's) with central
// finite differences, in float64.
#pragma once
#include <functional>
#include <type_traits>
#include <vector>

#include "tensor.hpp"

namespace xgrad {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // |analytical - numerical| <= atol + rtol * |numerical|
  double rtol = 1e-3;
  bool raise = true;   // throw xgrad::Error on a mismatch (otherwise return false)
  // Also compare forward-mode Jacobian columns (autograd/forward_ad.hpp: one jvp per input element)
  // with the numerical ones. In gradgradcheck this checks forward mode over reverse mode.
  bool check_forward_ad = false;
};

using GradcheckFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

namespace detail {
bool gradcheck_impl(const GradcheckFunction& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts);
bool gradgradcheck_impl(const GradcheckFunction& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts);

template <class F>
GradcheckFunction as_multi_output(F&& fn) {
  return [f = std::forward<F>(fn)](const std::vector<Tensor>& in) -> std::vector<Tensor> {
    if constexpr (std::is_convertible_v<std::invoke_result_t<F&, const std::vector<Tensor>&>, Tensor>) {
      return {f(in)};
    } else {
      return f(in);
    }
  };
}
}  // namespace detail

// fn(inputs) returns a Tensor or a std::vector<Tensor>. Every input that requires grad is checked;
// each must be float64. On a mismatch, the error names the output, the input, the element and both
// values.
template <class F>
bool gradcheck(F&& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts = {}) {
  return detail::gradcheck_impl(detail::as_multi_output(std::forward<F>(fn)), inputs, opts);
}

// Checks second derivatives: gradcheck of the map (inputs, v) -> vᵀ·J(inputs), where v are random
// gradient weights for the outputs and the backward pass is recorded with create_graph.
template <class F>
bool gradgradcheck(F&& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts = {}) {
  return detail::gradgradcheck_impl(detail::as_multi_output(std::forward<F>(fn)), inputs, opts);
}

}  // namespace xgrad
