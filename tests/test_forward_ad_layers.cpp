// Forward-mode AD through the layer ops (autograd/layer_ops.hpp): conv1d, conv2d, pad, unfold, fold,
// max_pool2d, avg_pool2d, adaptive_avg_pool2d, batch_norm (train and eval), layer_norm, group_norm,
// embedding and the smooth activations. For every op, over the stride/padding/dilation/groups/
// ceil_mode/unbatched patterns of test_conv/test_pool/test_norm/test_layer_activations:
//   - gradcheck with check_forward_ad (forward-mode Jacobian columns against finite differences),
//   - gradgradcheck with check_forward_ad (forward mode over reverse mode),
//   - reverse over forward: gradcheck of (x, v) -> unpack_dual(f(make_dual(x, v))).tangent,
//   - batched tangents (detail::BatchedDualLevel) against one unbatched run per direction,
// plus hand-derived JVPs of a small conv2d and a training batch_norm, and the running statistics
// updated exactly once under forward mode.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <xgrad.hpp>

#include "autograd/detail/forward_ad.hpp"
#include "autograd/forward_ad.hpp"
#include "helpers.hpp"

using namespace xgrad;
using test::check_values;
using test::param;
namespace F = xgrad::nn::functional;
namespace fwd = xgrad::autograd::forward_ad;

namespace {

struct JvpCase {
  std::string name;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::vector<Tensor> inputs;  // float64; those that require grad carry tangents
};

// A float64 leaf requiring grad with distinct values at least 2/n apart (no near-ties for max
// pooling's finite differences): a random permutation of 0..n-1 scaled into [-1, 1).
Tensor distinct_param(const Shape& shape) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  Tensor t = randperm(n, kFloat64);
  t = ((t * (2.0 / static_cast<double>(n))) - 1.0).reshape(std::vector<std::int64_t>(shape.begin(), shape.end())).detach();
  t.requires_grad_();
  return t;
}

// A float64 leaf requiring grad with values in [0.1, 1.1): inside log1p's domain, away from -1.
Tensor positive_param(const Shape& shape) {
  Tensor t = (rand(shape, kFloat64) + 0.1).detach();
  t.requires_grad_();
  return t;
}

std::vector<double> values(const Tensor& t) {
  const auto& a = t.data<double>();
  return {a.data(), a.data() + a.size()};
}

// Forward and forward-over-reverse against finite differences.
void check_forward_ad(const JvpCase& c) {
  CAPTURE(c.name);
  GradcheckOptions opts;
  opts.check_forward_ad = true;
  CHECK(gradcheck(c.fn, c.inputs, opts));
  CHECK(gradgradcheck(c.fn, c.inputs, opts));
}

