// batch_norm, layer_norm, group_norm: values by hand (derivations in comments), BatchNorm's train/eval
// behaviour and running statistics against PyTorch's rules, the table checks, errors.
#include <doctest/doctest.h>

#include <cmath>

#include <xgrad.hpp>

#include "helpers.hpp"
#include "error_checks.hpp"

using namespace xgrad;
using test::check_error;
using test::check_values;
using test::param;

namespace F = xgrad::nn::functional;

namespace {
// x (4×2): channel 0 holds 1, 2, 3, 4 (mean 2.5, biased variance 1.25, unbiased 5/3); channel 1 holds 2, 2, 2, 2.
Tensor bn_input(Dtype dt) { return tensor({{1.0, 2.0}, {2.0, 2.0}, {3.0, 2.0}, {4.0, 2.0}}, dt); }
const double kEps = 1e-5;
}  // namespace

TEST_CASE("batch_norm: training normalises with the batch statistics and updates the running ones as PyTorch") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const double tol = dt == kFloat32 ? 1e-6 : 1e-12;
    Tensor rm = zeros({2}, dt), rv = ones({2}, dt);
    Tensor y = F::batch_norm(bn_input(dt), rm, rv, {}, {}, true);
    // Channel 0: (x - 2.5)/sqrt(1.25 + eps); channel 1: 0 (x equals its mean).
    const double s = 1.0 / std::sqrt(1.25 + kEps);
    check_values(y, {4, 2}, {-1.5 * s, 0, -0.5 * s, 0, 0.5 * s, 0, 1.5 * s, 0}, tol);
    // running = (1 - 0.1)·running + 0.1·batch, the variance unbiased (·4/3): mean [0.25, 0.2], var [0.9 + 0.5/3, 0.9].
    check_values(rm, {2}, {0.25, 0.2}, tol);
    check_values(rv, {2}, {0.9 + 0.1 * 5.0 / 3.0, 0.9}, tol);
    // A second step with momentum 0.5: mean 0.5·0.25 + 0.5·2.5 = 1.375; var 0.5·(0.9 + 1/60) + 0.5·5/3.
    F::batch_norm(bn_input(dt), rm, rv, {}, {}, true, 0.5);
    check_values(rm, {2}, {1.375, 1.1}, tol);
    check_values(rv, {2}, {0.5 * (0.9 + 0.5 / 3.0) + 0.5 * 5.0 / 3.0, 0.45}, tol);
  }
}

TEST_CASE("batch_norm: eval uses the running statistics, weight and bias, and changes nothing") {
  Tensor rm = tensor({0.5, -1.0}, kFloat64), rv = tensor({4.0, 0.25}, kFloat64);
  Tensor w = tensor({2.0, 3.0}, kFloat64), b = tensor({1.0, -1.0}, kFloat64);
  Tensor y = F::batch_norm(bn_input(kFloat64), rm, rv, w, b, false);
  // y = (x - rm)/sqrt(rv + eps)·w + b: channel 0 (x - 0.5)/sqrt(4 + eps)·2 + 1, channel 1 (2 + 1)/sqrt(0.25 + eps)·3 - 1.
  const double s0 = 2.0 / std::sqrt(4 + kEps), s1 = 3.0 / std::sqrt(0.25 + kEps);
  check_values(y, {4, 2}, {0.5 * s0 + 1, 3 * s1 - 1, 1.5 * s0 + 1, 3 * s1 - 1, 2.5 * s0 + 1, 3 * s1 - 1, 3.5 * s0 + 1, 3 * s1 - 1});
  check_values(rm, {2}, {0.5, -1.0}, 0);
  check_values(rv, {2}, {4.0, 0.25}, 0);
}

