#include "accuracy.hpp"

#include <vector>

namespace xgrad::detail {
namespace {

// Both tensors' values as double, read once per batch: outputs and targets may differ in dtype.
std::vector<double> values_of(const Tensor& t) {
  if (t.dtype() == kFloat32) {
    const auto& a = t.data<float>();
    return std::vector<double>(a.begin(), a.end());
  }
  const auto& a = t.data<double>();
  return std::vector<double>(a.begin(), a.end());
}

std::size_t argmax_row(const double* row, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t j = 1; j < n; ++j)
    if (row[j] > row[best]) best = j;  // the first maximum wins, as torch.argmax
  return best;
}

}  // namespace

CorrectCount count_correct(const Tensor& output, const Tensor& target) {
  const std::size_t n = output.numel();
  const std::size_t classes = output.dim() >= 2 ? output.shape().back() : 1;
  if (n == 0 || classes == 0) return {};
  const std::size_t rows = n / classes;
  const std::vector<double> out = values_of(output);
  const std::vector<double> tgt = values_of(target);
  CorrectCount count;

  if (classes == 1) {
    if (tgt.size() != rows) return {};
    for (std::size_t i = 0; i < rows; ++i) {
      if (tgt[i] != 0.0 && tgt[i] != 1.0) return {};  // not binary labels: no accuracy
      count.correct += (out[i] > 0.5) == (tgt[i] == 1.0);
    }
  } else if (tgt.size() == rows) {
    for (std::size_t i = 0; i < rows; ++i) {
      const double label = tgt[i];
      if (!(label >= 0 && label < double(classes)) || label != static_cast<double>(static_cast<std::size_t>(label)))
        return {};
      count.correct += argmax_row(&out[i * classes], classes) == static_cast<std::size_t>(label);
    }
  } else if (target.shape() == output.shape()) {
    for (std::size_t i = 0; i < rows; ++i)
      count.correct += argmax_row(&out[i * classes], classes) == argmax_row(&tgt[i * classes], classes);
  } else {
    return {};
  }
  count.applicable = true;
  return count;
}

}  // namespace xgrad::detail
