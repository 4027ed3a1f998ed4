// The packed float32 GEMM engine (detail/packed_gemm.hpp).
//
// gemm_packed, BLIS-style, with A packed once by the caller (PackedA: 6-row panels [K][6]). K is cut
// into blocks of at most kKcMax (equal sizes: the blocking depends on K alone; K = 288 is one block),
// N into blocks whose packed B (kc×nc, a per-thread buffer) stays in L2, M into blocks of A that stay
// in L2. Loop order jc (N block) -> pc (K block) -> ic (M block) -> jr (16 columns) -> ir (6 rows):
// a [kc][16] panel of B stays in L1 while every 6-row panel of A streams over it through the 6×16
// microkernel (12 ymm accumulators; per k two loads of B, six broadcasts of A, twelve FMAs). The first
// A panel over a B panel reads B itself (masked past N's edge) and writes the packed panel as it goes:
// packing B costs no pass of its own. The epilogue writes C directly: store, store with the row's
// bias (first K block), or accumulate (later K blocks, or when asked); C's tile is prefetched when the
// kernel starts (the convolution's outputs are cold). Edges: fewer than 6 rows run a kernel
// instantiated for that many rows, fewer than 16 columns one or two vectors with a masked last
// load/store. No tile buffer, no zeroing pass.
//
// gemm_nt (C = A·Bᵀ, A M×K and B N×K both contiguous along K): the same outer-product kernel turned
// round. 16 rows of A are packed into a [kc][16] panel by 8×8 register transposes (A is the small
// operand of the weight gradient: 64 rows of G against 288 rows of columns, so only 64 of the
// 352 rows per k are packed); the other operand is broadcast straight from B's rows (six rows of B,
// 6·kc floats, stay in L1 while the packed A block, in L2, streams under them). The accumulators
// hold a 16×6 tile of Cᵀ; the epilogue writes it transposed (8×8 register transposes, each row of
// C's tile as 4 + 2 floats; edge tiles through a small local buffer), once per K block of up to 512.
//
// AVX2 masked stores (vmaskmovps to memory) are very slow on AMD Zen: no kernel uses them; partial
// rows are written as 4 + 2 + 1 floats. Masked loads are cheap and used at the edges.
#include "detail/packed_gemm.hpp"

#include <algorithm>
#include <cassert>
#include <new>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define XGRAD_PACKED_GEMM_AVX2 1
#endif