TEST_CASE("batch_norm: N×C×L and N×C×H×W take statistics over N and the spatial dims") {
  manual_seed(2);
  for (const Shape& s : {Shape{3, 2, 5}, Shape{2, 3, 2, 4}}) {
    Tensor x = randn(s, kFloat64);
    std::vector<int> dims{0};
    for (int d = 2; d < static_cast<int>(s.size()); ++d) dims.push_back(d);
    // Reference by reductions: (x - mean) / sqrt(var_biased + eps).
    Tensor ref = (x - x.mean(dims, true)) / (x.var(dims, false, true) + kEps).sqrt();
    Tensor y = F::batch_norm(x, {}, {}, {}, {}, true);
    const auto& a = y.data<double>();
    const auto& b = ref.data<double>();
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a.data()[i] == doctest::Approx(b.data()[i]).epsilon(1e-12));
  }
}

TEST_CASE("layer_norm and group_norm: values by hand") {
  // layer_norm over [1, 2, 3]: mean 2, biased variance 2/3 -> [-1, 0, 1]/sqrt(2/3 + eps); weight [1, 2, 3], bias 1.
  Tensor x = tensor({{1.0, 2.0, 3.0}}, kFloat64);
  const double s = 1.0 / std::sqrt(2.0 / 3.0 + kEps);
  check_values(F::layer_norm(x, {3}), {1, 3}, {-s, 0, s});
  check_values(F::layer_norm(x, {3}, tensor({1.0, 2.0, 3.0}, kFloat64), tensor({1.0, 1.0, 1.0}, kFloat64)), {1, 3},
               {1 - s, 1, 1 + 3 * s});
  // Over the last two dims of a 1×2×2 [[1, 3], [5, 7]]: mean 4, variance (9+1+1+9)/4 = 5.
  const double t = 1.0 / std::sqrt(5 + kEps);
  check_values(F::layer_norm(tensor({{1.0, 3.0}, {5.0, 7.0}}, kFloat64).reshape({1, 2, 2}), {2, 2}), {1, 2, 2},
               {-3 * t, -t, t, 3 * t});
  // group_norm, 4 channels in 2 groups: [1, 3] -> mean 2, var 1 -> ±1/sqrt(1 + eps); [10, 20] -> mean 15, var 25.
  Tensor g = tensor({1.0, 3.0, 10.0, 20.0}, kFloat64).reshape({1, 4, 1});
  const double a = 1.0 / std::sqrt(1 + kEps), b = 5.0 / std::sqrt(25 + kEps);
  check_values(F::group_norm(g, 2), {1, 4, 1}, {-a, a, -b, b});
  // Per-channel weight and bias after normalisation: channel c scaled by c+1, shifted by -c.
  check_values(F::group_norm(g, 2, tensor({1.0, 2.0, 3.0, 4.0}, kFloat64), tensor({0.0, -1.0, -2.0, -3.0}, kFloat64)),
               {1, 4, 1}, {-a, 2 * a - 1, -3 * b - 2, 4 * b - 3});
}

