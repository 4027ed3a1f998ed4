// Elementwise math functions and pow (ops/unary.cpp).
// Part of autograd/ops.hpp, which includes every op family.
#pragma once
#include "../tensor.hpp"

namespace xgrad {

// ---- Elementwise -----------------------------------------------------------------------------
Tensor pow(const Tensor& base, double exponent);
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor pow(double base, const Tensor& exponent);
Tensor exp(const Tensor& t);
Tensor log(const Tensor& t);
Tensor sqrt(const Tensor& t);
Tensor abs(const Tensor& t);
Tensor sign(const Tensor& t);  // -1, 0 or 1; no gradient
Tensor tanh(const Tensor& t);
Tensor sigmoid(const Tensor& t);
Tensor relu(const Tensor& t);
Tensor leaky_relu(const Tensor& t, double negative_slope = 0.01);
Tensor sin(const Tensor& t);
Tensor cos(const Tensor& t);

}  // namespace xgrad
