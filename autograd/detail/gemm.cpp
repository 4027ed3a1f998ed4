// The GEMM helper (gemm.hpp) on OpenBLAS's CBLAS.
//
// <cblas.h> (OpenBLAS) is included directly: this TU must not include xtensor-blas, whose own CBLAS
// declarations conflict with it (notes/xtensor.md §18).
#include "gemm.hpp"

#include <cblas.h>

#include <algorithm>
#include <type_traits>

#include "threads.hpp"

namespace xgrad::detail {

template <class T>
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b,
          std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == T(0)) std::fill(c, c + (m - 1) * ldc + n, T(0));
    return;  // beta is 0 or 1 for every caller
  }
  prepare_blas_threads(static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
  const auto as_int = [](std::size_t v) { return static_cast<blasint>(std::max<std::size_t>(v, 1)); };
  // A product with one row or one column of output is a matrix-vector product: GEMV reads the matrix
  // once where GEMM packs it first (a Jacobian's row-by-row loop, a batch of one). C is zeroed first
  // when beta = 0, because OpenBLAS scales y by beta, and 0 · NaN (uninitialised memory) is NaN.
  if (n == 1 || m == 1) {
    if (beta == T(0)) {
      if (n == 1)
        for (std::size_t i = 0; i < m; ++i) c[i * ldc] = T(0);
      else
        std::fill(c, c + n, T(0));
    }
    // n == 1: y (m, stride ldc) = op(A)·x, x = op(B)'s column (stride ldb, or 1 when B is stored as a row).
    // m == 1: yᵀ (n, stride 1) = op(B)ᵀ·x, x = op(A)'s row (stride 1, or lda when A is stored as a column).
    const bool column = n == 1;
    const T* mat = column ? a : b;
    const std::size_t ld = column ? lda : ldb;
    const bool mat_trans = column ? ta : !tb;  // op(B)ᵀ: B stored k×n is transposed unless tb
    const std::size_t rows = column ? (ta ? k : m) : (tb ? n : k), cols = column ? (ta ? m : k) : (tb ? k : n);
    const T* x = column ? b : a;
    const std::size_t incx = column ? (tb ? 1 : ldb) : (ta ? lda : 1);
    T* y = c;
    const std::size_t incy = column ? ldc : 1;
    const CBLAS_TRANSPOSE op = mat_trans ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemv(CblasRowMajor, op, as_int(rows), as_int(cols), 1.0f, mat, as_int(ld), x, as_int(incx), 1.0f, y,
                  as_int(incy));
    else
      cblas_dgemv(CblasRowMajor, op, as_int(rows), as_int(cols), 1.0, mat, as_int(ld), x, as_int(incx), 1.0, y,
                  as_int(incy));
    return;
  }
  const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, opa, opb, as_int(m), as_int(n), as_int(k), 1.0f, a, as_int(lda), b, as_int(ldb), beta,
                c, as_int(ldc));
  else
    cblas_dgemm(CblasRowMajor, opa, opb, as_int(m), as_int(n), as_int(k), 1.0, a, as_int(lda), b, as_int(ldb), beta,
                c, as_int(ldc));
}

template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*,
                          std::size_t, float, float*, std::size_t);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*, std::size_t,
                           const double*, std::size_t, double, double*, std::size_t);

}  // namespace xgrad::detail
