// Softmax, log_softmax and the fused losses nn::functional calls (ops/nn_ops.cpp).
// Part of autograd/ops.hpp, which includes every op family.
#pragma once
#include "../tensor.hpp"

namespace xgrad {

// ---- Neural ----------------------------------------------------------------------------------
Tensor softmax(const Tensor& t, int dim);
Tensor log_softmax(const Tensor& t, int dim);

// How a loss reduces its per-element values (nn::Reduction is this type).
enum class Reduction { None, Mean, Sum };

// Fused losses with one backward each; nn::functional calls these. Class-index targets are integral
// values held in a float tensor of the input's dtype; an out-of-range or non-integral index throws.
// logits/log_probs: (N, C) or (C); target: (N) or ().
Tensor cross_entropy_op(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor nll_loss_op(const Tensor& log_probs, const Tensor& target, Reduction reduction = Reduction::Mean);
// Binary cross-entropy on probabilities in [0, 1], logs clamped at -100 (PyTorch's rule).
Tensor bce_op(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// Stable for logits of any magnitude: max(x,0) - x*y + log1p(exp(-|x|)).
Tensor bce_with_logits_op(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace xgrad
