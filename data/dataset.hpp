// data::TensorDataset: samples are the rows (first dimension) of an inputs and a targets tensor.
#pragma once
#include <cstddef>

#include "../autograd/tensor.hpp"

namespace xgrad::data {

// One sample, or a mini-batch of samples stacked along the first dimension.
// Aggregate, so `auto& [x, y] = batch` works.
struct Batch {
  Tensor input;
  Tensor target;
};

class TensorDataset {
 public:
  // inputs and targets hold one sample per row: their first dimensions must be equal. The tensors
  // are shared, not copied (Tensor is a handle).
  TensorDataset(Tensor inputs, Tensor targets);

  std::size_t size() const noexcept { return size_; }
  // Sample i: row i of inputs and of targets, without the leading dimension (a copy).
  Batch get(std::size_t i) const;

  const Tensor& inputs() const noexcept { return inputs_; }
  const Tensor& targets() const noexcept { return targets_; }

 private:
  Tensor inputs_;
  Tensor targets_;
  std::size_t size_ = 0;
};

}  // namespace xgrad::data
