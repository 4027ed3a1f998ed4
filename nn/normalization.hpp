// Normalisation layers: BatchNorm1d/2d (train: batch statistics and running ones updated; eval: the
// running ones), LayerNorm, GroupNorm. State-dict names as PyTorch's: weight, bias, running_mean,
// running_var, num_batches_tracked.
#pragma once
#include <cstddef>
#include <vector>

#include "functional.hpp"
#include "module.hpp"

namespace xgrad::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

// The shared implementation; BatchNorm1d accepts N×C or N×C×L, BatchNorm2d N×C×H×W.
class BatchNormBase : public Module {
 public:
  BatchNormBase(std::size_t num_features, BatchNormOptions options, std::size_t min_rank, std::size_t max_rank,
                const char* name);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  void reset_running_stats();
  void reset_parameters();

  std::size_t num_features;
  BatchNormOptions options;
  Tensor weight, bias;                                   // (C), undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without track_running_stats

 private:
  std::size_t min_rank_, max_rank_;
  const char* name_;
};

class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(std::size_t num_features, BatchNormOptions options = {})
      : BatchNormBase(num_features, options, 2, 3, "BatchNorm1d") {}
};

class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(std::size_t num_features, BatchNormOptions options = {})
      : BatchNormBase(num_features, options, 4, 4, "BatchNorm2d") {}
};

struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::vector<std::size_t> normalized_shape, LayerNormOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  std::vector<std::size_t> normalized_shape;
  LayerNormOptions options;
  Tensor weight, bias;  // normalized_shape, ones and zeros
};

struct GroupNormOptions {
  double eps = 1e-5;
  bool affine = true;
};

class GroupNorm : public Module {
 public:
  GroupNorm(std::size_t num_groups, std::size_t num_channels, GroupNormOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  std::size_t num_groups, num_channels;
  GroupNormOptions options;
  Tensor weight, bias;  // (C)
};

}  // namespace xgrad::nn
