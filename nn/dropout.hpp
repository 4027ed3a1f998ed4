// nn::Dropout: inverted dropout. In training each element is zeroed with probability p and the
// survivors are scaled by 1/(1-p), so the expected output equals the input; in eval it is the identity.
#pragma once
#include "module.hpp"

namespace xgrad::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);  // p outside [0, 1) throws
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  double p;
};

// Channel dropout: in training each channel of each sample (N×C×H×W, or C×H×W) is zeroed with
// probability p, the others scaled by 1/(1-p); the identity in eval.
class Dropout2d : public Module {
 public:
  explicit Dropout2d(double p = 0.5);  // p outside [0, 1) throws
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  double p;
};

}  // namespace xgrad::nn
