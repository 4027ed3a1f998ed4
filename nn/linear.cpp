#include "linear.hpp"

#include <cmath>

#include "../autograd/ops.hpp"
#include "init.hpp"

namespace xgrad::nn {

Linear::Linear(std::size_t in, std::size_t out, bool with_bias, Dtype dtype) : in_features(in), out_features(out) {
  if (in == 0 || out == 0)
    detail::fail("Linear(in_features=", in, ", out_features=", out, "): the numbers of features must be positive");
  weight = register_parameter("weight", empty({out, in}, dtype));
  if (with_bias) bias = register_parameter("bias", empty({out}, dtype));
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& input) {
  if (!input.defined()) detail::fail("Linear(", extra_repr(), "): the input is undefined");
  const Shape shape = input.shape();
  if (shape.empty() || shape.back() != in_features)
    detail::fail("Linear(", extra_repr(), "): input of shape ", shape_str(shape), " must have a last dimension of ",
                 in_features);
  return linear(input, weight, bias);
}

std::string Linear::extra_repr() const {
  return detail::concat("in_features=", in_features, ", out_features=", out_features,
                        ", bias=", bias.defined() ? "true" : "false");
}

}  // namespace xgrad::nn
