// Layers that only pass data along or reshape it: Flatten and Identity.
#pragma once
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

// Returns its input: a placeholder where a layer is optional.
class Identity : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input; }
};

}  // namespace xgrad::nn
