// nn::init: PyTorch's parameter initialisers, with its signatures, defaults and fan computation.
// Each fills the tensor in place (no graph is recorded) from the global generator, so manual_seed
// makes it reproducible, and returns the same tensor handle.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "../autograd/tensor.hpp"

namespace xgrad::nn::init {

// The recommended gain for a nonlinearity: "linear", "conv1d/2d/3d", "sigmoid" -> 1, "tanh" -> 5/3,
// "relu" -> sqrt(2), "leaky_relu" -> sqrt(2 / (1 + slope²)) (slope = param, default 0.01),
// "selu" -> 3/4. Anything else throws.
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);

// (fan_in, fan_out) of a weight of shape (out, in, *kernel): in·k and out·k with k the product of the
// kernel sizes. Tensors of fewer than 2 dimensions throw.
std::pair<std::size_t, std::size_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor uniform_(Tensor t, double a = 0.0, double b = 1.0);  // U(a, b)
Tensor normal_(Tensor t, double mean = 0.0, double std = 1.0);
Tensor constant_(Tensor t, double value);
Tensor zeros_(Tensor t);
Tensor ones_(Tensor t);
// U(-a, a) with a = gain·sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform_(Tensor t, double gain = 1.0);
// N(0, std²) with std = gain·sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(Tensor t, double gain = 1.0);
// U(-bound, bound) with bound = gain·sqrt(3 / fan), gain = calculate_gain(nonlinearity, a), fan the
// fan_in or fan_out by `mode`. Linear's default is kaiming_uniform_(w, sqrt(5)): U(±1/sqrt(fan_in)).
Tensor kaiming_uniform_(Tensor t, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu");
// N(0, std²) with std = gain / sqrt(fan).
Tensor kaiming_normal_(Tensor t, double a = 0.0, const std::string& mode = "fan_in",
                       const std::string& nonlinearity = "leaky_relu");

}  // namespace xgrad::nn::init
