// The packed float32 GEMM engine (autograd/detail/packed_gemm.hpp) against a float64 reference GEMM:
// a table of shapes (0, 1, tile edges, more than one K, M or N block, the convolution's own shapes),
// every epilogue, A transposed or not, leading dimensions wider than the matrices; bitwise
// determinism across runs, alignments and threads; the padding between rows never written.
//
// Tolerance, per element: |c - ref| <= (K + 2)·u·(Σ_k |a_ik·b_kj| + |c_before| + |bias_i|) + 1e-30,
// u = 2^-24. A float32 sum of K products in any order (blocked, lane-parallel, tree) carries at most
// the error γ_K·Σ|terms| with γ_K = K·u/(1 - K·u) ≈ K·u (Higham, Accuracy and Stability, §3.1); the
// FMA product is exact before its rounding, so γ_K covers it; the epilogue's one more addition (bias
// or accumulated C) adds u·(|partial| + |c_before|), covered by the two extra units of (K + 2). The
// reference is computed in double, whose own error (~K·2^-53) is negligible at this scale.
// The bound is the worst case, not a fitted margin: an index or transposition error gives O(1)
// errors that it cannot hide (the comparator test below shows it rejects one wrong element).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "autograd/detail/packed_gemm.hpp"

namespace {

using xgrad::detail::gemm_nt;
using xgrad::detail::gemm_packed;
using xgrad::detail::PackedA;

constexpr double kUnitRoundoff = 1.0 / (1 << 24);  // float32: 2^-24
constexpr float kSentinel = -12345.0f;             // fills the padding between rows of C

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// The float64 reference of one product: ref[i][j] = Σ_k a(i, k)·b(k, j) (+ base[i][j]) and its error
// scale Σ|a·b| (+ |base|), with a(i, k), b(k, j) read through callables (any storage layout).
struct Reference {
  std::vector<double> value, scale;
};

template <class ReadA, class ReadB>
Reference reference_gemm(std::size_t m, std::size_t n, std::size_t k, ReadA read_a, ReadB read_b) {
  Reference r{std::vector<double>(m * n, 0.0), std::vector<double>(m * n, 0.0)};
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0.0, abs_sum = 0.0;
      for (std::size_t kk = 0; kk < k; ++kk) {
        const double p = static_cast<double>(read_a(i, kk)) * static_cast<double>(read_b(kk, j));
        s += p;
        abs_sum += std::fabs(p);
      }
      r.value[i * n + j] = s;
      r.scale[i * n + j] = abs_sum;
    }
  return r;
}

// Adds base(i, j) (the bias or the previous C) to the reference and its error scale.
template <class ReadBase>
void add_base(Reference& r, std::size_t m, std::size_t n, ReadBase base) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const double b = static_cast<double>(base(i, j));
      r.value[i * n + j] += b;
      r.scale[i * n + j] += std::fabs(b);
    }
}

// The number of elements of C (m×n, leading dimension ldc) outside the tolerance, and of padding
// elements (columns n..ldc-1 of rows 0..m-2) that are not the sentinel any more.
struct Mismatch {
  std::size_t values = 0, padding = 0;
  std::size_t first = 0;  // the first wrong element (row-major index), when values > 0
};

Mismatch compare(const std::vector<float>& c, std::size_t m, std::size_t n, std::size_t ldc, std::size_t k,
                 const Reference& r) {
  Mismatch out;
  const double units = static_cast<double>(k + 2) * kUnitRoundoff;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const double got = c[i * ldc + j], want = r.value[i * n + j];
      const double tol = units * r.scale[i * n + j] + 1e-30;
      if (!(std::fabs(got - want) <= tol)) {  // also catches NaN
        if (out.values == 0) out.first = i * n + j;
        ++out.values;
      }
    }
    if (i + 1 < m)
      for (std::size_t j = n; j < ldc; ++j)
        if (c[i * ldc + j] != kSentinel) ++out.padding;
  }
  return out;
}