// Reverse mode over forward mode: the map (inputs, tangents) -> the output's tangent, differentiated by
// the engine and compared with finite differences (gradcheck opens no dual level of its own here).
void check_reverse_over_forward(const JvpCase& c) {
  CAPTURE(c.name);
  const std::size_t n = c.inputs.size();
  std::vector<std::size_t> diff;
  std::vector<Tensor> all = c.inputs;
  for (std::size_t i = 0; i < n; ++i)
    if (c.inputs[i].requires_grad()) {
      diff.push_back(i);
      all.push_back(param(c.inputs[i].shape()));
    }
  auto tangent_of_output = [&](const std::vector<Tensor>& in) -> Tensor {
    fwd::DualLevel level;
    std::vector<Tensor> xs(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
    for (std::size_t k = 0; k < diff.size(); ++k) xs[diff[k]] = fwd::make_dual(in[diff[k]], in[n + k]);
    Tensor y = c.fn(xs);
    Tensor t = fwd::unpack_dual(y).tangent;
    REQUIRE(t.defined());
    return t;
  };
  CHECK(gradcheck(tangent_of_output, all));
}

// Tangents for every differentiable input, `batch` directions each, pushed through one run under a
// batched level, against one unbatched run per direction. `detach_inputs` runs the rules' paths for
// primals that do not require grad (e.g. normalisation's statistics from the forward's values).
void check_batched_matches_loop(const JvpCase& c, bool detach_inputs, std::int64_t batch = 3) {
  CAPTURE(c.name);
  CAPTURE(detach_inputs);
  std::vector<Tensor> primals;
  std::vector<Tensor> directions(c.inputs.size());
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    primals.push_back(detach_inputs ? c.inputs[i].detach() : c.inputs[i]);
    if (!c.inputs[i].requires_grad()) continue;
    Shape s = c.inputs[i].shape();
    s.insert(s.begin(), static_cast<std::size_t>(batch));
    directions[i] = randn(s, kFloat64);
  }
  auto dual_inputs = [&](std::int64_t entry) {
    std::vector<Tensor> xs = primals;
    for (std::size_t i = 0; i < xs.size(); ++i)
      if (directions[i].defined())
        xs[i] = fwd::make_dual(xs[i], entry < 0 ? directions[i] : squeeze(slice(directions[i], 0, entry, entry + 1), 0));
    return xs;
  };
  std::vector<double> batched;
  Shape out_shape;
  {
    detail::BatchedDualLevel level(batch);
    Tensor y = c.fn(dual_inputs(-1));
    out_shape = y.shape();
    Tensor t = fwd::unpack_dual(y).tangent;
    REQUIRE(t.defined());
    Shape expected = out_shape;
    expected.insert(expected.begin(), static_cast<std::size_t>(batch));
    REQUIRE(t.shape() == expected);
    batched = values(t);
  }
  const std::size_t per = batched.size() / static_cast<std::size_t>(batch);
  for (std::int64_t b = 0; b < batch; ++b) {
    CAPTURE(b);
    fwd::DualLevel level;
    Tensor t = fwd::unpack_dual(c.fn(dual_inputs(b))).tangent;
    REQUIRE(t.defined());
    REQUIRE(t.shape() == out_shape);
    const std::vector<double> one = values(t);
    for (std::size_t k = 0; k < per; ++k) {
      CAPTURE(k);
      CHECK(batched[static_cast<std::size_t>(b) * per + k] == doctest::Approx(one[k]).epsilon(1e-10).scale(1.0));
    }
  }
}

void check_all(const std::vector<JvpCase>& cases) {
  for (const auto& c : cases) {
    check_forward_ad(c);
    check_reverse_over_forward(c);
    check_batched_matches_loop(c, false);
    check_batched_matches_loop(c, true);
  }
}

}  // namespace

