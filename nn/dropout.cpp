#include "dropout.hpp"

#include "functional.hpp"

namespace xgrad::nn {

Dropout::Dropout(double p) : p(p) {
  if (!(p >= 0.0 && p < 1.0)) detail::fail("Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& input) { return functional::dropout(input, p, is_training()); }

std::string Dropout::extra_repr() const { return detail::concat("p=", p); }

Dropout2d::Dropout2d(double p) : p(p) {
  if (!(p >= 0.0 && p < 1.0)) detail::fail("Dropout2d: p must be in [0, 1), got ", p);
}

Tensor Dropout2d::forward(const Tensor& input) {
  if (!input.defined()) detail::fail("Dropout2d: the input is undefined");
  const Shape s = input.shape();
  if (s.size() != 3 && s.size() != 4)
    detail::fail("Dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape ", shape_str(s));
  if (!is_training() || p == 0.0) return input;
  // One draw per channel: dropout of a ones tensor of shape (N, C, 1, 1), broadcast over H×W.
  Shape mask_shape = s;
  mask_shape[s.size() - 1] = mask_shape[s.size() - 2] = 1;
  return input * functional::dropout(ones(mask_shape, input.dtype()), p, true);
}

std::string Dropout2d::extra_repr() const { return detail::concat("p=", p); }

}  // namespace xgrad::nn