namespace xgrad::detail {

namespace {

constexpr std::size_t MR = PackedA::kPanelRows;  // rows of the microkernel
constexpr std::size_t NR = 16;                   // columns of the microkernel
// A B panel (kc×16 floats, ≤ 20 KB) stays in L1; K = 288 (the CNN's 3×3×32) is one block.
constexpr std::size_t kKcMax = 320;
// The packed A of one M block (mc×kc floats, ≤ 256 KB) and the packed B block (kc×nc floats,
// ≤ 256 KB; K = 288 by N = 196 is one block) stay in L2.
constexpr std::size_t kABlockFloats = std::size_t{64} << 10;
constexpr std::size_t kBBlockFloats = std::size_t{64} << 10;
// gemm_nt: K blocks of at most kNtKcMax (6 rows of B, 6·kc floats ≤ 12 KB, stay in L1), the packed A
// of one M block (mc×kc floats ≤ 256 KB) in L2.
constexpr std::size_t kNtKcMax = 512;
constexpr std::size_t kNtABlockFloats = std::size_t{64} << 10;

enum class Epilogue { Store, Accumulate, Bias };

// Equal blocks of at most `max` covering `k` (k > 0); the block size, rounded up to `multiple`.
std::size_t block_size(std::size_t k, std::size_t max, std::size_t multiple) {
  const std::size_t blocks = (k + max - 1) / max;
  const std::size_t size = (k + blocks - 1) / blocks;
  return (size + multiple - 1) / multiple * multiple;
}

// This thread's packing buffer `slot` (0: gemm_packed's B, 1: gemm_nt's A), 64-byte aligned: grows to
// the largest size asked, then reused (no allocation per call after the first of a shape).
float* thread_buffer(std::size_t floats, int slot) {
  struct Buffer {
    struct Free {
      void operator()(float* p) const noexcept { std::free(p); }
    };
    std::unique_ptr<float, Free> data;
    std::size_t floats = 0;
  };
  static thread_local Buffer buffers[2];
  Buffer& buffer = buffers[slot];
  if (floats > buffer.floats) {
    buffer.data.reset();
    buffer.floats = 0;
    void* p = std::aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    buffer.data.reset(static_cast<float*>(p));
    buffer.floats = floats;
  }
  return buffer.data.get();
}

void fill_rows(float* c, std::size_t ldc, std::size_t m, std::size_t n, const float* row_bias) {
  for (std::size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, row_bias ? row_bias[i] : 0.0f);
}

#ifdef XGRAD_PACKED_GEMM_AVX2

// Lanes 0..n-1 set (n in 0..8).
inline __m256i lane_mask(std::size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Stores lanes 0..n-1 of v (n < 8) as 4 + 2 + 1 floats: AVX2 masked stores are slow on AMD.
inline void store_partial(float* c, __m256 v, std::size_t n) {
  __m128 x = _mm256_castps256_ps128(v);
  if (n & 4) {
    _mm_storeu_ps(c, x);
    x = _mm256_extractf128_ps(v, 1);
    c += 4;
  }
  if (n & 2) {
    _mm_store_sd(reinterpret_cast<double*>(c), _mm_castps_pd(x));
    x = _mm_movehl_ps(x, x);
    c += 2;
  }
  if (n & 1) _mm_store_ss(c, x);
}

// One vector of C's row: the epilogue applied to accumulator v; when Partial, only lanes 0..n-1
// (n < 8) are read and written.
template <bool Partial>
inline void write_vector(float* c, __m256 v, Epilogue epi, float bias, __m256i mask, std::size_t n) {
  if (epi == Epilogue::Bias) v = _mm256_add_ps(v, _mm256_set1_ps(bias));
  if constexpr (Partial) {
    if (epi == Epilogue::Accumulate) v = _mm256_add_ps(_mm256_maskload_ps(c, mask), v);
    store_partial(c, v, n);
  } else {
    if (epi == Epilogue::Accumulate) v = _mm256_add_ps(_mm256_loadu_ps(c), v);
    _mm256_storeu_ps(c, v);
  }
}

// C's R×nc tile (R <= 6; nc <= 16, two vectors when Two, else nc <= 8) from an A panel ([kc][6])
// and a B panel ([kc][16]). With PackB, the kernel reads B's kc×nc block itself (b_src, ldb; masked
// past nc) and writes the panel as it goes (the first A panel of a B panel: packing costs no pass
// of its own); without, it reads the panel.
template <int R, bool Two, bool PackB>
void micro_kernel(std::size_t kc, const float* __restrict a, float* __restrict b, float* c, std::size_t ldc,
                  std::size_t nc, Epilogue epi, const float* bias, const float* b_src, std::size_t ldb) {
  __m256 c0[R], c1[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
  const bool full = nc == (Two ? 16 : 8);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + static_cast<std::size_t>(r) * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + static_cast<std::size_t>(r) * ldc + 15), _MM_HINT_T0);
  }
  if constexpr (PackB) {
    const __m256i m0 = lane_mask(Two ? 8 : nc), m1 = lane_mask(Two ? nc - 8 : 0);
    for (std::size_t k = 0; k < kc; ++k, a += MR, b += NR, b_src += ldb) {
      _mm_prefetch(reinterpret_cast<const char*>(b_src + 8 * ldb), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b_src + 8 * ldb + 15), _MM_HINT_T0);
      const __m256 b0 = full || Two ? _mm256_loadu_ps(b_src) : _mm256_maskload_ps(b_src, m0);
      const __m256 b1 = !Two ? _mm256_setzero_ps() : full ? _mm256_loadu_ps(b_src + 8) : _mm256_maskload_ps(b_src + 8, m1);
      _mm256_store_ps(b, b0);
      if constexpr (Two) _mm256_store_ps(b + 8, b1);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 ar = _mm256_broadcast_ss(a + r);
        c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
        if constexpr (Two) c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
      }
    }
  } else {
#pragma GCC unroll 4
    for (std::size_t k = 0; k < kc; ++k, a += MR, b += NR) {
      const __m256 b0 = _mm256_load_ps(b);
      const __m256 b1 = Two ? _mm256_load_ps(b + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 ar = _mm256_broadcast_ss(a + r);
        c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
        if constexpr (Two) c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
      }
    }
  }
  const std::size_t last = Two ? nc - 8 : nc;  // columns in the last vector
  const __m256i mask = lane_mask(last);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    float* cr = c + static_cast<std::size_t>(r) * ldc;
    const float br = bias ? bias[r] : 0.0f;
    if constexpr (Two) {
      write_vector<false>(cr, c0[r], epi, br, mask, 8);
      if (full) write_vector<false>(cr + 8, c1[r], epi, br, mask, 8);
      else write_vector<true>(cr + 8, c1[r], epi, br, mask, last);
    } else {
      if (full) write_vector<false>(cr, c0[r], epi, br, mask, 8);
      else write_vector<true>(cr, c0[r], epi, br, mask, last);
    }
  }
}