enum class Epi { Store, Bias, Accumulate };
const char* epi_name(Epi e) { return e == Epi::Store ? "store" : e == Epi::Bias ? "bias" : "accumulate"; }

struct Shape3 {
  std::size_t m, k, n;
};

// Every shape class the engine distinguishes: empty, 1, below/at/above a 6-row panel and a
// 16-column panel (8 and 16 lanes; every count 1..7 of a partial last vector), several panels with edges, K over one block (320) and not a
// multiple of 8, N over one B block (kc·nc > 64 Ki floats), M over one A block (mc·kc > 64 Ki floats),
// and the CNN's convolutions.
const Shape3 kPackedShapes[] = {
    {0, 5, 7},     {5, 0, 7},    {5, 7, 0},    {1, 1, 1},     {1, 3, 1},    {6, 1, 16},   {5, 4, 8},
    {7, 9, 17},    {12, 16, 33}, {13, 17, 9},  {2, 30, 24},   {6, 8, 15},   {11, 321, 3}, {19, 700, 40},
    {9, 320, 300}, {250, 330, 21}, {64, 288, 196}, {288, 64, 196}, {32, 9, 784}, {1, 288, 196},
    {4, 6, 2},     {7, 3, 6},    {8, 11, 14},  {3, 5, 18},
};

void run_packed_case(const Shape3& s, bool trans, Epi epi, std::size_t pad, std::uint32_t seed) {
  const std::size_t m = s.m, k = s.k, n = s.n;
  CAPTURE(m);
  CAPTURE(k);
  CAPTURE(n);
  CAPTURE(trans);
  CAPTURE(epi_name(epi));
  CAPTURE(pad);
  // A stored m×k (lda >= k) or, transposed, k×m (lda >= m); B k×n (ldb >= n); C m×n (ldc >= n).
  const std::size_t lda = (trans ? m : k) + pad, ldb = n + pad, ldc = n + pad;
  const std::size_t a_rows = trans ? k : m;
  const std::vector<float> a = random_floats(std::max<std::size_t>(1, a_rows * lda), seed);
  const std::vector<float> b = random_floats(std::max<std::size_t>(1, k * ldb), seed + 1);
  const std::vector<float> bias = random_floats(std::max<std::size_t>(1, m), seed + 2);
  const std::vector<float> before = random_floats(std::max<std::size_t>(1, m * ldc), seed + 3);
  const auto read_a = [&](std::size_t i, std::size_t kk) { return trans ? a[kk * lda + i] : a[i * lda + kk]; };
  const auto read_b = [&](std::size_t kk, std::size_t j) { return b[kk * ldb + j]; };
  Reference ref = reference_gemm(m, n, k, read_a, read_b);
  if (epi == Epi::Bias) add_base(ref, m, n, [&](std::size_t i, std::size_t) { return bias[i]; });
  if (epi == Epi::Accumulate) add_base(ref, m, n, [&](std::size_t i, std::size_t j) { return before[i * ldc + j]; });

  // C starts as NaN where the product is stored (a store that read C would give NaN), as the
  // previous values where it accumulates, and as the sentinel in the padding.
  std::vector<float> c(std::max<std::size_t>(1, m * ldc), kSentinel);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      c[i * ldc + j] = epi == Epi::Accumulate ? before[i * ldc + j] : std::numeric_limits<float>::quiet_NaN();
  PackedA packed;
  packed.pack(a.data(), lda, trans, m, k);
  REQUIRE(packed.m() == m);
  REQUIRE(packed.k() == k);
  gemm_packed(packed, b.data(), ldb, n, c.data(), ldc, epi == Epi::Bias ? bias.data() : nullptr,
              epi == Epi::Accumulate);
  const Mismatch r = compare(c, m, n, ldc, k, ref);
  CAPTURE(r.first);
  CHECK(r.values == 0);
  CHECK(r.padding == 0);
}

