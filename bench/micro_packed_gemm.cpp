// The packed float32 GEMM engine (autograd/detail/packed_gemm.hpp) against cblas_sgemm on the calls
// convolution makes for the CNN workload (W7), OpenBLAS's per-call packing and beta pass included:
//
//   conv2 (N = 128, 32 -> 64 channels, 14×14, 3×3, padding 1; L = 196 columns, C·kh·kw = 288)
//     fwd     per sample  y_s (64×196) = W (64×288) · cols (288×196) + bias        128 calls
//     igrad   per sample  dcols (288×196) = Wᵀ (288×64) · G_s (64×196)              128 calls
//     wgrad   dW (64×288) += G_chunk (64×196m) · cols_chunk (288×196m)ᵀ, m samples a chunk
//   conv1 (32 channels from 1, 28×28, 3×3, padding 1; L = 784, K = 9)
//     fwd     per sample  y_s (32×784) = W (32×9) · cols (9×784)                  128 calls
//     wgrad   dW (32×9) += G_chunk (32×784m) · cols_chunk (9×784m)ᵀ
//
// One iteration is the whole batch (all 128 samples), with the buffers laid out as conv.cpp has
// them: the columns in one per-thread scratch buffer rewritten per sample (so it is cache-hot for
// both engines), the outputs y and the incoming gradient G spread over the batch (cold). The packed
// engine packs W once per iteration (as conv would once per call). The "cold_cols" variants give
// every sample its own columns (29 MB, from memory) instead.
//
// The machine is shared: run single-threaded and pinned, and read the CPU column (thread CPU time)
// of the min over repetitions:
//   OPENBLAS_NUM_THREADS=1 taskset -c 1 build/bench/micro_benchmarks --benchmark_filter=packed_gemm
// (each benchmark runs 5 repetitions and reports mean, median, stddev, min, max: read the time of the
// min row and the GFLOP/s of the max row).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <random>
#include <vector>

#include "autograd/detail/packed_gemm.hpp"

namespace {

using xgrad::detail::gemm_nt;
using xgrad::detail::gemm_packed;
using xgrad::detail::PackedA;

constexpr std::size_t kBatch = 128;

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

int as_int(std::size_t v) { return static_cast<int>(v); }

// GFLOP/s (from the CPU time) and the GEMM calls of one iteration (time per call = time / calls).
void set_counters(benchmark::State& state, double flop_per_iteration, double calls_per_iteration) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flop_per_iteration, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["calls"] = calls_per_iteration;
}

