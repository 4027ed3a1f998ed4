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

}  // namespace xgrad::nn
