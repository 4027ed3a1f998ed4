// Creating small tensors: the floor under every op's cost (one value allocation plus the handle).
#include <benchmark/benchmark.h>

#include <xgrad.hpp>

namespace {

using namespace xgrad;

using Factory = Tensor (*)(const Shape&, Dtype);

void BM_create(benchmark::State& state, Factory make) {
  const Shape shape = state.range(1) > 0
                          ? Shape{static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1))}
                          : Shape{static_cast<std::size_t>(state.range(0))};
  for (auto _ : state) {
    auto t = make(shape, kFloat32);
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations());
}

Tensor zeros_fn(const Shape& s, Dtype d) { return zeros(s, d); }
Tensor ones_fn(const Shape& s, Dtype d) { return ones(s, d); }
Tensor randn_fn(const Shape& s, Dtype d) { return randn(s, d); }

// Shapes {1}, {16} and {128, 10} (second argument 0 = a 1-D shape).
#define XGRAD_CREATE(name, fn) BENCHMARK_CAPTURE(BM_create, name, fn)->Args({1, 0})->Args({16, 0})->Args({128, 10})
XGRAD_CREATE(zeros, zeros_fn);
XGRAD_CREATE(ones, ones_fn);
XGRAD_CREATE(randn, randn_fn);

void BM_create_scalar_literal(benchmark::State& state) {
  for (auto _ : state) {
    auto t = tensor(2.5);
    benchmark::DoNotOptimize(t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_create_scalar_literal);

}  // namespace
