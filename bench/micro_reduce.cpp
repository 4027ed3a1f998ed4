// Reductions: sum and mean over everything and along dim 0 or 1 of a matrix. Dim 0 (down the
// columns, a bias gradient) and dim 1 (along rows, a softmax denominator) stress different memory
// orders. "fwd_bwd" adds the backward, which broadcasts the gradient back to the input's shape.
#include <benchmark/benchmark.h>

#include <vector>

#include <xgrad.hpp>

namespace {

using namespace xgrad;

enum class Over { All, Dim0, Dim1 };

Tensor reduce(const Tensor& x, bool is_mean, Over over) {
  if (over == Over::All) return is_mean ? mean(x) : sum(x);
  const std::vector<int> dims{over == Over::Dim0 ? 0 : 1};
  return is_mean ? mean(x, dims) : sum(x, dims);
}

void BM_reduce_fwd(benchmark::State& state, bool is_mean, Over over) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  manual_seed(0);
  auto x = rand({rows, cols});
  for (auto _ : state) {
    auto y = reduce(x, is_mean, over);
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols) * 4);
}

void BM_reduce_fwd_bwd(benchmark::State& state, bool is_mean, Over over) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  manual_seed(0);
  auto x = rand({rows, cols}).requires_grad_(true);
  const Tensor g = ones_like(reduce(x.detach(), is_mean, over));
  for (auto _ : state) {
    x.zero_grad();
    auto y = reduce(x, is_mean, over);
    y.backward(g);
    benchmark::DoNotOptimize(x.grad());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols));
}

#define XGRAD_REDUCE(name, is_mean, over)                                                         \
  BENCHMARK_CAPTURE(BM_reduce_fwd, name, is_mean, over)->Args({128, 256})->Args({1024, 1024});   \
  BENCHMARK_CAPTURE(BM_reduce_fwd_bwd, name, is_mean, over)->Args({128, 256})->Args({1024, 1024})

XGRAD_REDUCE(sum_all, false, Over::All);
XGRAD_REDUCE(sum_dim0, false, Over::Dim0);
XGRAD_REDUCE(sum_dim1, false, Over::Dim1);
XGRAD_REDUCE(mean_all, true, Over::All);
XGRAD_REDUCE(mean_dim0, true, Over::Dim0);
XGRAD_REDUCE(mean_dim1, true, Over::Dim1);

}  // namespace