template <bool Two, bool PackB>
void micro_kernel_rows(std::size_t rows, std::size_t kc, const float* a, float* b, float* c, std::size_t ldc,
                       std::size_t nc, Epilogue epi, const float* bias, const float* b_src, std::size_t ldb) {
  switch (rows) {
    case 6: micro_kernel<6, Two, PackB>(kc, a, b, c, ldc, nc, epi, bias, b_src, ldb); break;
    case 5: micro_kernel<5, Two, PackB>(kc, a, b, c, ldc, nc, epi, bias, b_src, ldb); break;
    case 4: micro_kernel<4, Two, PackB>(kc, a, b, c, ldc, nc, epi, bias, b_src, ldb); break;
    case 3: micro_kernel<3, Two, PackB>(kc, a, b, c, ldc, nc, epi, bias, b_src, ldb); break;
    case 2: micro_kernel<2, Two, PackB>(kc, a, b, c, ldc, nc, epi, bias, b_src, ldb); break;
    default: micro_kernel<1, Two, PackB>(kc, a, b, c, ldc, nc, epi, bias, b_src, ldb); break;
  }
}

// In-register transpose of 8 vectors (rows) into 8 vectors (columns).
inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                       __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
  r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
  r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
  r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
  r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
  r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
  r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
  r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// gemm_nt's A panel: rows i0..i0+rows-1 (rows <= 16) of A (M×K, lda) over k in [0, kc), transposed
// into [kc][16] (zero past `rows`), by 8×8 register transposes.
void pack_a_nt_panel(const float* a, std::size_t lda, std::size_t rows, std::size_t kc, float* panel) {
  const std::size_t k8 = kc & ~std::size_t{7};
  const __m256i tail = lane_mask(kc - k8);
  for (std::size_t g = 0; g < 2; ++g) {
    const std::size_t r0 = g * 8;
    const std::size_t valid = rows > r0 ? std::min<std::size_t>(8, rows - r0) : 0;
    const float* src[8];
    for (std::size_t t = 0; t < 8; ++t) src[t] = t < valid ? a + (r0 + t) * lda : nullptr;
    const auto load = [&](std::size_t t, std::size_t k, bool masked) {
      if (!src[t]) return _mm256_setzero_ps();
      return masked ? _mm256_maskload_ps(src[t] + k, tail) : _mm256_loadu_ps(src[t] + k);
    };
    for (std::size_t k = 0; k < kc; k += 8) {
      const bool masked = k == k8;
      __m256 v0 = load(0, k, masked), v1 = load(1, k, masked), v2 = load(2, k, masked), v3 = load(3, k, masked);
      __m256 v4 = load(4, k, masked), v5 = load(5, k, masked), v6 = load(6, k, masked), v7 = load(7, k, masked);
      transpose8(v0, v1, v2, v3, v4, v5, v6, v7);
      float* d = panel + k * NR + r0;
      const __m256 cols[8] = {v0, v1, v2, v3, v4, v5, v6, v7};
      const std::size_t n = std::min<std::size_t>(8, kc - k);
      for (std::size_t u = 0; u < n; ++u) _mm256_store_ps(d + u * NR, cols[u]);
    }
  }
}

