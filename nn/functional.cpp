#include "functional.hpp"

#include <cmath>

#include "../autograd/detail/op_support.hpp"
#include "../autograd/detail/random.hpp"

namespace xgrad::nn::functional {

namespace {

Tensor reduce(const Tensor& losses, Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean: return mean(losses);
    case Reduction::Sum: return sum(losses);
    case Reduction::None: return losses;
  }
  detail::fail("loss: unknown reduction ", static_cast<int>(reduction));
}

// Elementwise losses compare tensors of one shape and dtype; broadcasting a target silently is
// a classic bug (a (N, 1) output against an (N) target), so it is refused.
void check_pair(const char* fn, const Tensor& input, const Tensor& target) {
  if (!input.defined() || !target.defined()) detail::fail(fn, ": input and target must be defined");
  if (input.shape() != target.shape())
    detail::fail(fn, ": input shape ", shape_str(input.shape()), " and target shape ", shape_str(target.shape()),
                 " differ");
  if (input.dtype() != target.dtype())
    detail::fail(fn, ": input is ", input.dtype(), " but target is ", target.dtype(), " (convert with to())");
}


}  // namespace

Tensor dropout(const Tensor& input, double p, bool training) {
  if (!(p >= 0.0 && p < 1.0)) detail::fail("dropout: p must be in [0, 1), got ", p);
  if (!input.defined()) detail::fail("dropout: the input is undefined");
  if (!training || p == 0.0) return input;
  const Tensor mask = detail::dispatch(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto values = detail::empty_array<T>(input.shape());
    T* out = values.data();
    const std::size_t n = values.size();
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    detail::with_generator([&](std::mt19937_64& g) {
      for (std::size_t i = 0; i < n; ++i) {
        const double u = static_cast<double>(g() >> 11) * 0x1.0p-53;  // uniform on [0, 1)
        out[i] = u < p ? T(0) : scale;
      }
    });
    return detail::make_tensor(std::move(values));
  });
  return input * mask;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair("mse_loss", input, target);
  const Tensor diff = input - target;
  return reduce(diff * diff, reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair("l1_loss", input, target);
  return reduce(abs(input - target), reduction);
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair("binary_cross_entropy", input, target);
  return bce_op(input, target, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair("binary_cross_entropy_with_logits", input, target);
  return bce_with_logits_op(input, target, reduction);
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction) {
  return cross_entropy_op(input, target, reduction);
}

Tensor nll_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return nll_loss_op(input, target, reduction);
}

}  // namespace xgrad::nn::functional
