// Gathering rows by index and its adjoint, scattering (adding) them back: the backward of max
// pooling (rows of one element, the saved argmax) and of embedding (rows of embedding_dim). Each is
// the other's backward, so both are differentiable any number of times.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../tensor.hpp"

namespace xgrad::detail {

// Row indices into a source seen as rows × row_len; -1 stands for a row of zeros (gather) or a row
// that receives nothing (scatter).
using RowIndex = std::shared_ptr<const std::vector<std::int64_t>>;

// out (out_shape, index->size() × row_len elements): row r = src row forward_index[r] (0 for -1).
// Its backward scatters into src's shape through backward_index (forward_index, or one with the
// rows that must receive no gradient set to -1).
Tensor gather_rows(const Tensor& src, const RowIndex& forward_index, const RowIndex& backward_index,
                   std::size_t row_len, const Shape& out_shape);
// out = zeros(out_shape) (seen as rows × row_len); out row index[r] += g row r, for index[r] >= 0.
Tensor scatter_rows(const Tensor& g, const RowIndex& index, std::size_t row_len, const Shape& out_shape);

}  // namespace xgrad::detail
