// nn::utils: helpers around training steps.
#pragma once
#include <vector>

#include "../autograd/tensor.hpp"

namespace xgrad::nn::utils {

// Rescales the gradients of `parameters` so that their joint norm (all gradients seen as one vector)
// is at most `max_norm`, and returns the norm before clipping. As PyTorch: the factor is
// max_norm / (norm + 1e-6), applied only when below 1; norm_type is p > 0 or INFINITY (max |g|);
// parameters without a gradient are skipped. The gradients are replaced, not scaled in place, since
// a gradient tensor may be shared with another one.
double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0);

}  // namespace xgrad::nn::utils