// gemm_nt's microkernel: the R×16 tile of Cᵀ for R rows of B (R <= 6; broadcast straight from B,
// row r at b + r·ldb) and a [kc][16] panel of 16 rows of A; lanes are rows of C. The tile is
// written transposed into C's rows i (ni <= 16 of them) and columns 0..R-1.
template <int R, bool Two>
void nt_kernel(std::size_t kc, const float* b, std::size_t ldb, const float* __restrict a, float* c, std::size_t ldc,
               std::size_t ni, bool accumulate) {
  __m256 c0[R], c1[R];
  const float* br[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    c0[r] = c1[r] = _mm256_setzero_ps();
    br[r] = b + static_cast<std::size_t>(r) * ldb;
  }
  for (std::size_t k = 0; k < kc; ++k, a += NR) {
    const __m256 a0 = _mm256_load_ps(a);
    const __m256 a1 = Two ? _mm256_load_ps(a + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 bk = _mm256_broadcast_ss(br[r] + k);
      c0[r] = _mm256_fmadd_ps(bk, a0, c0[r]);
      if constexpr (Two) c1[r] = _mm256_fmadd_ps(bk, a1, c1[r]);
    }
  }
  if constexpr (R == 6) {
    // Transpose the tile 8 lanes at a time: vector u of the transposed half holds C's row i0 + u,
    // columns 0..5, written as 4 + 2 floats (AVX2 masked stores are slow on AMD).
    const __m256 zero = _mm256_setzero_ps();
    const auto write_half = [&](const __m256* v, std::size_t i0) {
      __m256 r0 = v[0], r1 = v[1], r2 = v[2], r3 = v[3], r4 = v[4], r5 = v[5], r6 = zero, r7 = zero;
      transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
      const __m256 rows[8] = {r0, r1, r2, r3, r4, r5, r6, r7};
      const std::size_t n = std::min<std::size_t>(8, ni - i0);
      for (std::size_t u = 0; u < n; ++u) {
        float* ci = c + (i0 + u) * ldc;
        __m128 lo = _mm256_castps256_ps128(rows[u]), hi = _mm256_extractf128_ps(rows[u], 1);
        if (accumulate) {
          lo = _mm_add_ps(_mm_loadu_ps(ci), lo);
          hi = _mm_add_ps(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(ci + 4))), hi);
        }
        _mm_storeu_ps(ci, lo);
        _mm_store_sd(reinterpret_cast<double*>(ci + 4), _mm_castps_pd(hi));
      }
    };
    write_half(c0, 0);
    if constexpr (Two) write_half(c1, 8);
  } else {
    alignas(64) float t[R][NR];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      _mm256_store_ps(t[r], c0[r]);
      if constexpr (Two) _mm256_store_ps(t[r] + 8, c1[r]);
    }
    for (std::size_t i = 0; i < ni; ++i) {
      float* ci = c + i * ldc;
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) ci[r] = accumulate ? ci[r] + t[r][i] : t[r][i];
    }
  }
}

template <bool Two>
void nt_kernel_rows(std::size_t rows, std::size_t kc, const float* b, std::size_t ldb, const float* a, float* c,
                    std::size_t ldc, std::size_t ni, bool accumulate) {
  switch (rows) {
    case 6: nt_kernel<6, Two>(kc, b, ldb, a, c, ldc, ni, accumulate); break;
    case 5: nt_kernel<5, Two>(kc, b, ldb, a, c, ldc, ni, accumulate); break;
    case 4: nt_kernel<4, Two>(kc, b, ldb, a, c, ldc, ni, accumulate); break;
    case 3: nt_kernel<3, Two>(kc, b, ldb, a, c, ldc, ni, accumulate); break;
    case 2: nt_kernel<2, Two>(kc, b, ldb, a, c, ldc, ni, accumulate); break;
    default: nt_kernel<1, Two>(kc, b, ldb, a, c, ldc, ni, accumulate); break;
  }
}

#else  // the portable scalar fallback: same blocking, plain loops

