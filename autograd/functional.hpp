// Functional transforms (PyTorch's torch.autograd.functional, in C++): vjp, jvp, jacobian, hessian,
// hvp, vhp of a function of tensors.
//
//   auto f = [](const std::vector<Tensor>& x) { return tanh(matmul(W, x[0])); };
//   auto J = autograd::functional::jacobian(f, {x0});          // J[0][0]: shape [m, n]
//   auto H = autograd::functional::hessian(g, {x0}, {.vectorize = true,
//                                 .outer_jacobian_strategy = autograd::functional::Strategy::ForwardMode});
//
// `fn` is any callable as fn(const std::vector<Tensor>&) returning a Tensor or a std::vector<Tensor>.
// The inputs are detached from the caller's graph and made to require grad before fn sees them (with
// create_graph, inputs that require grad stay connected so that the results are differentiable with
// respect to them); results are detached unless create_graph. An output independent of an input gives
// zeros, or with `strict` an error naming both.
//
// vectorize = true computes all rows of a Jacobian at once instead of one per output (or input)
// element: the identity basis rides as a batch of tangents (autograd/detail/forward_ad.hpp's batched
// dual levels) through one forward run (ForwardMode) or through one backward run as the tangents of
// the cotangents (ReverseMode, forward over reverse). Same values as the loop, within rounding; the
// matrix-vector products of the loop become matrix-matrix products.
#pragma once
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "tensor.hpp"

namespace xgrad::autograd::functional {

enum class Strategy { ReverseMode, ForwardMode };

struct FunctionalOptions {
  bool create_graph = false;  // results differentiable (with respect to the inputs and v)
  bool strict = false;        // an output independent of an input is an error instead of zeros
};

struct JacobianOptions {
  bool create_graph = false;
  bool strict = false;
  bool vectorize = false;  // all rows at once (batched tangents) instead of a loop
  Strategy strategy = Strategy::ReverseMode;  // ReverseMode: one row per output element; ForwardMode: one column per input element
};

struct HessianOptions {
  bool create_graph = false;
  bool strict = false;
  bool vectorize = false;
  // How the Jacobian of the gradient is taken: ForwardMode is forward over reverse (with vectorize,
  // the fast path), ReverseMode is reverse over reverse.
  Strategy outer_jacobian_strategy = Strategy::ReverseMode;
};

struct VjpResult {
  std::vector<Tensor> outputs;
  std::vector<Tensor> vjp;  // one per input
};
struct JvpResult {
  std::vector<Tensor> outputs;
  std::vector<Tensor> jvp;  // one per output
};
struct HvpResult {
  Tensor output;
  std::vector<Tensor> hvp;  // one per input
};
struct VhpResult {
  Tensor output;
  std::vector<Tensor> vhp;  // one per input
};

namespace detail {
// The type-erased user function: outputs as a list, and whether fn returned a list or one Tensor
// (hessian, hvp and vhp want one Tensor).
struct UserFunction {
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> fn;
  bool returns_list = false;
};

template <class F>
UserFunction erase(F&& fn) {
  using Result = std::invoke_result_t<std::decay_t<F>&, const std::vector<Tensor>&>;
  if constexpr (std::is_convertible_v<Result, Tensor>) {
    return {[f = std::forward<F>(fn)](const std::vector<Tensor>& in) mutable -> std::vector<Tensor> { return {f(in)}; },
            false};
  } else {
    static_assert(std::is_convertible_v<Result, std::vector<Tensor>>,
                  "autograd::functional: fn must return a Tensor or a std::vector<Tensor>");
    return {[f = std::forward<F>(fn)](const std::vector<Tensor>& in) mutable -> std::vector<Tensor> { return f(in); },
            true};
  }
}

VjpResult vjp(const UserFunction& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
              const FunctionalOptions& options);
JvpResult jvp(const UserFunction& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
              const FunctionalOptions& options);
std::vector<std::vector<Tensor>> jacobian(const UserFunction& fn, const std::vector<Tensor>& inputs,
                                          const JacobianOptions& options);
std::vector<std::vector<Tensor>> hessian(const UserFunction& fn, const std::vector<Tensor>& inputs,
                                         const HessianOptions& options);
HvpResult hvp(const UserFunction& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
              const FunctionalOptions& options);
VhpResult vhp(const UserFunction& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
              const FunctionalOptions& options);
}  // namespace detail

// vᵀ·J: one v per output (shape of that output); v may be empty when fn returns one single-element
// tensor. Returns fn's outputs and one vector-Jacobian product per input.
template <class F>
VjpResult vjp(F&& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v = {},
              const FunctionalOptions& options = {}) {
  return detail::vjp(detail::erase(std::forward<F>(fn)), inputs, v, options);
}

// J·v by forward mode: one v per input (shape of that input); v may be empty when there is one
// single-element input. Returns fn's outputs and one Jacobian-vector product per output.
template <class F>
JvpResult jvp(F&& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v = {},
              const FunctionalOptions& options = {}) {
  return detail::jvp(detail::erase(std::forward<F>(fn)), inputs, v, options);
}

// The Jacobian, indexed [output][input], each of shape output.shape ++ input.shape.
template <class F>
std::vector<std::vector<Tensor>> jacobian(F&& fn, const std::vector<Tensor>& inputs, const JacobianOptions& options = {}) {
  return detail::jacobian(detail::erase(std::forward<F>(fn)), inputs, options);
}

// The Hessian of a function returning one single-element Tensor, indexed [input i][input j], each of
// shape input_i.shape ++ input_j.shape.
template <class F>
std::vector<std::vector<Tensor>> hessian(F&& fn, const std::vector<Tensor>& inputs, const HessianOptions& options = {}) {
  return detail::hessian(detail::erase(std::forward<F>(fn)), inputs, options);
}

// H·v for a function returning one single-element Tensor: one v per input.
template <class F>
HvpResult hvp(F&& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v = {},
              const FunctionalOptions& options = {}) {
  return detail::hvp(detail::erase(std::forward<F>(fn)), inputs, v, options);
}

// vᵀ·H for a function returning one single-element Tensor: one v per input.
template <class F>
VhpResult vhp(F&& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v = {},
              const FunctionalOptions& options = {}) {
  return detail::vhp(detail::erase(std::forward<F>(fn)), inputs, v, options);
}

}  // namespace xgrad::autograd::functional
