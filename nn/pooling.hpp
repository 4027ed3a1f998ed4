// Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (stateless, over nn::functional).
#pragma once
#include "functional.hpp"
#include "module.hpp"

namespace xgrad::nn {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2 kernel_size, functional::Pool2dArgs args = {}) : kernel_size(kernel_size), args(args) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  Size2 kernel_size;
  functional::Pool2dArgs args;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, functional::AvgPool2dArgs args = {}) : kernel_size(kernel_size), args(args) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  Size2 kernel_size;
  functional::AvgPool2dArgs args;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size) : output_size(output_size) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  Size2 output_size;
};

}  // namespace xgrad::nn