// Copies B's kc×nc block into nc/16 (rounded up) panels of [kc][16], zero padded past nc (the AVX2
// kernels pack their panels themselves).
void pack_b_block(const float* b, std::size_t ldb, std::size_t kc, std::size_t nc, float* packed) {
  const std::size_t panels = (nc + NR - 1) / NR;
  for (std::size_t k = 0; k < kc; ++k, b += ldb)
    for (std::size_t p = 0; p < panels; ++p)
      for (std::size_t j = 0; j < NR; ++j) packed[(p * kc + k) * NR + j] = p * NR + j < nc ? b[p * NR + j] : 0.0f;
}

void micro_kernel_scalar(std::size_t rows, std::size_t kc, const float* a, const float* b, float* c, std::size_t ldc,
                         std::size_t nc, Epilogue epi, const float* bias) {
  float acc[MR][NR] = {};
  for (std::size_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < NR; ++j) acc[r][j] += a[r] * b[j];
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < nc; ++j) {
      float& cij = c[r * ldc + j];
      if (epi == Epilogue::Bias) cij = acc[r][j] + bias[r];
      else if (epi == Epilogue::Accumulate) cij += acc[r][j];
      else cij = acc[r][j];
    }
}

#endif

}  // namespace

bool packed_gemm_native() {
#ifdef XGRAD_PACKED_GEMM_AVX2
  return true;
#else
  return false;
#endif
}

void PackedA::pack(const float* a, std::size_t lda, bool trans, std::size_t m, std::size_t k) {
  const std::size_t panel_count = (m + MR - 1) / MR;
  const std::size_t need = panel_count * MR * k;
  if (need > capacity_) {
    const std::size_t bytes = (need * sizeof(float) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    data_.reset(static_cast<float*>(p));
    capacity_ = bytes / sizeof(float);
  }
  m_ = m;
  k_ = k;
  for (std::size_t p = 0; p < panel_count; ++p) {
    float* dst = data_.get() + p * MR * k;
    const std::size_t row0 = p * MR, rows = std::min(MR, m - row0);
    if (trans) {  // op(A)[i][kk] = a[kk][i]: each k's rows are contiguous in a
      for (std::size_t kk = 0; kk < k; ++kk) {
        const float* src = a + kk * lda + row0;
        for (std::size_t i = 0; i < MR; ++i) dst[kk * MR + i] = i < rows ? src[i] : 0.0f;
      }
    } else {
      for (std::size_t i = 0; i < MR; ++i) {
        if (i < rows) {
          const float* src = a + (row0 + i) * lda;
          for (std::size_t kk = 0; kk < k; ++kk) dst[kk * MR + i] = src[kk];
        } else {
          for (std::size_t kk = 0; kk < k; ++kk) dst[kk * MR + i] = 0.0f;
        }
      }
    }
  }
}

void gemm_packed(const PackedA& a, const float* b, std::size_t ldb, std::size_t n, float* c, std::size_t ldc,
                 const float* row_bias, bool accumulate) {
  assert(!(accumulate && row_bias) && "gemm_packed: a row bias with accumulate");
  const std::size_t m = a.m(), k = a.k();
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) fill_rows(c, ldc, m, n, row_bias);
    return;
  }
  const std::size_t kc_step = block_size(k, kKcMax, 1);
  const std::size_t nc_step = block_size(n, std::max<std::size_t>(NR, kBBlockFloats / kc_step / NR * NR), NR);
  const std::size_t panels = a.panels();
  const std::size_t panels_per_block = std::max<std::size_t>(1, kABlockFloats / (kc_step * MR));
  float* packed_b = thread_buffer(kc_step * nc_step, 0);
  for (std::size_t j0 = 0; j0 < n; j0 += nc_step) {
    const std::size_t nc = std::min(nc_step, n - j0);
    for (std::size_t k0 = 0; k0 < k; k0 += kc_step) {
      const std::size_t kc = std::min(kc_step, k - k0);
      const Epilogue epi = (k0 > 0 || accumulate) ? Epilogue::Accumulate
                           : row_bias           ? Epilogue::Bias
                                                : Epilogue::Store;
#ifndef XGRAD_PACKED_GEMM_AVX2
      pack_b_block(b + k0 * ldb + j0, ldb, kc, nc, packed_b);
#endif
      for (std::size_t p0 = 0; p0 < panels; p0 += panels_per_block) {
        const std::size_t p1 = std::min(panels, p0 + panels_per_block);
        for (std::size_t jr = 0; jr < nc; jr += NR) {
          const std::size_t ncr = std::min(NR, nc - jr);
          float* bp = packed_b + jr * kc;
          [[maybe_unused]] const float* b_src = b + k0 * ldb + j0 + jr;  // read by the packing kernel
          for (std::size_t p = p0; p < p1; ++p) {
            const std::size_t row0 = p * MR, rows = std::min(MR, m - row0);
            const float* ap = a.panel(p) + k0 * MR;
            float* cp = c + row0 * ldc + j0 + jr;
            const float* bias = epi == Epilogue::Bias ? row_bias + row0 : nullptr;
#ifdef XGRAD_PACKED_GEMM_AVX2
            if (p == p0) {  // the first A panel over this B panel packs it
              if (ncr > 8) micro_kernel_rows<true, true>(rows, kc, ap, bp, cp, ldc, ncr, epi, bias, b_src, ldb);
              else micro_kernel_rows<false, true>(rows, kc, ap, bp, cp, ldc, ncr, epi, bias, b_src, ldb);
            } else {
              if (ncr > 8) micro_kernel_rows<true, false>(rows, kc, ap, bp, cp, ldc, ncr, epi, bias, b_src, ldb);
              else micro_kernel_rows<false, false>(rows, kc, ap, bp, cp, ldc, ncr, epi, bias, b_src, ldb);
            }
#else
            micro_kernel_scalar(rows, kc, ap, bp, cp, ldc, ncr, epi, bias);
#endif
          }
        }
      }
    }
  }
}

