// nn::Linear: y = x·Wᵀ + b for inputs of any rank >= 1, one GEMM per call.
#pragma once
#include <cstddef>

#include "module.hpp"

namespace xgrad::nn {

class Linear : public Module {
 public:
  // PyTorch's default initialisation: W ~ kaiming_uniform_(a = sqrt(5)) = U(±1/sqrt(in)), b ~ U(±1/sqrt(in)).
  // Zero input or output features throw.
  Linear(std::size_t in_features, std::size_t out_features, bool bias = true, Dtype dtype = kFloat32);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  // Re-draws the parameters with the default initialisation.
  void reset_parameters();

  std::size_t in_features;
  std::size_t out_features;
  Tensor weight;  // (out_features, in_features)
  Tensor bias;    // (out_features), undefined without bias
};

}  // namespace xgrad::nn