TEST_CASE("forward AD layers: conv1d, conv2d, pad, unfold, fold over strides, paddings, dilations, groups") {
  manual_seed(51);
  auto conv = [](Conv2dArgs a, bool bias) {
    return [a, bias](const std::vector<Tensor>& in) { return F::conv2d(in[0], in[1], bias ? in[2] : Tensor(), a); };
  };
  check_all({
      {"conv2d basic", conv({}, true), {param({2, 2, 4, 4}), param({3, 2, 3, 3}), param({3})}},
      {"conv2d stride 2 pad 1", conv({.stride = 2, .padding = 1}, true), {param({1, 2, 5, 5}), param({2, 2, 3, 3}), param({2})}},
      {"conv2d dilation 2 pad (1,2)", conv({.padding = {1, 2}, .dilation = 2}, false), {param({1, 1, 5, 6}), param({2, 1, 2, 3})}},
      {"conv2d groups 2", conv({.padding = 1, .groups = 2}, true), {param({1, 4, 4, 4}), param({4, 2, 3, 3}), param({4})}},
      {"conv2d depthwise", conv({.padding = 1, .groups = 3}, false), {param({2, 3, 4, 4}), param({3, 1, 3, 3})}},
      {"conv2d 1x1", conv({}, true), {param({2, 3, 3, 3}), param({2, 3, 1, 1}), param({2})}},
      {"conv2d same even kernel", conv({.padding = nn::same}, false), {param({1, 2, 4, 4}), param({2, 2, 2, 2})}},
      {"conv2d unbatched", conv({.stride = {2, 1}}, true), {param({2, 5, 4}), param({3, 2, 2, 2}), param({3})}},
      {"conv1d", [](const std::vector<Tensor>& in) { return F::conv1d(in[0], in[1], in[2], {.stride = 2, .padding = 1, .dilation = 2}); },
       {param({2, 2, 7}), param({3, 2, 3}), param({3})}},
      {"conv1d groups same unbatched", [](const std::vector<Tensor>& in) { return F::conv1d(in[0], in[1], {}, {.padding = nn::same, .groups = 2}); },
       {param({4, 6}), param({2, 2, 4})}},
      {"pad reflect 2-d", [](const std::vector<Tensor>& in) { return F::pad(in[0], {2, 1, 1, 2}, F::PadMode::Reflect); }, {param({1, 2, 3, 4})}},
      {"pad replicate", [](const std::vector<Tensor>& in) { return F::pad(in[0], {1, 2}, F::PadMode::Replicate); }, {param({2, 3})}},
      {"pad circular 3-d", [](const std::vector<Tensor>& in) { return F::pad(in[0], {1, 1, 2, 0, 1, 1}, F::PadMode::Circular); }, {param({1, 2, 2, 3})}},
      {"pad constant crop", [](const std::vector<Tensor>& in) { return F::pad(in[0], {-1, 2, 1, 0}, F::PadMode::Constant, 0.5); }, {param({2, 3, 3})}},
      {"pad constant all dims 1-d", [](const std::vector<Tensor>& in) { return F::pad(in[0], {2, 1}, F::PadMode::Constant, -1.0); }, {param({3})}},
      {"unfold", [](const std::vector<Tensor>& in) { return F::unfold(in[0], {2, 3}, {.dilation = {2, 1}, .padding = 1, .stride = {1, 2}}); }, {param({2, 2, 4, 5})}},
      {"unfold unbatched", [](const std::vector<Tensor>& in) { return F::unfold(in[0], 2); }, {param({2, 3, 3})}},
      {"fold", [](const std::vector<Tensor>& in) { return F::fold(in[0], {4, 5}, 2, {.padding = 1, .stride = 2}); }, {param({2, 8, 9})}},
      {"fold unbatched", [](const std::vector<Tensor>& in) { return F::fold(in[0], {3, 3}, 2); }, {param({4, 4})}},
  });
}

TEST_CASE("forward AD layers: max_pool2d, avg_pool2d, adaptive_avg_pool2d with padding, dilation, ceil_mode") {
  manual_seed(52);
  check_all({
      {"max_pool2d", [](const std::vector<Tensor>& in) { return F::max_pool2d(in[0], 2); }, {distinct_param({2, 2, 4, 4})}},
      {"max_pool2d stride 1 pad 1", [](const std::vector<Tensor>& in) { return F::max_pool2d(in[0], 3, {.stride = 1, .padding = 1}); },
       {distinct_param({1, 2, 4, 5})}},
      {"max_pool2d dilation ceil", [](const std::vector<Tensor>& in) { return F::max_pool2d(in[0], {2, 3}, {.stride = 2, .dilation = 2, .ceil_mode = true}); },
       {distinct_param({1, 1, 7, 8})}},
      {"max_pool2d unbatched", [](const std::vector<Tensor>& in) { return F::max_pool2d(in[0], 2, {.stride = Size2{1, 2}}); }, {distinct_param({2, 3, 4})}},
      {"avg_pool2d", [](const std::vector<Tensor>& in) { return F::avg_pool2d(in[0], 2); }, {param({2, 2, 4, 4})}},
      {"avg_pool2d pad exclude ceil", [](const std::vector<Tensor>& in) { return F::avg_pool2d(in[0], 3, {.stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false}); },
       {param({1, 2, 6, 5})}},
      {"avg_pool2d unbatched", [](const std::vector<Tensor>& in) { return F::avg_pool2d(in[0], {2, 1}, {.stride = 1, .padding = {1, 0}}); }, {param({2, 3, 3})}},
      {"adaptive_avg_pool2d", [](const std::vector<Tensor>& in) { return F::adaptive_avg_pool2d(in[0], {3, 2}); }, {param({2, 2, 5, 7})}},
      {"adaptive_avg_pool2d unbatched", [](const std::vector<Tensor>& in) { return F::adaptive_avg_pool2d(in[0], 1); }, {param({3, 4, 4})}},
  });
}

