// Elementwise ops at 1, 1k and 1M elements, and the bias-style broadcast add (N,C)+(C).
// "fwd" runs on inputs that do not require grad (no graph is recorded); "fwd_bwd" records the graph,
// runs backward with a ready-made upstream gradient and drops the leaf gradients as a training step's
// zero_grad would. At 1 element the figure is the per-op overhead; at 1M it is memory bandwidth.
#include <benchmark/benchmark.h>

#include <xgrad.hpp>

namespace {

using namespace xgrad;

using ElementwiseFn = Tensor (*)(const Tensor&, const Tensor&);

Tensor add_op(const Tensor& a, const Tensor& b) { return a + b; }
Tensor mul_op(const Tensor& a, const Tensor& b) { return a * b; }
Tensor tanh_op(const Tensor& a, const Tensor&) { return tanh(a); }

// Bytes touched per element: inputs read plus the output written (float32).
std::int64_t bytes_per_element(ElementwiseFn op) { return op == tanh_op ? 8 : 12; }

void BM_elementwise_fwd(benchmark::State& state, ElementwiseFn op) {
  const auto n = static_cast<std::size_t>(state.range(0));
  manual_seed(0);
  auto a = rand({n});
  auto b = rand({n});
  for (auto _ : state) {
    auto y = op(a, b);
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n) * bytes_per_element(op));
}

void BM_elementwise_fwd_bwd(benchmark::State& state, ElementwiseFn op) {
  const auto n = static_cast<std::size_t>(state.range(0));
  manual_seed(0);
  auto a = rand({n}).requires_grad_(true);
  auto b = rand({n}).requires_grad_(true);
  auto g = ones({n});
  for (auto _ : state) {
    a.zero_grad();
    b.zero_grad();
    auto y = op(a, b);
    y.backward(g);
    benchmark::DoNotOptimize(a.grad());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

#define XGRAD_ELEMENTWISE(name, fn)                                                              \
  BENCHMARK_CAPTURE(BM_elementwise_fwd, name, fn)->Arg(1)->Arg(1000)->Arg(1000000);             \
  BENCHMARK_CAPTURE(BM_elementwise_fwd_bwd, name, fn)->Arg(1)->Arg(1000)->Arg(1000000)

XGRAD_ELEMENTWISE(add, add_op);
XGRAD_ELEMENTWISE(mul, mul_op);
XGRAD_ELEMENTWISE(tanh, tanh_op);

// (N, C) + (C): a Linear layer's bias add. Its backward sums the gradient over the N rows.
void BM_broadcast_add_fwd(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  manual_seed(0);
  auto x = rand({rows, cols});
  auto bias = rand({cols});
  for (auto _ : state) {
    auto y = x + bias;
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols) * 8);
}
BENCHMARK(BM_broadcast_add_fwd)->Args({128, 256})->Args({4096, 256});

void BM_broadcast_add_fwd_bwd(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  manual_seed(0);
  auto x = rand({rows, cols}).requires_grad_(true);
  auto bias = rand({cols}).requires_grad_(true);
  auto g = ones({rows, cols});
  for (auto _ : state) {
    x.zero_grad();
    bias.zero_grad();
    auto y = x + bias;
    y.backward(g);
    benchmark::DoNotOptimize(bias.grad());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows * cols));
}
BENCHMARK(BM_broadcast_add_fwd_bwd)->Args({128, 256})->Args({4096, 256});

}  // namespace
