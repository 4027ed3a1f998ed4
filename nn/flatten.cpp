#include "flatten.hpp"

#include "../autograd/ops.hpp"

namespace xgrad::nn {

Tensor Flatten::forward(const Tensor& input) { return flatten(input, start_dim, end_dim); }

std::string Flatten::extra_repr() const { return detail::concat("start_dim=", start_dim, ", end_dim=", end_dim); }

}  // namespace xgrad::nn
