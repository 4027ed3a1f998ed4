// Matrix products: matmul at the MLP's first-layer shape (batch 256, 784 -> 256), forward alone
// and with its two backward GEMMs, and Linear (GEMM with the bias folded in) forward + backward.
// The FLOP rate counts 2·M·K·N per GEMM (three GEMMs for forward + backward).
#include <benchmark/benchmark.h>

#include <cmath>

#include <xgrad.hpp>

namespace {

using namespace xgrad;

constexpr std::size_t M = 256, K = 784, N = 256;
constexpr double gemm_flop = 2.0 * M * K * N;

void set_flop_rate(benchmark::State& state, double flop_per_iteration) {
  state.counters["FLOP"] = benchmark::Counter(flop_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_matmul_fwd_256x784x256(benchmark::State& state) {
  manual_seed(0);
  auto a = rand({M, K});
  auto b = rand({K, N});
  for (auto _ : state) {
    auto c = matmul(a, b);
    benchmark::DoNotOptimize(c);
  }
  set_flop_rate(state, gemm_flop);
}
BENCHMARK(BM_matmul_fwd_256x784x256);

void BM_matmul_fwd_bwd_256x784x256(benchmark::State& state) {
  manual_seed(0);
  auto a = rand({M, K}).requires_grad_(true);
  auto b = rand({K, N}).requires_grad_(true);
  auto g = ones({M, N});
  for (auto _ : state) {
    a.zero_grad();
    b.zero_grad();
    auto c = matmul(a, b);
    c.backward(g);
    benchmark::DoNotOptimize(b.grad());
  }
  set_flop_rate(state, 3 * gemm_flop);
}
BENCHMARK(BM_matmul_fwd_bwd_256x784x256);

// Linear(784, 256) on a batch of 256, as W4's xgrad_linear_fwd_bwd_256x784x256 (which ends in
// y.sum().backward(); here the upstream gradient is given, to time the layer alone).
void BM_linear_fwd_bwd_256x784x256(benchmark::State& state) {
  manual_seed(0);
  const double bound = 1.0 / std::sqrt(double(K));
  auto weight = ((rand({N, K}) * 2.0 - 1.0) * bound).requires_grad_(true);
  auto bias = ((rand({N}) * 2.0 - 1.0) * bound).requires_grad_(true);
  auto x = rand({M, K});
  auto g = ones({M, N});
  for (auto _ : state) {
    weight.zero_grad();
    bias.zero_grad();
    auto y = linear(x, weight, bias);
    y.backward(g);
    benchmark::DoNotOptimize(weight.grad());
  }
  // x needs no gradient: forward GEMM + the weight-gradient GEMM.
  set_flop_rate(state, 2 * gemm_flop);
}
BENCHMARK(BM_linear_fwd_bwd_256x784x256);

void BM_linear_fwd_256x784x256(benchmark::State& state) {
  manual_seed(0);
  auto weight = rand({N, K});
  auto bias = rand({N});
  auto x = rand({M, K});
  for (auto _ : state) {
    auto y = linear(x, weight, bias);
    benchmark::DoNotOptimize(y);
  }
  set_flop_rate(state, gemm_flop);
}
BENCHMARK(BM_linear_fwd_256x784x256);

}  // namespace
