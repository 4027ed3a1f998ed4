// Shape ops: reshape, flatten, transpose/permute/t, squeeze/unsqueeze, expand, slice,
// index_select, cat and stack (ops/shape.cpp).
// Part of autograd/ops.hpp, which includes every op family.
#pragma once
#include <cstdint>
#include <vector>

#include "../tensor.hpp"

namespace xgrad {

// ---- Shape -----------------------------------------------------------------------------------
Tensor reshape(const Tensor& t, const std::vector<std::int64_t>& shape);
Tensor flatten(const Tensor& t, int start_dim = 0, int end_dim = -1);
Tensor transpose(const Tensor& t, int dim0, int dim1);
Tensor permute(const Tensor& t, const std::vector<int>& dims);
Tensor squeeze(const Tensor& t);  // every dim of size 1
Tensor squeeze(const Tensor& t, int dim);
Tensor unsqueeze(const Tensor& t, int dim);
Tensor expand(const Tensor& t, const std::vector<std::int64_t>& shape);
Tensor slice(const Tensor& t, int dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
Tensor index_select(const Tensor& t, int dim, const Tensor& indices);
Tensor cat(const std::vector<Tensor>& tensors, int dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int dim = 0);
// The matrix transpose, for tensors of at most 2 dims (a 0-d or 1-D one keeps its shape), as in PyTorch.
Tensor t(const Tensor& t);

}  // namespace xgrad