const Shape3 kNtShapes[] = {
    {0, 5, 7},     {5, 0, 7},     {5, 7, 0},      {1, 1, 1},       {1, 9, 1},     {3, 8, 2},
    {16, 7, 6},    {17, 15, 7},   {9, 33, 13},    {40, 513, 11},   {5, 1030, 3},  {33, 100, 20},
    {64, 196, 288}, {64, 784, 288}, {32, 784, 9}, {32, 12544, 9},  {250, 300, 14},
};

void run_nt_case(const Shape3& s, bool accumulate, std::size_t pad, std::uint32_t seed) {
  const std::size_t m = s.m, k = s.k, n = s.n;
  CAPTURE(m);
  CAPTURE(k);
  CAPTURE(n);
  CAPTURE(accumulate);
  CAPTURE(pad);
  const std::size_t lda = k + pad, ldb = k + pad, ldc = n + pad;
  const std::vector<float> a = random_floats(std::max<std::size_t>(1, m * lda), seed);
  const std::vector<float> b = random_floats(std::max<std::size_t>(1, n * ldb), seed + 1);
  const std::vector<float> before = random_floats(std::max<std::size_t>(1, m * ldc), seed + 2);
  Reference ref = reference_gemm(
      m, n, k, [&](std::size_t i, std::size_t kk) { return a[i * lda + kk]; },
      [&](std::size_t kk, std::size_t j) { return b[j * ldb + kk]; });
  if (accumulate) add_base(ref, m, n, [&](std::size_t i, std::size_t j) { return before[i * ldc + j]; });
  std::vector<float> c(std::max<std::size_t>(1, m * ldc), kSentinel);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      c[i * ldc + j] = accumulate ? before[i * ldc + j] : std::numeric_limits<float>::quiet_NaN();
  gemm_nt(m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc, accumulate);
  const Mismatch r = compare(c, m, n, ldc, k, ref);
  CAPTURE(r.first);
  CHECK(r.values == 0);
  CHECK(r.padding == 0);
}

// The bits of a convolution-shaped gemm_packed with bias (64×288 by 288×196) followed by those of
// gemm_nt in the weight gradient's shape (64×196 by (288×196)ᵀ), every input placed `offset` floats
// past an aligned start so that the alignment differs between calls.
std::vector<float> product_bits(std::size_t offset) {
  const std::size_t o = 64, ck = 288, l = 196;
  const std::vector<float> w = random_floats(o * ck, 11), cols = random_floats(ck * l, 12),
                           bias = random_floats(o, 13), g = random_floats(o * l, 14);
  const auto shifted = [&](const std::vector<float>& v) {
    std::vector<float> s(offset + v.size());
    std::copy(v.begin(), v.end(), s.begin() + static_cast<std::ptrdiff_t>(offset));
    return s;
  };
  const std::vector<float> ws = shifted(w), cs = shifted(cols), gs = shifted(g);
  std::vector<float> out(offset + o * l + o * ck, 0.0f);
  PackedA packed;
  packed.pack(ws.data() + offset, ck, false, o, ck);
  gemm_packed(packed, cs.data() + offset, l, l, out.data() + offset, l, bias.data(), false);
  gemm_nt(o, ck, l, gs.data() + offset, l, cs.data() + offset, l, out.data() + offset + o * l, ck, false);
  return std::vector<float>(out.begin() + static_cast<std::ptrdiff_t>(offset), out.end());
}

}  // namespace

TEST_CASE("packed gemm: the native kernels are compiled in on an AVX2 and FMA build") {
#if defined(__AVX2__) && defined(__FMA__)
  CHECK(xgrad::detail::packed_gemm_native());
#else
  CHECK_FALSE(xgrad::detail::packed_gemm_native());
#endif
}