void gemm_nt(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
             std::size_t ldb, float* c, std::size_t ldc, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) fill_rows(c, ldc, m, n, nullptr);
    return;
  }
  const std::size_t kc_step = block_size(k, kNtKcMax, 8);
#ifdef XGRAD_PACKED_GEMM_AVX2
  const std::size_t rows_per_block = std::max<std::size_t>(NR, kNtABlockFloats / kc_step / NR * NR);
  const std::size_t mc = std::min(rows_per_block, (m + NR - 1) / NR * NR);
  float* packed = thread_buffer(mc * kc_step, 1);
  for (std::size_t i0 = 0; i0 < m; i0 += mc) {
    const std::size_t i1 = std::min(m, i0 + mc);
    for (std::size_t k0 = 0; k0 < k; k0 += kc_step) {
      const std::size_t kc = std::min(kc_step, k - k0);
      const bool acc = accumulate || k0 > 0;
      for (std::size_t i = i0; i < i1; i += NR)
        pack_a_nt_panel(a + i * lda + k0, lda, std::min(NR, i1 - i), kc, packed + (i - i0) * kc);
      for (std::size_t j = 0; j < n; j += MR) {
        const std::size_t rows = std::min(MR, n - j);
        const float* bj = b + j * ldb + k0;
        for (std::size_t i = i0; i < i1; i += NR) {
          const std::size_t ni = std::min(NR, i1 - i);
          const float* ap = packed + (i - i0) * kc;
          if (ni > 8) nt_kernel_rows<true>(rows, kc, bj, ldb, ap, c + i * ldc + j, ldc, ni, acc);
          else nt_kernel_rows<false>(rows, kc, bj, ldb, ap, c + i * ldc + j, ldc, ni, acc);
        }
      }
    }
  }
#else
  for (std::size_t k0 = 0; k0 < k; k0 += kc_step) {
    const std::size_t kc = std::min(kc_step, k - k0);
    const bool acc = accumulate || k0 > 0;
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        const float* ai = a + i * lda + k0;
        const float* bj = b + j * ldb + k0;
        float s = 0.0f;
        for (std::size_t kk = 0; kk < kc; ++kk) s += ai[kk] * bj[kk];
        float& cij = c[i * ldc + j];
        cij = acc ? cij + s : s;
      }
  }
#endif
}

}  // namespace xgrad::detail
