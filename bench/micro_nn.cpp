// Softmax, log-softmax and the fused cross-entropy (log-softmax + NLL, mean) on logits of a batch
// of 128 with 10 classes (the MLP's head) and 1000 classes (a wide head), forward and
// forward + backward.
#include <benchmark/benchmark.h>

#include <xgrad.hpp>

namespace {

using namespace xgrad;

using RowOp = Tensor (*)(const Tensor&, int);

void BM_row_op_fwd(benchmark::State& state, RowOp op) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  manual_seed(0);
  auto x = randn({rows, cols});
  for (auto _ : state) {
    auto y = op(x, 1);
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols));
}

void BM_row_op_fwd_bwd(benchmark::State& state, RowOp op) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  manual_seed(0);
  auto x = randn({rows, cols}).requires_grad_(true);
  auto g = randn({rows, cols});  // not all ones: softmax's backward of a constant is 0
  for (auto _ : state) {
    x.zero_grad();
    auto y = op(x, 1);
    y.backward(g);
    benchmark::DoNotOptimize(x.grad());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols));
}

Tensor softmax_fn(const Tensor& x, int dim) { return softmax(x, dim); }
Tensor log_softmax_fn(const Tensor& x, int dim) { return log_softmax(x, dim); }

BENCHMARK_CAPTURE(BM_row_op_fwd, softmax, softmax_fn)->Args({128, 10})->Args({128, 1000});
BENCHMARK_CAPTURE(BM_row_op_fwd_bwd, softmax, softmax_fn)->Args({128, 10})->Args({128, 1000});
BENCHMARK_CAPTURE(BM_row_op_fwd, log_softmax, log_softmax_fn)->Args({128, 10})->Args({128, 1000});
BENCHMARK_CAPTURE(BM_row_op_fwd_bwd, log_softmax, log_softmax_fn)->Args({128, 10})->Args({128, 1000});

void BM_cross_entropy_fwd(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  manual_seed(0);
  auto logits = randn({rows, cols});
  auto target = randint(0, static_cast<std::int64_t>(cols), {rows});
  for (auto _ : state) {
    auto loss = cross_entropy_op(logits, target);
    benchmark::DoNotOptimize(loss);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols));
}
BENCHMARK(BM_cross_entropy_fwd)->Args({128, 10})->Args({128, 1000});

void BM_cross_entropy_fwd_bwd(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  manual_seed(0);
  auto logits = randn({rows, cols}).requires_grad_(true);
  auto target = randint(0, static_cast<std::int64_t>(cols), {rows});
  for (auto _ : state) {
    logits.zero_grad();
    auto loss = cross_entropy_op(logits, target);
    loss.backward();
    benchmark::DoNotOptimize(logits.grad());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols));
}
BENCHMARK(BM_cross_entropy_fwd_bwd)->Args({128, 10})->Args({128, 1000});

}  // namespace
