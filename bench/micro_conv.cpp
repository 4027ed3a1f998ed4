// Convolution, pooling and BatchNorm on the shapes of the CNN workload (W7) and the CNN example:
// conv2d 3×3 (32 -> 64 channels on 14×14), 1×1 (64 -> 64 on 14×14), depthwise 3×3 (64 groups on
// 14×14), max_pool2d 2×2 on 32×28×28 (and 3×3 overlapping), avg_pool2d 2×2, batch_norm (training) on
// 32×28×28; batch 128 (32 for the convolutions' forward + backward, which take the longest), forward
// and forward + backward.
#include <benchmark/benchmark.h>

#include <xgrad.hpp>

namespace {

using namespace xgrad;
namespace F = xgrad::nn::functional;

struct ConvCase {
  std::size_t in, out, k, groups, size;
};
constexpr ConvCase kConv3x3{32, 64, 3, 1, 14}, kConv1x1{64, 64, 1, 1, 14}, kDepthwise{64, 64, 3, 64, 14};

void BM_conv2d(benchmark::State& state, ConvCase c, bool backward) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  manual_seed(0);
  Tensor x = rand({batch, c.in, c.size, c.size});
  Tensor w = randn({c.out, c.in / c.groups, c.k, c.k});
  Tensor b = randn({c.out});
  if (backward) {
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
  }
  const Conv2dArgs args{.padding = c.k / 2, .groups = c.groups};
  for (auto _ : state) {
    Tensor y = F::conv2d(x, w, b, args);
    if (backward) {
      x.zero_grad();
      w.zero_grad();
      b.zero_grad();
      y.sum().backward();
    }
    benchmark::DoNotOptimize(y);
  }
  // Multiply-adds of the forward.
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(batch * c.out * c.size * c.size * (c.in / c.groups) * c.k * c.k) * (backward ? 3 : 1),
      benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK_CAPTURE(BM_conv2d, fwd_3x3, kConv3x3, false)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_conv2d, fwd_bwd_3x3, kConv3x3, true)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_conv2d, fwd_1x1, kConv1x1, false)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_conv2d, fwd_bwd_1x1, kConv1x1, true)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_conv2d, fwd_depthwise, kDepthwise, false)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_conv2d, fwd_bwd_depthwise, kDepthwise, true)->Arg(32)->Unit(benchmark::kMillisecond);

void BM_max_pool2d(benchmark::State& state, bool backward) {
  manual_seed(0);
  Tensor x = rand({static_cast<std::size_t>(state.range(0)), 32, 28, 28});
  if (backward) x.requires_grad_();
  for (auto _ : state) {
    Tensor y = F::max_pool2d(x, 2);
    if (backward) {
      x.zero_grad();
      y.sum().backward();
    }
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.numel()));
}
BENCHMARK_CAPTURE(BM_max_pool2d, fwd, false)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_max_pool2d, fwd_bwd, true)->Arg(128)->Unit(benchmark::kMillisecond);

// Overlapping windows (3×3, stride 1, padding 1): the backward's scatter path rather than the
// disjoint windows' single write pass.
void BM_max_pool2d_overlapping(benchmark::State& state) {
  manual_seed(0);
  Tensor x = rand({static_cast<std::size_t>(state.range(0)), 32, 28, 28});
  x.requires_grad_();
  for (auto _ : state) {
    Tensor y = F::max_pool2d(x, 3, {.stride = 1, .padding = 1});
    x.zero_grad();
    y.sum().backward();
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.numel()));
}
BENCHMARK(BM_max_pool2d_overlapping)->Arg(32)->Unit(benchmark::kMillisecond);

void BM_avg_pool2d(benchmark::State& state, bool backward) {
  manual_seed(0);
  Tensor x = rand({static_cast<std::size_t>(state.range(0)), 32, 28, 28});
  if (backward) x.requires_grad_();
  for (auto _ : state) {
    Tensor y = F::avg_pool2d(x, 2);
    if (backward) {
      x.zero_grad();
      y.sum().backward();
    }
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.numel()));
}
BENCHMARK_CAPTURE(BM_avg_pool2d, fwd, false)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_avg_pool2d, fwd_bwd, true)->Arg(128)->Unit(benchmark::kMillisecond);

void BM_batch_norm_train(benchmark::State& state, bool backward) {
  manual_seed(0);
  Tensor x = randn({static_cast<std::size_t>(state.range(0)), 32, 28, 28});
  Tensor w = ones({32}), b = zeros({32}), rm = zeros({32}), rv = ones({32});
  if (backward) {
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
  }
  for (auto _ : state) {
    Tensor y = F::batch_norm(x, rm, rv, w, b, true);
    if (backward) {
      x.zero_grad();
      w.zero_grad();
      b.zero_grad();
      y.backward(ones_like(y));
    }
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.numel()));
}
BENCHMARK_CAPTURE(BM_batch_norm_train, fwd, false)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_batch_norm_train, fwd_bwd, true)->Arg(128)->Unit(benchmark::kMillisecond);

}  // namespace