TEST_CASE("packed gemm: gemm_packed matches the float64 reference over shapes, epilogues, transposes, strides") {
  std::uint32_t seed = 100;
  for (const Shape3& s : kPackedShapes)
    for (bool trans : {false, true})
      for (Epi epi : {Epi::Store, Epi::Bias, Epi::Accumulate})
        for (std::size_t pad : {std::size_t{0}, std::size_t{3}}) run_packed_case(s, trans, epi, pad, seed += 7);
}

TEST_CASE("packed gemm: gemm_nt matches the float64 reference over shapes, store and accumulate, strides") {
  std::uint32_t seed = 500;
  for (const Shape3& s : kNtShapes)
    for (bool accumulate : {false, true})
      for (std::size_t pad : {std::size_t{0}, std::size_t{5}}) run_nt_case(s, accumulate, pad, seed += 7);
}

TEST_CASE("packed gemm: the comparator rejects one element off by more than its tolerance") {
  // The checks above would pass anything if compare() accepted everything: perturb one element of a
  // correct product by twice its bound (and, separately, one padding element) and require rejection.
  const std::size_t m = 7, k = 29, n = 18, ldc = 20;
  const std::vector<float> a = random_floats(m * k, 1), b = random_floats(k * n, 2);
  const Reference ref = reference_gemm(
      m, n, k, [&](std::size_t i, std::size_t kk) { return a[i * k + kk]; },
      [&](std::size_t kk, std::size_t j) { return b[kk * n + j]; });
  std::vector<float> c(m * ldc, kSentinel);
  PackedA packed;
  packed.pack(a.data(), k, false, m, k);
  gemm_packed(packed, b.data(), n, n, c.data(), ldc, nullptr, false);
  REQUIRE(compare(c, m, n, ldc, k, ref).values == 0);
  const std::size_t i = 4, j = 11;
  const double tol = static_cast<double>(k + 2) * kUnitRoundoff * ref.scale[i * n + j];
  std::vector<float> wrong = c;
  wrong[i * ldc + j] = static_cast<float>(ref.value[i * n + j] + 2.0 * tol);
  const Mismatch r = compare(wrong, m, n, ldc, k, ref);
  CHECK(r.values == 1);
  CHECK(r.first == i * n + j);
  std::vector<float> scribbled = c;
  scribbled[2 * ldc + n] = 0.0f;  // padding of row 2
  CHECK(compare(scribbled, m, n, ldc, k, ref).padding == 1);
  // A transposition mistake (Aᵀ packed as A) is far outside the bound.
  std::vector<float> square_a = random_floats(9 * 9, 3), square_b = random_floats(9 * 5, 4), sc(9 * 5);
  packed.pack(square_a.data(), 9, true, 9, 9);
  gemm_packed(packed, square_b.data(), 5, 5, sc.data(), 5, nullptr, false);
  const Reference untransposed = reference_gemm(
      9, 5, 9, [&](std::size_t r0, std::size_t kk) { return square_a[r0 * 9 + kk]; },
      [&](std::size_t kk, std::size_t c0) { return square_b[kk * 5 + c0]; });
  CHECK(compare(sc, 9, 5, 5, 9, untransposed).values > 0);
}

