// The GEMM helper every matrix-product op calls (mm, matmul, linear, and convolution as im2col +
// GEMM): row-major, transposes passed to BLAS as flags, never as transposed copies. Internal to
// autograd/; defined (with the BLAS include) in gemm.cpp for float and double.
#pragma once
#include <cstddef>

namespace xgrad::detail {

// c = op(a)·op(b) + beta·c, row-major, with op(a) m×k (a transposed when ta), op(b) k×n (b
// transposed when tb) and leading dimensions lda, ldb, ldc. Degenerate sizes never reach BLAS (it
// rejects leading dimensions of 0); k == 0 leaves beta·c, for beta 0 or 1. Picks the BLAS thread
// count for the product's size (threads.hpp). Sizes must fit BLAS's int (callers check).
template <class T>
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b,
          std::size_t ldb, T beta, T* c, std::size_t ldc);

extern template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, std::size_t,
                                 const float*, std::size_t, float, float*, std::size_t);
extern template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*, std::size_t,
                                  const double*, std::size_t, double, double*, std::size_t);

}  // namespace xgrad::detail