TEST_CASE("forward AD layers: batch_norm train and eval, layer_norm, group_norm") {
  manual_seed(53);
  const Tensor rm = tensor({0.1, -0.2, 0.3}, kFloat64), rv = tensor({0.5, 1.5, 2.0}, kFloat64);
  check_all({
      {"batch_norm train 2-d", [](const std::vector<Tensor>& in) { return F::batch_norm(in[0], {}, {}, in[1], in[2], true); },
       {param({4, 3}), param({3}), param({3})}},
      {"batch_norm train 4-d", [](const std::vector<Tensor>& in) { return F::batch_norm(in[0], {}, {}, in[1], in[2], true); },
       {param({2, 3, 2, 2}), param({3}), param({3})}},
      {"batch_norm train no affine 3-d", [](const std::vector<Tensor>& in) { return F::batch_norm(in[0], {}, {}, {}, {}, true); },
       {param({2, 3, 3})}},
      {"batch_norm eval", [rm, rv](const std::vector<Tensor>& in) { return F::batch_norm(in[0], rm, rv, in[1], in[2], false); },
       {param({2, 3, 2}), param({3}), param({3})}},
      {"layer_norm", [](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {4}, in[1], in[2]); },
       {param({3, 4}), param({4}), param({4})}},
      {"layer_norm 2 dims", [](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {2, 3}); }, {param({2, 2, 3})}},
      {"group_norm", [](const std::vector<Tensor>& in) { return F::group_norm(in[0], 2, in[1], in[2]); },
       {param({2, 4, 3}), param({4}), param({4})}},
      {"group_norm 4-d one group", [](const std::vector<Tensor>& in) { return F::group_norm(in[0], 1); }, {param({2, 2, 2, 2})}},
  });
}

TEST_CASE("forward AD layers: gelu, silu, elu, softplus, erf, log1p, expm1, embedding") {
  manual_seed(54);
  const Tensor idx = tensor({{0.0, 3.0, 1.0}, {3.0, 3.0, 2.0}}, kFloat64);
  check_all({
      {"gelu", [](const std::vector<Tensor>& in) { return F::gelu(in[0]); }, {param({3, 4})}},
      {"gelu tanh", [](const std::vector<Tensor>& in) { return F::gelu(in[0], F::GeluApproximate::Tanh); }, {param({3, 4})}},
      {"silu", [](const std::vector<Tensor>& in) { return F::silu(in[0]); }, {param({3, 4})}},
      {"elu", [](const std::vector<Tensor>& in) { return F::elu(in[0], 1.5); }, {param({3, 4})}},
      // beta 2, threshold 1: values with 2x > 1 take the linear branch, the others the smooth one.
      {"softplus threshold", [](const std::vector<Tensor>& in) { return F::softplus(in[0], 2.0, 1.0); }, {param({3, 4})}},
      {"softplus", [](const std::vector<Tensor>& in) { return F::softplus(in[0]); }, {param({3, 4})}},
      {"erf", [](const std::vector<Tensor>& in) { return xgrad::erf(in[0]); }, {param({3, 4})}},
      {"log1p", [](const std::vector<Tensor>& in) { return xgrad::log1p(in[0]); }, {positive_param({3, 4})}},
      {"expm1", [](const std::vector<Tensor>& in) { return xgrad::expm1(in[0]); }, {param({3, 4})}},
      {"embedding", [idx](const std::vector<Tensor>& in) { return F::embedding(idx, in[0]); }, {param({4, 3})}},
      // Forward mode gathers the padding row's tangent too (PyTorch's embedding JVP is the gather of
      // the weight's tangent; padding_idx only stops the backward), so the row is a constant here.
      {"embedding padding_idx", [idx](const std::vector<Tensor>& in) {
         Tensor w = cat({in[0], full({1, 3}, 0.5, kFloat64)}, 0);
         return F::embedding(idx, w, 3);
       },
       {param({3, 3})}},
  });
}

