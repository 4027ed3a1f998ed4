// nn::functional: the stateless forms of the layers and losses. Losses take (input, target,
// reduction) and follow PyTorch: Mean averages over every element (over the batch for class-index
// losses), Sum adds, None keeps one value per element (per sample).
#pragma once
#include "../autograd/layer_ops.hpp"
#include "../autograd/ops.hpp"

namespace xgrad::nn {

using Reduction = xgrad::Reduction;
// Sizes and paddings of the conv and pooling layers (autograd/layer_ops.hpp).
using xgrad::Padding1;
using xgrad::Padding2;
using xgrad::same;
using xgrad::SamePadding;
using xgrad::Size2;

namespace functional {

// Convolution, pooling, normalisation, embedding and the smooth activations (autograd/layer_ops.hpp).
using xgrad::AvgPool2dArgs;
using xgrad::Conv1dArgs;
using xgrad::Conv2dArgs;
using xgrad::GeluApproximate;
using xgrad::PadMode;
using xgrad::Pool2dArgs;
using xgrad::UnfoldArgs;

using xgrad::adaptive_avg_pool2d;
using xgrad::avg_pool2d;
using xgrad::batch_norm;
using xgrad::conv1d;
using xgrad::conv2d;
using xgrad::elu;
using xgrad::embedding;
using xgrad::fold;
using xgrad::gelu;
using xgrad::group_norm;
using xgrad::layer_norm;
using xgrad::max_pool2d;
using xgrad::pad;
using xgrad::silu;
using xgrad::softplus;
using xgrad::unfold;

using xgrad::leaky_relu;
using xgrad::linear;
using xgrad::log_softmax;
using xgrad::relu;
using xgrad::sigmoid;
using xgrad::softmax;
using xgrad::tanh;

// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p) when
// `training`; returns `input` itself otherwise. Draws from the global generator (manual_seed).
// p outside [0, 1) throws.
Tensor dropout(const Tensor& input, double p = 0.5, bool training = true);

// (input - target)², averaged/summed/kept. Shapes and dtypes must match.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// |input - target|.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// -(t·log(p) + (1-t)·log(1-p)) with each log clamped at -100 (PyTorch), so p = 0 or 1 gives a finite
// loss. `input` must hold probabilities in [0, 1]; another value throws naming it. The gradient is
// PyTorch's (p - t) / max(p(1-p), 1e-12) everywhere, the clamp included: at p = 0 or 1 it is 0 for a
// right answer and a large finite value (±1e12 per unit of loss weight) for a wrong one, never inf or nan.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// binary_cross_entropy(sigmoid(input), target), computed stably for logits of any magnitude.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);
// log_softmax + nll_loss fused, one backward. input (N, C) or (C); target class indices (N) or (),
// integral values held in a tensor of the input's dtype.
Tensor cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// -input[n, target[n]] for log-probabilities `input`.
Tensor nll_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace functional
}  // namespace xgrad::nn