// Aggregates over the repetitions: the time of the min row and the GFLOP/s of the max row are the
// least disturbed by the other processes on the machine.
double min_of(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double max_of(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

// ---- per-sample products with a fixed A: forward (W·cols + bias) and input gradient (Wᵀ·G_s) ----
struct FixedACase {
  std::size_t m, k, n;  // op(A) m×k, B k×n
  bool trans;           // op(A) = Wᵀ (W stored k×m)
  bool bias;
  bool b_per_sample;    // B differs per sample (G_s, or cold columns) rather than one scratch buffer
  bool c_per_sample;    // C differs per sample (y_s) rather than one scratch buffer (dcols)
};

constexpr FixedACase kConv2Fwd{64, 288, 196, false, true, false, true};
constexpr FixedACase kConv2FwdCold{64, 288, 196, false, true, true, true};
constexpr FixedACase kConv2IGrad{288, 64, 196, true, false, true, false};
constexpr FixedACase kConv1Fwd{32, 9, 784, false, true, false, true};

struct FixedAData {
  std::vector<float> w, bias, b, c;
  explicit FixedAData(const FixedACase& s)
      : w(random_floats(s.m * s.k, 1)),
        bias(random_floats(s.m, 2)),
        b(random_floats(s.k * s.n * (s.b_per_sample ? kBatch : 1), 3)),
        c(s.m * s.n * (s.c_per_sample ? kBatch : 1)) {}
  const float* b_of(const FixedACase& s, std::size_t i) const { return b.data() + (s.b_per_sample ? i * s.k * s.n : 0); }
  float* c_of(const FixedACase& s, std::size_t i) { return c.data() + (s.c_per_sample ? i * s.m * s.n : 0); }
};

void BM_packed_gemm_fixed_a_cblas(benchmark::State& state, FixedACase s) {
  FixedAData d(s);
  const std::size_t lda = s.trans ? s.m : s.k;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      float* c = d.c_of(s, i);
      if (s.bias)  // as conv.cpp does: rows start as the bias, the GEMM adds with beta = 1
        for (std::size_t r = 0; r < s.m; ++r) std::fill(c + r * s.n, c + (r + 1) * s.n, d.bias[r]);
      cblas_sgemm(CblasRowMajor, s.trans ? CblasTrans : CblasNoTrans, CblasNoTrans, as_int(s.m), as_int(s.n),
                  as_int(s.k), 1.0f, d.w.data(), as_int(lda), d.b_of(s, i), as_int(s.n), s.bias ? 1.0f : 0.0f, c,
                  as_int(s.n));
    }
    benchmark::DoNotOptimize(d.c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * static_cast<double>(s.m * s.n * s.k * kBatch), kBatch);
}

void BM_packed_gemm_fixed_a_packed(benchmark::State& state, FixedACase s) {
  FixedAData d(s);
  const std::size_t lda = s.trans ? s.m : s.k;
  PackedA packed;
  for (auto _ : state) {
    packed.pack(d.w.data(), lda, s.trans, s.m, s.k);  // once per convolution call
    for (std::size_t i = 0; i < kBatch; ++i)
      gemm_packed(packed, d.b_of(s, i), s.n, s.n, d.c_of(s, i), s.n, s.bias ? d.bias.data() : nullptr, false);
    benchmark::DoNotOptimize(d.c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * static_cast<double>(s.m * s.n * s.k * kBatch), kBatch);
}

// ---- weight gradient: C (m×n) += A (m×K) · B (n×K)ᵀ over the batch, `chunk` samples per call ----
struct WeightGradCase {
  std::size_t m, n, l;  // dW m×n, l columns per sample
};
constexpr WeightGradCase kConv2WGrad{64, 288, 196};
constexpr WeightGradCase kConv1WGrad{32, 9, 784};

void BM_packed_gemm_wgrad(benchmark::State& state, WeightGradCase s, bool packed_engine) {
  const auto chunk = static_cast<std::size_t>(state.range(0));
  const std::size_t k = s.l * chunk;
  // The batch's incoming gradient G (m×l per sample, cold) and one chunk's columns (n×K, conv.cpp's
  // scratch rewritten per chunk by im2col: cache-hot here, im2col itself is not timed). As conv.cpp
  // does, a chunk of several samples first copies its G rows side by side into a scratch (m×K,
  // timed: it is part of the chunked formulation's cost); one sample per call reads G_s in place.
  const std::vector<float> g = random_floats(s.m * s.l * kBatch, 4);
  const std::vector<float> cols = random_floats(s.n * k, 5);
  std::vector<float> g_chunk(s.m * k), dw(s.m * s.n);
  for (auto _ : state) {
    for (std::size_t s0 = 0; s0 < kBatch; s0 += chunk) {
      const float* a = g.data() + s0 * s.m * s.l;
      if (chunk > 1) {
        for (std::size_t j = 0; j < chunk; ++j)
          for (std::size_t r = 0; r < s.m; ++r) {
            const float* src = g.data() + ((s0 + j) * s.m + r) * s.l;
            std::copy(src, src + s.l, g_chunk.data() + r * k + j * s.l);
          }
        a = g_chunk.data();
      }
      if (packed_engine)
        gemm_nt(s.m, s.n, k, a, k, cols.data(), k, dw.data(), s.n, s0 > 0);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, as_int(s.m), as_int(s.n), as_int(k), 1.0f, a, as_int(k),
                    cols.data(), as_int(k), s0 == 0 ? 0.0f : 1.0f, dw.data(), as_int(s.n));
    }
    benchmark::DoNotOptimize(dw.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * static_cast<double>(s.m * s.n * s.l * kBatch), static_cast<double>(kBatch / chunk));
}

// ---- peak: one square product (the packed engine's time includes packing A) ----
void BM_packed_gemm_square(benchmark::State& state, bool packed_engine) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<float> a = random_floats(n * n, 6), b = random_floats(n * n, 7);
  std::vector<float> c(n * n);
  PackedA packed;
  for (auto _ : state) {
    if (packed_engine) {
      packed.pack(a.data(), n, false, n, n);
      gemm_packed(packed, b.data(), n, n, c.data(), n, nullptr, false);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, as_int(n), as_int(n), as_int(n), 1.0f, a.data(),
                  as_int(n), b.data(), as_int(n), 0.0f, c.data(), as_int(n));
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * static_cast<double>(n * n * n), 1);
}

#define XGRAD_PACKED_BENCH(...) \
  ->Unit(benchmark::kMillisecond)->Repetitions(5)->ComputeStatistics("min", min_of) \
      ->ComputeStatistics("max", max_of)                                                       \
      ->DisplayAggregatesOnly(true)

BENCHMARK_CAPTURE(BM_packed_gemm_fixed_a_cblas, conv2_fwd, kConv2Fwd) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_fixed_a_packed, conv2_fwd, kConv2Fwd) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_fixed_a_cblas, conv2_fwd_cold_cols, kConv2FwdCold) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_fixed_a_packed, conv2_fwd_cold_cols, kConv2FwdCold) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_fixed_a_cblas, conv2_igrad, kConv2IGrad) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_fixed_a_packed, conv2_igrad, kConv2IGrad) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_wgrad, conv2_cblas, kConv2WGrad, false)->Arg(1)->Arg(4)->Arg(8)->Arg(16)
    XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_wgrad, conv2_packed, kConv2WGrad, true)->Arg(1)->Arg(4)->Arg(8)->Arg(16)
    XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_fixed_a_cblas, conv1_fwd, kConv1Fwd) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_fixed_a_packed, conv1_fwd, kConv1Fwd) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_wgrad, conv1_cblas, kConv1WGrad, false)->Arg(1)->Arg(16) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_wgrad, conv1_packed, kConv1WGrad, true)->Arg(1)->Arg(16) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_square, cblas, false)->Arg(1024) XGRAD_PACKED_BENCH();
BENCHMARK_CAPTURE(BM_packed_gemm_square, packed, true)->Arg(1024) XGRAD_PACKED_BENCH();

}  // namespace
