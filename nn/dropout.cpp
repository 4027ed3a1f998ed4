#include "dropout.hpp"

#include "functional.hpp"

namespace xgrad::nn {

Dropout::Dropout(double p) : p(p) {
  if (!(p >= 0.0 && p < 1.0)) detail::fail("Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& input) { return functional::dropout(input, p, is_training()); }

std::string Dropout::extra_repr() const { return detail::concat("p=", p); }

}  // namespace xgrad::nn
