// The one dtype switch of every kernel: an op (or an optimizer step) switches once on the runtime
// dtype, never per element. A header of its own so that optim/ can use it without the op machinery.
#pragma once
#include <utility>

#include "../dtype.hpp"

namespace xgrad::detail {

// Calls f(T{}) with T = float or double.
template <class F>
decltype(auto) dispatch(Dtype d, F&& f) {
  if (d == kFloat32) return std::forward<F>(f)(float{});
  return std::forward<F>(f)(double{});
}

}  // namespace xgrad::detail
