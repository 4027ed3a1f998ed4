// Row gathering shared by TensorDataset and DataLoader: copies whole rows of a tensor with memcpy.
// Internal to data/.
#pragma once
#include <cstddef>
#include <vector>

#include "../autograd/tensor.hpp"

namespace xgrad::data::detail {

// A new tensor holding rows idx[0..count) of `source` (rows = slices along the first dimension),
// shape {count, source.shape()[1:]...}, same dtype. Consecutive indices are copied as one run.
Tensor gather_rows(const Tensor& source, const std::size_t* idx, std::size_t count);
// Rows [begin, end) as one contiguous copy.
Tensor copy_row_range(const Tensor& source, std::size_t begin, std::size_t end);

}  // namespace xgrad::data::detail
