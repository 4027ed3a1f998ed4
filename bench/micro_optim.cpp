// One Adam step over the parameters of the 784-256-256-10 MLP (269 322 floats in six tensors),
// with gradients already in place: the optimizer's own cost in a training step.
#include <benchmark/benchmark.h>

#include <vector>

#include <xgrad.hpp>

namespace {

using namespace xgrad;

void BM_adam_step_mlp_784_256_256_10(benchmark::State& state) {
  manual_seed(0);
  const std::vector<Shape> shapes{{256, 784}, {256}, {256, 256}, {256}, {10, 256}, {10}};
  std::vector<Tensor> params;
  std::int64_t count = 0;
  for (const auto& s : shapes) {
    auto p = randn(s).requires_grad_(true);
    p.set_grad(randn(s));
    count += static_cast<std::int64_t>(p.numel());
    params.push_back(p);
  }
  optim::Adam opt(params, {.lr = 1e-3});
  for (auto _ : state) {
    opt.step();
    benchmark::DoNotOptimize(params.front());
  }
  state.SetItemsProcessed(state.iterations() * count);
  // Adam reads param, grad, m, v and writes param, m, v: 7 floats per parameter.
  state.SetBytesProcessed(state.iterations() * count * 7 * 4);
}
BENCHMARK(BM_adam_step_mlp_784_256_256_10);

}  // namespace