TEST_CASE("forward AD layers: conv2d's JVP by hand") {
  // x = [[1,2,3],[4,5,6],[7,8,9]] (1×1×3×3), W = [[1,0],[0,-1]] (so y[i,j] = x[i,j] - x[i+1,j+1] + b),
  // tangents ẋ = diag(1, 2, 3), Ẇ = [[0,1],[0,0]], ḃ = 2. conv is bilinear in (x, W) plus b:
  //   ẏ = conv(ẋ, W) + conv(x, Ẇ) + ḃ
  //   conv(ẋ, W)[i,j] = ẋ[i,j] - ẋ[i+1,j+1] = [[1-2, 0-0], [0-0, 2-3]] = [[-1, 0], [0, -1]]
  //   conv(x, Ẇ)[i,j] = x[i,j+1]               = [[2, 3], [5, 6]]
  //   ẏ = [[-1+2+2, 0+3+2], [0+5+2, -1+6+2]]  = [[3, 5], [7, 7]]
  fwd::DualLevel level;
  Tensor x = fwd::make_dual(tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}, {7.0, 8.0, 9.0}}, kFloat64).reshape({1, 1, 3, 3}),
                            tensor({{1.0, 0.0, 0.0}, {0.0, 2.0, 0.0}, {0.0, 0.0, 3.0}}, kFloat64).reshape({1, 1, 3, 3}));
  Tensor w = fwd::make_dual(tensor({{1.0, 0.0}, {0.0, -1.0}}, kFloat64).reshape({1, 1, 2, 2}),
                            tensor({{0.0, 1.0}, {0.0, 0.0}}, kFloat64).reshape({1, 1, 2, 2}));
  Tensor b = fwd::make_dual(tensor({0.5}, kFloat64), tensor({2.0}, kFloat64));
  auto [y, ydot] = fwd::unpack_dual(F::conv2d(x, w, b));
  // y = [[1-5, 2-6], [4-8, 5-9]] + 0.5
  check_values(y, {1, 1, 2, 2}, {-3.5, -3.5, -3.5, -3.5}, 0);
  check_values(ydot, {1, 1, 2, 2}, {3, 5, 7, 7}, 0);
}

