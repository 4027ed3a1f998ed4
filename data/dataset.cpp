#include "dataset.hpp"

#include "../autograd/ops.hpp"
#include "rows.hpp"

namespace xgrad::data {

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  if (!inputs_.defined() || !targets_.defined())
    xgrad::detail::fail("TensorDataset: inputs and targets must be defined tensors");
  if (inputs_.dim() == 0 || targets_.dim() == 0)
    xgrad::detail::fail("TensorDataset: inputs and targets need a first (sample) dimension, got shapes ",
                        shape_str(inputs_.shape()), " and ", shape_str(targets_.shape()));
  const std::size_t n_inputs = inputs_.shape()[0];
  const std::size_t n_targets = targets_.shape()[0];
  if (n_inputs != n_targets)
    xgrad::detail::fail("TensorDataset: inputs have ", n_inputs, " samples but targets have ", n_targets,
                        " (shapes ", shape_str(inputs_.shape()), " and ", shape_str(targets_.shape()), ")");
  size_ = n_inputs;
}

Batch TensorDataset::get(std::size_t i) const {
  if (i >= size_) xgrad::detail::fail("TensorDataset::get: index ", i, " out of range for a dataset of ", size_, " samples");
  // Copy row i as a batch of one, then drop the leading dimension.
  Tensor x = detail::copy_row_range(inputs_, i, i + 1);
  Tensor y = detail::copy_row_range(targets_, i, i + 1);
  return Batch{squeeze(x, 0), squeeze(y, 0)};
}

}  // namespace xgrad::data
