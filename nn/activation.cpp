#include "activation.hpp"

#include "../autograd/ops.hpp"

namespace xgrad::nn {

Tensor ReLU::forward(const Tensor& input) { return relu(input); }
Tensor Sigmoid::forward(const Tensor& input) { return sigmoid(input); }
Tensor Tanh::forward(const Tensor& input) { return tanh(input); }

Tensor LeakyReLU::forward(const Tensor& input) { return leaky_relu(input, negative_slope); }
std::string LeakyReLU::extra_repr() const { return detail::concat("negative_slope=", negative_slope); }

Tensor Softmax::forward(const Tensor& input) { return softmax(input, dim); }
std::string Softmax::extra_repr() const { return detail::concat("dim=", dim); }

Tensor LogSoftmax::forward(const Tensor& input) { return log_softmax(input, dim); }
std::string LogSoftmax::extra_repr() const { return detail::concat("dim=", dim); }

Tensor GELU::forward(const Tensor& input) { return functional::gelu(input, approximate); }
std::string GELU::extra_repr() const {
  return approximate == functional::GeluApproximate::Tanh ? "approximate='tanh'" : "approximate='none'";
}

Tensor SiLU::forward(const Tensor& input) { return functional::silu(input); }

Tensor ELU::forward(const Tensor& input) { return functional::elu(input, alpha); }
std::string ELU::extra_repr() const { return detail::concat("alpha=", alpha); }

Tensor Softplus::forward(const Tensor& input) { return functional::softplus(input, beta, threshold); }
std::string Softplus::extra_repr() const { return detail::concat("beta=", beta, ", threshold=", threshold); }

}  // namespace xgrad::nn
