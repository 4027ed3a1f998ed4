// Matrix products on BLAS: matmul, mm, linear (ops/linalg.cpp).
// Part of autograd/ops.hpp, which includes every op family.
#pragma once
#include "../tensor.hpp"

namespace xgrad {

// ---- Linear algebra --------------------------------------------------------------------------
// PyTorch's matmul: 1-D·1-D dot (0-d result), 2-D·2-D, 1-D promoted to a matrix and squeezed
// back, N-D batched with broadcast batch dimensions. Runs on BLAS; transposes are flags.
Tensor matmul(const Tensor& a, const Tensor& b);
// op(a)·op(b) for matrices (or batches of them), op = transpose when the flag is set. Transposes are
// never materialised, in forward or backward.
Tensor mm(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);
// x·wᵀ + b for x of any rank ≥ 1 (w: out×in, b: out or undefined): one GEMM with the bias folded in.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace xgrad
