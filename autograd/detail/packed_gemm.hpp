// A float32 GEMM engine for convolution's many small products with one fixed operand.
//
// Convolution calls one GEMM per sample with the same weights: through cblas_sgemm, OpenBLAS packs
// the weights again on every call and zeroes C before the product overwrites it (about 10 % of the
// second CNN convolution's time). Here the fixed operand is packed once (PackedA) and reused for
// every call; the other operand is packed 16 columns at a time by the microkernel itself, into a
// per-thread buffer whose panel stays in L1 while every 6-row panel of A runs over it; the epilogue
// is written directly (store, accumulate, or store plus a per-row bias), so C is touched once.
//
// x86-64 with AVX2 + FMA (the default -march=native build): 6×16 outer-product microkernel (12 ymm
// accumulators). Elsewhere: a portable scalar version of the same interface (packed_gemm_native()
// says which one is compiled in). Results are deterministic: each element's summation order depends
// on the sizes only, never on alignment, leading dimensions or the calling thread. They are not
// bitwise those of BLAS (the order of the k-sum differs).
//
// Thread safety: the functions are reentrant: their packing buffers are thread_local (one for
// gemm_packed's B, one for gemm_nt's A, each grown to the largest block asked, at most ~256 KB, and
// then reused: no allocation per call after the first). A PackedA may be read by several threads at
// once but not re-packed while in use. No alignment is required of the caller's pointers.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <memory>

namespace xgrad::detail {

// True when the AVX2 + FMA kernels are compiled in, false for the scalar fallback.
bool packed_gemm_native();

// op(A), M×K, packed in panels of 6 rows: panel p holds rows 6p..6p+5 as [K][6] (row-fastest, zero
// padded past M), 64-byte aligned. The storage grows to the largest size packed and is then reused.
// A copy of the values: A may change or go away after pack(). Move-only.
class PackedA {
 public:
  static constexpr std::size_t kPanelRows = 6;

  // Packs op(A) (m×k): A itself when !trans (A is m×k row-major, leading dimension lda >= k), Aᵀ when
  // trans (A stored k×m row-major, lda >= m).
  void pack(const float* a, std::size_t lda, bool trans, std::size_t m, std::size_t k);

  std::size_t m() const { return m_; }
  std::size_t k() const { return k_; }
  std::size_t panels() const { return (m_ + kPanelRows - 1) / kPanelRows; }
  // Panel p: k() steps of kPanelRows floats.
  const float* panel(std::size_t p) const { return data_.get() + p * kPanelRows * k_; }

 private:
  struct Free {
    void operator()(float* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  std::size_t capacity_ = 0;  // floats
  std::size_t m_ = 0, k_ = 0;
};

// C (M×N, leading dimension ldc >= n) = op(A)·B (+ row_bias[i] on row i when row_bias is not null),
// or C += op(A)·B when accumulate (row_bias must then be null: asserted). B is K×N row-major,
// ldb >= n. M = a.m(), K = a.k(). K == 0 gives C = bias (or 0), or leaves C when accumulating. C is
// written, never read, unless accumulating (no zeroing needed); C's padding (columns n..ldc-1) and B
// and C beyond their M×N / K×N are never touched. C must not overlap A's source or B.
void gemm_packed(const PackedA& a, const float* b, std::size_t ldb, std::size_t n, float* c, std::size_t ldc,
                 const float* row_bias, bool accumulate);

// C (M×N, ldc >= n) = A·Bᵀ, or C += A·Bᵀ when accumulate. A is M×K row-major (lda >= k), B is N×K
// row-major (ldb >= k): both contiguous along K (convolution's weight gradient G·colsᵀ). A is packed
// (16-row panels, 8×8 register transposes), B is read in place: make A the operand with fewer rows.
void gemm_nt(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
             std::size_t ldb, float* c, std::size_t ldc, bool accumulate);

}  // namespace xgrad::detail
