// Counting correct predictions for fit/evaluate. Internal to train/.
#pragma once
#include <cstddef>

#include "../autograd/tensor.hpp"

namespace xgrad::detail {

struct CorrectCount {
  std::size_t correct = 0;
  bool applicable = false;  // false when output and target are not a classification
};

// For C = output's last dim > 1: argmax over the last dim against class indices (target.numel()
// equal to the number of rows, integral values in [0, C)) or against the argmax of a target of
// the output's shape (one-hot). For one output per row (C = 1, or a 1-D output): output > 0.5
// against 0/1 targets. Anything else is not applicable.
CorrectCount count_correct(const Tensor& output, const Tensor& target);

}  // namespace xgrad::detail
