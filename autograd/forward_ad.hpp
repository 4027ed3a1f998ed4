// Forward-mode automatic differentiation (PyTorch's torch.autograd.forward_ad, in C++).
//
//   {
//     autograd::forward_ad::DualLevel level;               // tangents live while the level does
//     Tensor x = forward_ad::make_dual(primal, direction);  // x carries a tangent
//     Tensor y = f(x);                                      // every op propagates it (its JVP rule)
//     Tensor jvp = forward_ad::unpack_dual(y).tangent;      // J_f(primal) · direction
//   }
//
// One level at a time (as in PyTorch). A tangent can require grad and the tangents ops compute are
// recorded like any op, so reverse mode over forward mode works; backward formulas propagate tangents
// too, so forward mode over reverse mode (a jvp of autograd::grad) gives Hessian-vector products.
#pragma once
#include <cstdint>

#include "tensor.hpp"

namespace xgrad::autograd::forward_ad {

// While it lives, tensors can carry tangents. On destruction every tangent of the level is dropped.
class DualLevel {
 public:
  DualLevel();
  ~DualLevel();
  DualLevel(const DualLevel&) = delete;
  DualLevel& operator=(const DualLevel&) = delete;

 protected:
  // A level whose tangents all carry one extra leading dimension of size `batch`: `batch` directions
  // pushed through one forward run at once (autograd::functional's vectorised transforms).
  struct Batched {
    std::int64_t batch;
  };
  explicit DualLevel(Batched b);
};

// A tensor with the value of `primal` (sharing it, differentiable with respect to primal like a view)
// that carries `tangent` (same shape and dtype). Requires an open DualLevel.
Tensor make_dual(const Tensor& primal, const Tensor& tangent);

struct UnpackedDual {
  Tensor primal;   // the value, without tangent (differentiable with respect to t)
  Tensor tangent;  // undefined when t has none at the open level
};
UnpackedDual unpack_dual(const Tensor& t);

}  // namespace xgrad::autograd::forward_ad