TEST_CASE("BatchNorm2d module: train updates running stats and num_batches_tracked, eval uses them") {
  nn::BatchNorm2d bn(2);
  // PyTorch's state_dict names and initial values.
  std::vector<std::string> names;
  for (const auto& [name, t] : bn.state_dict()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
  check_values(bn.running_var, {2}, {1, 1}, 0);
  // One channel of constant 3 and one of 0 / 4 alternating (mean 2, biased var 4, unbiased 4·8/7).
  Tensor x = zeros({2, 2, 2, 2});
  x.data<float>() = xt::xarray<float>({{{{3, 3}, {3, 3}}, {{0, 4}, {0, 4}}}, {{{3, 3}, {3, 3}}, {{0, 4}, {0, 4}}}});
  Tensor y = bn(x);
  check_values(bn.running_mean, {2}, {0.3, 0.2}, 1e-6);
  check_values(bn.running_var, {2}, {0.9, 0.9 + 0.1 * 4 * 8 / 7.0}, 1e-6);
  check_values(bn.num_batches_tracked, {}, {1}, 0);
  // Training output of channel 1: (x - 2)/sqrt(4 + eps) = ∓2/sqrt(4 + eps).
  CHECK(y.data<float>()(0, 1, 0, 0) == doctest::Approx(-2 / std::sqrt(4 + kEps)));
  bn.eval();
  Tensor z = bn(x);
  check_values(bn.num_batches_tracked, {}, {1}, 0);
  // Eval channel 0: (3 - 0.3)/sqrt(0.9 + eps).
  CHECK(z.data<float>()(0, 0, 0, 0) == doctest::Approx(2.7 / std::sqrt(0.9 + kEps)).epsilon(1e-6));
  // Without running statistics, eval still normalises with the batch's.
  nn::BatchNorm1d plain(2, {.track_running_stats = false});
  plain.eval();
  CHECK(plain.buffers().empty());
  check_values(plain(tensor({{1.0, 0.0}, {3.0, 0.0}})), {2, 2}, {-1 / std::sqrt(1 + kEps), 0, 1 / std::sqrt(1 + kEps), 0}, 1e-6);
}

TEST_CASE("normalisation: 0-element batches give 0-element outputs and gradients, running stats untouched") {
  Tensor x = zeros({0, 3, 2}, kFloat64);
  x.requires_grad_();
  Tensor w = test::param({3}), b = test::param({3});
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  Tensor y = F::batch_norm(x, rm, rv, w, b, true) + F::group_norm(x, 3, w, b) + F::layer_norm(x, {3, 2});
  REQUIRE(y.shape() == Shape{0, 3, 2});
  y.sum().backward();
  CHECK(x.grad().shape() == Shape{0, 3, 2});
  check_values(w.grad(), {3}, {0, 0, 0}, 0);
  check_values(rm, {3}, {0, 0, 0}, 0);
  check_values(rv, {3}, {1, 1, 1}, 0);
}

TEST_CASE("normalisation errors name the op and the shapes") {
  // BatchNorm with a wrong channel count.
  check_error([] { F::batch_norm(zeros({2, 3}), zeros({4}), ones({4})); }, {"batch_norm", "running_mean of shape [4]", "[3]", "[2, 3]"});
  check_error([] { F::batch_norm(zeros({2, 3}), {}, {}, ones({2})); }, {"batch_norm", "weight of shape [2]"});
  check_error([] { nn::BatchNorm2d(4)(zeros({2, 3, 5, 5})); }, {"BatchNorm2d", "[2, 3, 5, 5]", "3 channels", "expected 4"});
  check_error([] { nn::BatchNorm2d(3)(zeros({2, 3, 5})); }, {"BatchNorm2d", "4-D", "[2, 3, 5]"});
  // A training batch of one value per channel.
  check_error([] { F::batch_norm(zeros({1, 3}), zeros({3}), ones({3}), {}, {}, true); },
              {"batch_norm", "more than 1 value per channel", "[1, 3]"});
  check_error([] { nn::BatchNorm2d(3)(zeros({1, 3, 1, 1})); }, {"batch_norm", "more than 1 value per channel", "[1, 3, 1, 1]"});
  check_error([] { F::batch_norm(zeros({3}), {}, {}); }, {"batch_norm", "[3]"});
  // LayerNorm's normalized_shape not matching the trailing dims.
  check_error([] { F::layer_norm(zeros({2, 4}), {3}); }, {"layer_norm", "normalized_shape [3]", "[2, 4]"});
  check_error([] { F::layer_norm(zeros({4}), {2, 4}); }, {"layer_norm", "[2, 4]", "[4]"});
  check_error([] { nn::LayerNorm({5})(zeros({2, 4})); }, {"layer_norm", "[5]", "[2, 4]"});
  check_error([] { F::group_norm(zeros({2, 6, 3}), 4); }, {"group_norm", "channels 6", "num_groups 4", "[2, 6, 3]"});
  check_error([] { F::batch_norm(zeros({2, 3}), zeros({3}, kFloat64), ones({3}, kFloat64)); }, {"batch_norm", "dtype"});
}
