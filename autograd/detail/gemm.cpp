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
