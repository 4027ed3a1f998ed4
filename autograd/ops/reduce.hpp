// Reductions: sum, mean, max/min, argmax/argmin, logsumexp, var, sum_to (ops/reduce.cpp).
// Part of autograd/ops.hpp, which includes every op family.
#pragma once
#include <vector>

#include "../tensor.hpp"

namespace xgrad {

// ---- Reductions ------------------------------------------------------------------------------
// An empty `dims` reduces over every dimension, as in PyTorch.
Tensor sum(const Tensor& t);
Tensor sum(const Tensor& t, const std::vector<int>& dims, bool keepdim = false);
Tensor mean(const Tensor& t);
Tensor mean(const Tensor& t, const std::vector<int>& dims, bool keepdim = false);
// Values only. The gradient goes to the first occurrence of the extreme value along `dim`
// (PyTorch's choice for max(dim)); the full max(t) spreads it evenly over ties, as PyTorch does.
Tensor max(const Tensor& t);
Tensor max(const Tensor& t, int dim, bool keepdim = false);
Tensor min(const Tensor& t);
Tensor min(const Tensor& t, int dim, bool keepdim = false);
// Indices as integral values in the input's dtype.
Tensor argmax(const Tensor& t);
Tensor argmax(const Tensor& t, int dim, bool keepdim = false);
Tensor argmin(const Tensor& t);
Tensor argmin(const Tensor& t, int dim, bool keepdim = false);
Tensor logsumexp(const Tensor& t, int dim, bool keepdim = false);
Tensor var(const Tensor& t, const std::vector<int>& dims, bool unbiased = true, bool keepdim = false);
// Sums `t` down to `shape` over broadcast dimensions: the adjoint of broadcasting.
Tensor sum_to(const Tensor& t, const Shape& shape);

}  // namespace xgrad
