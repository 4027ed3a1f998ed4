// Comparisons, where, maximum/minimum and clamp (ops/compare.cpp).
// Part of autograd/ops.hpp, which includes every op family.
#pragma once
#include "../tensor.hpp"

namespace xgrad {

Tensor clamp(const Tensor& t, double lo, double hi);
Tensor clamp_min(const Tensor& t, double lo);
Tensor clamp_max(const Tensor& t, double hi);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// cond is nonzero -> a, else b (broadcasting over all three). No gradient flows into cond.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// Comparisons: 0/1 in the inputs' dtype, no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

}  // namespace xgrad