TEST_CASE("forward AD layers: batch_norm training JVP by hand, running statistics updated once") {
  // One channel, x = [1, 2, 3, 4], eps = 0: μ = 2.5, σ² = 1.25, s = 1/σ = 2/√5, x̂ = [-3, -1, 1, 3]/√5.
  // ẋ = [1, 0, 0, 0]: mean(ẋ) = 1/4, mean(x̂·ẋ) = -3/(4√5), so
  //   ẋ̂ = s·(ẋ - mean(ẋ) - x̂·mean(x̂·ẋ)) = s·([15, -5, -5, -5]/20 + [-9, -3, 3, 9]/20)
  //      = (2/√5)·[6, -8, -2, 4]/20 = [0.6, -0.8, -0.2, 0.4]/√5
  // (it sums to 0 and is orthogonal to x̂, as the tangent of a zero-mean, unit-variance vector must).
  // With γ = 2, β = 1 and tangents γ̇ = 1, β̇ = 0.5: y = γ·x̂ + β, so
  //   ẏ = γ̇·x̂ + γ·ẋ̂ + β̇ = ([-3, -1, 1, 3] + [1.2, -1.6, -0.4, 0.8])/√5 + 0.5 = [-1.8, -2.6, 0.6, 3.8]/√5 + 0.5
  const double r5 = std::sqrt(5.0);
  Tensor running_mean = zeros({1}, kFloat64), running_var = full({1}, 1.0, kFloat64);
  {
    fwd::DualLevel level;
    Tensor x = fwd::make_dual(tensor({1.0, 2.0, 3.0, 4.0}, kFloat64).reshape({4, 1}), tensor({1.0, 0.0, 0.0, 0.0}, kFloat64).reshape({4, 1}));
    Tensor g = fwd::make_dual(tensor({2.0}, kFloat64), tensor({1.0}, kFloat64));
    Tensor b = fwd::make_dual(tensor({1.0}, kFloat64), tensor({0.5}, kFloat64));
    auto [y, ydot] = fwd::unpack_dual(F::batch_norm(x, running_mean, running_var, g, b, true, 0.1, 0.0));
    check_values(y, {4, 1}, {-6 / r5 + 1, -2 / r5 + 1, 2 / r5 + 1, 6 / r5 + 1});
    check_values(ydot, {4, 1}, {-1.8 / r5 + 0.5, -2.6 / r5 + 0.5, 0.6 / r5 + 0.5, 3.8 / r5 + 0.5});
    // The normalised part alone (no affine): ẋ̂.
    Tensor running_mean2 = zeros({1}, kFloat64), running_var2 = full({1}, 1.0, kFloat64);
    check_values(fwd::unpack_dual(F::batch_norm(x, running_mean2, running_var2, {}, {}, true, 0.1, 0.0)).tangent, {4, 1},
                 {0.6 / r5, -0.8 / r5, -0.2 / r5, 0.4 / r5});
  }
  // One update, the same as without forward mode: r = 0.9·r + 0.1·batch, the variance unbiased (5/3).
  check_values(running_mean, {1}, {0.25});
  check_values(running_var, {1}, {0.9 + 0.1 * 5.0 / 3.0});
  // Batched tangents: still one update.
  {
    detail::BatchedDualLevel level(4);
    Tensor x = fwd::make_dual(tensor({1.0, 2.0, 3.0, 4.0}, kFloat64).reshape({4, 1}), eye(4, kFloat64).reshape({4, 4, 1}));
    Tensor ydot = fwd::unpack_dual(F::batch_norm(x, running_mean, running_var, {}, {}, true, 0.1, 0.0)).tangent;
    // Direction 0 is the ẋ above.
    check_values(slice(ydot, 0, 0, 1), {1, 4, 1}, {0.6 / r5, -0.8 / r5, -0.2 / r5, 0.4 / r5});
  }
  check_values(running_mean, {1}, {0.9 * 0.25 + 0.25});
  check_values(running_var, {1}, {0.9 * (0.9 + 0.1 * 5.0 / 3.0) + 0.1 * 5.0 / 3.0});
}

TEST_CASE("forward AD layers: normalisation's JVP is the same with and without a reverse graph") {
  // With a reverse graph the rule recomputes the statistics from x by Tensor ops (differentiable);
  // without one it takes them from the forward. Both must agree.
  manual_seed(55);
  Tensor x = param({3, 2, 4}), dx = randn({3, 2, 4}, kFloat64);
  std::vector<std::function<Tensor(const Tensor&)>> fns = {
      [](const Tensor& v) { return F::batch_norm(v, {}, {}, {}, {}, true); },
      [](const Tensor& v) { return F::layer_norm(v, {2, 4}); },
      [](const Tensor& v) { return F::group_norm(v, 2); },
  };
  for (const auto& f : fns) {
    fwd::DualLevel level;
    const std::vector<double> with_graph = values(fwd::unpack_dual(f(fwd::make_dual(x, dx))).tangent);
    std::vector<double> without;
    {
      NoGradGuard no_grad;
      without = values(fwd::unpack_dual(f(fwd::make_dual(x, dx))).tangent);
    }
    REQUIRE(with_graph.size() == without.size());
    for (std::size_t i = 0; i < without.size(); ++i) CHECK(without[i] == doctest::Approx(with_graph[i]).epsilon(1e-12));
  }
}

