// Layers that only pass data along or reshape it: Flatten and Identity.
#pragma once
#include <cstdint>
#include <vector>

#include "module.hpp"

namespace xgrad::nn {

// Flattens dims start_dim..end_dim into one; the defaults keep the batch dimension, as in PyTorch.
class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1, int end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  int start_dim;
  int end_dim;
};

// Expands dim `dim` into `sizes` (one of which may be -1), the inverse of Flatten.
class Unflatten : public Module {
 public:
  Unflatten(int dim, std::vector<std::int64_t> sizes) : dim(dim), sizes(std::move(sizes)) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  int dim;
  std::vector<std::int64_t> sizes;
};

// Returns its input: a placeholder where a layer is optional.
class Identity : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input; }
};

}  // namespace xgrad::nn
