// Convolution layers: Conv1d and Conv2d with PyTorch's options, defaults and initialisation.
#pragma once
#include <cstddef>

#include "functional.hpp"
#include "module.hpp"

namespace xgrad::nn {

struct Conv1dOptions {
  std::size_t stride = 1;
  Padding1 padding = 0;
  std::size_t dilation = 1;
  std::size_t groups = 1;
  bool bias = true;
  functional::PadMode padding_mode = functional::PadMode::Constant;  // PyTorch's "zeros"
};

struct Conv2dOptions {
  Size2 stride = 1;
  Padding2 padding = 0;
  Size2 dilation = 1;
  std::size_t groups = 1;
  bool bias = true;
  functional::PadMode padding_mode = functional::PadMode::Constant;
};

// PyTorch's default initialisation: weight ~ kaiming_uniform_(a = sqrt(5)), i.e. U(±1/sqrt(fan_in)),
// bias ~ U(±1/sqrt(fan_in)), fan_in = in_channels/groups × kernel elements.
class Conv1d : public Module {
 public:
  Conv1d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size, Conv1dOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  void reset_parameters();

  std::size_t in_channels, out_channels, kernel_size;
  Conv1dOptions options;
  Tensor weight;  // (out, in/groups, kernel)
  Tensor bias;    // (out), undefined without bias
};

class Conv2d : public Module {
 public:
  Conv2d(std::size_t in_channels, std::size_t out_channels, Size2 kernel_size, Conv2dOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  void reset_parameters();

  std::size_t in_channels, out_channels;
  Size2 kernel_size;
  Conv2dOptions options;
  Tensor weight;  // (out, in/groups, kH, kW)
  Tensor bias;    // (out), undefined without bias
};

}  // namespace xgrad::nn