TEST_CASE("forward AD layers: 0-element batches give 0-element tangents") {
  fwd::DualLevel level;
  Tensor x = fwd::make_dual(zeros({0, 2, 5, 5}, kFloat64), zeros({0, 2, 5, 5}, kFloat64));
  Tensor w = fwd::make_dual(randn({3, 2, 3, 3}, kFloat64), randn({3, 2, 3, 3}, kFloat64));
  for (const Tensor& y : {F::conv2d(x, w), F::max_pool2d(x, 2), F::avg_pool2d(x, 2), F::batch_norm(x, {}, {}, {}, {}, false),
                          F::group_norm(x, 2), F::gelu(x)}) {
    Tensor t = fwd::unpack_dual(y).tangent;
    REQUIRE(t.defined());
    CHECK(t.shape() == y.shape());
    CHECK(t.numel() == 0);
  }
}

TEST_CASE("forward AD layers: a small CNN's JVP agrees with reverse mode, <u, J v> = <J^T u, v>") {
  // conv2d -> batch_norm (training) -> gelu -> max_pool2d -> group_norm -> avg_pool2d -> flatten ->
  // linear: the input and every parameter get a random tangent v; one jvp against one vjp.
  manual_seed(56);
  std::vector<Tensor> params = {param({2, 3, 6, 6}), param({4, 3, 3, 3}), param({4}), param({4}), param({4}),
                                param({4}), param({4}), param({5, 4})};
  auto net = [](const std::vector<Tensor>& p) {
    Tensor h = F::conv2d(p[0], p[1], p[2], {.padding = 1});
    h = F::batch_norm(h, {}, {}, p[3], p[4], true);
    h = F::max_pool2d(F::gelu(h), 2);
    h = F::avg_pool2d(F::group_norm(h, 2, p[5], p[6]), 3);
    return F::linear(flatten(h, 1), p[7]);
  };
  std::vector<Tensor> v;
  for (const Tensor& p : params) v.push_back(randn(p.shape(), kFloat64));
  Tensor jv;
  {
    fwd::DualLevel level;
    std::vector<Tensor> duals;
    for (std::size_t i = 0; i < params.size(); ++i) duals.push_back(fwd::make_dual(params[i], v[i]));
    jv = fwd::unpack_dual(net(duals)).tangent;
  }
  REQUIRE(jv.defined());
  Tensor y = net(params);
  REQUIRE(jv.shape() == y.shape());
  Tensor u = randn(y.shape(), kFloat64);
  const std::vector<Tensor> g = autograd::grad({y}, params, {u});
  double lhs = (u * jv).sum().item<double>(), rhs = 0;
  for (std::size_t i = 0; i < params.size(); ++i) rhs += (g[i] * v[i]).sum().item<double>();
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-10));
  CHECK(std::abs(lhs) > 1e-3);  // a non-trivial direction

  // float32: the same tangents in single precision, close to float64's.
  Tensor jv32;
  {
    fwd::DualLevel level;
    std::vector<Tensor> duals;
    for (std::size_t i = 0; i < params.size(); ++i)
      duals.push_back(fwd::make_dual(params[i].detach().to(kFloat32), v[i].to(kFloat32)));
    jv32 = fwd::unpack_dual(net(duals)).tangent;
  }
  REQUIRE(jv32.dtype() == kFloat32);
  REQUIRE(jv32.shape() == jv.shape());
  const std::vector<double> a = values(jv), b = values(jv32.to(kFloat64));
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i]).epsilon(1e-3).scale(1.0));
}
