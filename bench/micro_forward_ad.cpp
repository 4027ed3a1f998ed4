// Forward-mode AD on W1's model (Linear(784,256)-ReLU-Linear(256,256)-ReLU-Linear(256,10) +
// cross-entropy, batch 128, float32): the primal forward alone against the same forward carrying a
// tangent (a jvp), with the direction on the input or on every parameter. The bound: forward
// mode costs at most 3x the primal computation. bench/README.md has the figures.
#include <benchmark/benchmark.h>

#include <autograd/forward_ad.hpp>
#include <xgrad.hpp>

namespace {

using namespace xgrad;
namespace fwd = xgrad::autograd::forward_ad;

struct W1Model {
  std::vector<Tensor> params;  // w1, b1, w2, b2, w3, b3
  Tensor x, target;
  W1Model() {
    manual_seed(0);
    const std::size_t sizes[3][2] = {{256, 784}, {256, 256}, {10, 256}};
    for (const auto& s : sizes) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(s[1]));
      params.push_back(sub(mul(rand({s[0], s[1]}), 2 * bound), bound));
      params.push_back(sub(mul(rand({s[0]}), 2 * bound), bound));
    }
    x = rand({128, 784});
    target = randint(0, 10, {128});
  }
  Tensor loss(const std::vector<Tensor>& p, const Tensor& input) const {
    Tensor h = relu(linear(input, p[0], p[1]));
    h = relu(linear(h, p[2], p[3]));
    return nn::functional::cross_entropy(linear(h, p[4], p[5]), target);
  }
};

void BM_w1_forward_primal(benchmark::State& state) {
  W1Model m;
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(m.loss(m.params, m.x));
}

void BM_w1_forward_jvp_input(benchmark::State& state) {
  W1Model m;
  NoGradGuard no_grad;
  Tensor direction = randn(m.x.shape());
  for (auto _ : state) {
    fwd::DualLevel level;
    Tensor loss = m.loss(m.params, fwd::make_dual(m.x, direction));
    benchmark::DoNotOptimize(fwd::unpack_dual(loss).tangent);
  }
}

void BM_w1_forward_jvp_params(benchmark::State& state) {
  W1Model m;
  NoGradGuard no_grad;
  std::vector<Tensor> directions;
  for (const Tensor& p : m.params) directions.push_back(randn(p.shape()));
  for (auto _ : state) {
    fwd::DualLevel level;
    std::vector<Tensor> dual;
    for (std::size_t i = 0; i < m.params.size(); ++i) dual.push_back(fwd::make_dual(m.params[i], directions[i]));
    Tensor loss = m.loss(dual, m.x);
    benchmark::DoNotOptimize(fwd::unpack_dual(loss).tangent);
  }
}

}  // namespace

BENCHMARK(BM_w1_forward_primal)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_w1_forward_jvp_input)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_w1_forward_jvp_params)->Unit(benchmark::kMicrosecond);
