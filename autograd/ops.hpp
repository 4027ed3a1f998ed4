// Every differentiable op, as free functions in namespace xgrad. Semantics follow PyTorch:
// numpy broadcasting, negative dims counting from the end, keepdim. Mixing float32 and float64
// tensors in one op is an error (convert with `to`); a C++ scalar takes the tensor's dtype.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor.hpp"

namespace xgrad {

// ---- Arithmetic (broadcasting) ---------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor rsub(const Tensor& a, double b);  // b - a
Tensor rdiv(const Tensor& a, double b);  // b / a
Tensor neg(const Tensor& a);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);

// ---- Elementwise -----------------------------------------------------------------------------
Tensor pow(const Tensor& base, double exponent);
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor pow(double base, const Tensor& exponent);
Tensor exp(const Tensor& t);
Tensor log(const Tensor& t);
Tensor sqrt(const Tensor& t);
Tensor abs(const Tensor& t);
Tensor sign(const Tensor& t);  // -1, 0 or 1; no gradient
Tensor tanh(const Tensor& t);
Tensor sigmoid(const Tensor& t);
Tensor relu(const Tensor& t);
Tensor leaky_relu(const Tensor& t, double negative_slope = 0.01);
Tensor sin(const Tensor& t);
Tensor cos(const Tensor& t);
Tensor clamp(const Tensor& t, double lo, double hi);
Tensor clamp_min(const Tensor& t, double lo);
Tensor clamp_max(const Tensor& t, double hi);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// cond is nonzero -> a, else b (broadcasting over all three). No gradient flows into cond.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// Comparisons: 0/1 in the inputs' dtype, no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

// ---- Reductions ------------------------------------------------------------------------------
// An empty `dims` reduces over every dimension, as in PyTorch.
Tensor sum(const Tensor& t);
Tensor sum(const Tensor& t, const std::vector<int>& dims, bool keepdim = false);
Tensor mean(const Tensor& t);
Tensor mean(const Tensor& t, const std::vector<int>& dims, bool keepdim = false);
// Values only. The gradient goes to the first occurrence of the extreme value along `dim`
// (PyTorch's choice for max(dim)); the full max(t) spreads it evenly over ties, as PyTorch does.
Tensor max(const Tensor& t);
Tensor max(const Tensor& t, int dim, bool keepdim = false);
Tensor min(const Tensor& t);
Tensor min(const Tensor& t, int dim, bool keepdim = false);
// Indices as integral values in the input's dtype.
Tensor argmax(const Tensor& t);
Tensor argmax(const Tensor& t, int dim, bool keepdim = false);
Tensor argmin(const Tensor& t);
Tensor argmin(const Tensor& t, int dim, bool keepdim = false);
Tensor logsumexp(const Tensor& t, int dim, bool keepdim = false);
Tensor var(const Tensor& t, const std::vector<int>& dims, bool unbiased = true, bool keepdim = false);
// Sums `t` down to `shape` over broadcast dimensions: the adjoint of broadcasting.
Tensor sum_to(const Tensor& t, const Shape& shape);

// ---- Linear algebra --------------------------------------------------------------------------
// PyTorch's matmul: 1-D·1-D dot (0-d result), 2-D·2-D, 1-D promoted to a matrix and squeezed
// back, N-D batched with broadcast batch dimensions. Runs on BLAS; transposes are flags.
Tensor matmul(const Tensor& a, const Tensor& b);
// op(a)·op(b) for matrices (or batches of them), op = transpose when the flag is set. Transposes are
// never materialised, in forward or backward.
Tensor mm(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
// x·wᵀ + b for x of any rank ≥ 1 (w: out×in, b: out or undefined): one GEMM with the bias folded in.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
Tensor t(const Tensor& t);

// ---- Shape -----------------------------------------------------------------------------------
Tensor reshape(const Tensor& t, const std::vector<std::int64_t>& shape);
Tensor flatten(const Tensor& t, int start_dim = 0, int end_dim = -1);
Tensor transpose(const Tensor& t, int dim0, int dim1);
Tensor permute(const Tensor& t, const std::vector<int>& dims);
Tensor squeeze(const Tensor& t);  // every dim of size 1
Tensor squeeze(const Tensor& t, int dim);
Tensor unsqueeze(const Tensor& t, int dim);
Tensor expand(const Tensor& t, const std::vector<std::int64_t>& shape);
Tensor slice(const Tensor& t, int dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
Tensor index_select(const Tensor& t, int dim, const Tensor& indices);
Tensor cat(const std::vector<Tensor>& tensors, int dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int dim = 0);

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
