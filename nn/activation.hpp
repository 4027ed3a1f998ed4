// Activation layers: stateless modules wrapping the elementwise and softmax ops.
#pragma once
#include "functional.hpp"
#include "module.hpp"

namespace xgrad::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  double negative_slope;
};

// softmax along `dim` (negative dims count from the end).
class Softmax : public Module {
 public:
  explicit Softmax(int dim) : dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  int dim;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int dim) : dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  int dim;
};

// x·Φ(x), exactly (erf) or with PyTorch's tanh approximation.
class GELU : public Module {
 public:
  explicit GELU(functional::GeluApproximate approximate = functional::GeluApproximate::None) : approximate(approximate) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  functional::GeluApproximate approximate;
};

// x·σ(x).
class SiLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

// x for x > 0, alpha·(e^x - 1) otherwise.
class ELU : public Module {
 public:
  explicit ELU(double alpha = 1) : alpha(alpha) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  double alpha;
};

// log(1 + e^(beta·x)) / beta, linear where beta·x > threshold.
class Softplus : public Module {
 public:
  explicit Softplus(double beta = 1, double threshold = 20) : beta(beta), threshold(threshold) {}
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  double beta, threshold;
};

}  // namespace xgrad::nn