TEST_CASE("packed gemm: accumulate adds to C, twice gives the product twice") {
  // C0 = 0.5 everywhere; after two accumulating calls C = 0.5 + 2·A·B (and after a store, A·B).
  const std::size_t m = 13, k = 37, n = 21;
  const std::vector<float> a = random_floats(m * k, 21), b = random_floats(k * n, 22);
  const Reference ref = reference_gemm(
      m, n, k, [&](std::size_t i, std::size_t kk) { return a[i * k + kk]; },
      [&](std::size_t kk, std::size_t j) { return b[kk * n + j]; });
  PackedA packed;
  packed.pack(a.data(), k, false, m, k);
  std::vector<float> c(m * n, 0.5f);
  gemm_packed(packed, b.data(), n, n, c.data(), n, nullptr, true);
  gemm_packed(packed, b.data(), n, n, c.data(), n, nullptr, true);
  std::vector<float> bt(n * k);  // B transposed (n×k) for gemm_nt's form of the same product
  for (std::size_t kk = 0; kk < k; ++kk)
    for (std::size_t j = 0; j < n; ++j) bt[j * k + kk] = b[kk * n + j];
  std::vector<float> c_nt(m * n, 0.5f);
  gemm_nt(m, n, k, a.data(), k, bt.data(), k, c_nt.data(), n, true);
  gemm_nt(m, n, k, a.data(), k, bt.data(), k, c_nt.data(), n, true);
  std::size_t bad = 0, bad_nt = 0;
  for (std::size_t e = 0; e < m * n; ++e) {
    const double want = 0.5 + 2.0 * ref.value[e];
    const double tol = 2.0 * static_cast<double>(k + 3) * kUnitRoundoff * (2.0 * ref.scale[e] + 0.5);
    if (!(std::fabs(c[e] - want) <= tol)) ++bad;
    if (!(std::fabs(c_nt[e] - want) <= tol)) ++bad_nt;
  }
  CHECK(bad == 0);
  CHECK(bad_nt == 0);
  // K = 0: a store gives zeros (or the bias), an accumulation leaves C as it was.
  PackedA empty;
  empty.pack(a.data(), 1, false, m, 0);
  std::vector<float> bias = random_floats(m, 23), z(m * n, 7.0f);
  gemm_packed(empty, b.data(), n, n, z.data(), n, nullptr, true);
  CHECK(std::all_of(z.begin(), z.end(), [](float v) { return v == 7.0f; }));
  gemm_packed(empty, b.data(), n, n, z.data(), n, bias.data(), false);
  CHECK(z[3 * n + 4] == bias[3]);
  gemm_nt(m, n, 0, a.data(), 1, bt.data(), 1, z.data(), n, false);
  CHECK(std::all_of(z.begin(), z.end(), [](float v) { return v == 0.0f; }));
}

TEST_CASE("packed gemm: a PackedA re-packed smaller then larger reuses and regrows its storage") {
  PackedA packed;
  for (const Shape3& s : {Shape3{30, 40, 17}, Shape3{5, 3, 9}, Shape3{70, 90, 20}}) {
    CAPTURE(s.m);
    const std::vector<float> a = random_floats(s.m * s.k, 31), b = random_floats(s.k * s.n, 32);
    const Reference ref = reference_gemm(
        s.m, s.n, s.k, [&](std::size_t i, std::size_t kk) { return a[i * s.k + kk]; },
        [&](std::size_t kk, std::size_t j) { return b[kk * s.n + j]; });
    packed.pack(a.data(), s.k, false, s.m, s.k);
    std::vector<float> c(s.m * s.n);
    gemm_packed(packed, b.data(), s.n, s.n, c.data(), s.n, nullptr, false);
    CHECK(compare(c, s.m, s.n, s.n, s.k, ref).values == 0);
  }
}

TEST_CASE("packed gemm: results are bitwise the same across runs, alignments and threads") {
  const std::vector<float> first = product_bits(0);
  const std::vector<float> again = product_bits(0);
  REQUIRE(first.size() == again.size());
  CHECK(std::memcmp(first.data(), again.data(), first.size() * sizeof(float)) == 0);
  for (std::size_t offset : {std::size_t{1}, std::size_t{3}, std::size_t{8}}) {
    CAPTURE(offset);
    const std::vector<float> shifted = product_bits(offset);
    CHECK(std::memcmp(first.data(), shifted.data(), first.size() * sizeof(float)) == 0);
  }
  std::vector<float> other_thread;
  std::thread worker([&] { other_thread = product_bits(5); });
  worker.join();
  CHECK(std::memcmp(first.data(), other_thread.data(), first.size() * sizeof(float)) == 0);
  // The bits are not all zero (a kernel that wrote nothing would be trivially deterministic).
  CHECK(std::any_of(first.begin(), first.end(), [](float v) { return v != 0.0f; }));
}
