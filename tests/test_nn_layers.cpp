#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include <xgrad.hpp>

#include "helpers.hpp"

using namespace xgrad;
using test::check_values;

namespace {

// Runs gradcheck and gradgradcheck of a module applied to x (float64), with respect to x and the
// module's parameters.
void check_module_gradients(nn::Module& m, const Tensor& x, bool second_order = true) {
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  auto fn = [&](const std::vector<Tensor>& in) { return m(in[0]); };
  CHECK(gradcheck(fn, inputs));
  if (second_order) CHECK(gradgradcheck(fn, inputs));
}

}  // namespace

TEST_CASE("nn::Linear: forward values by hand, any input rank") {
  nn::Linear lin(2, 3);
  lin.weight.data<float>() = xt::xarray<float>{{1, 2}, {3, 4}, {5, 6}};
  lin.bias.data<float>() = xt::xarray<float>{0.5f, -1.0f, 2.0f};
  // x = [1, -1]: W·x = [1-2, 3-4, 5-6] = [-1, -1, -1], plus b = [-0.5, -2, 1].
  check_values(lin(tensor({{1.0, -1.0}})), {1, 3}, {-0.5, -2.0, 1.0}, 1e-6);
  // A 1-D input gives a 1-D output.
  check_values(lin(tensor({1.0, -1.0})), {3}, {-0.5, -2.0, 1.0}, 1e-6);
  // A (2, 2, 2) input maps its last dimension: rows [1, -1], [0, 1], [2, 0], [0, 0]:
  //   [0, 1] -> [2, 4, 6] + b = [2.5, 3, 8];  [2, 0] -> [2, 6, 10] + b = [2.5, 5, 12];  [0, 0] -> b.
  Tensor x3 = tensor({1.0, -1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0}).reshape({2, 2, 2});
  check_values(lin(x3), {2, 2, 3}, {-0.5, -2, 1, 2.5, 3, 8, 2.5, 5, 12, 0.5, -1, 2}, 1e-6);

  nn::Linear no_bias(2, 1, false);
  CHECK_FALSE(no_bias.bias.defined());
  CHECK(no_bias.parameters().size() == 1);
  no_bias.weight.data<float>() = xt::xarray<float>{{2, 3}};
  check_values(no_bias(tensor({{1.0, 1.0}})), {1, 1}, {5.0}, 1e-6);  // 2 + 3
}

TEST_CASE("nn::Linear: errors, shapes and default initialisation bounds") {
  CHECK_THROWS_WITH_AS(nn::Linear(0, 3), doctest::Contains("in_features=0"), Error);
  CHECK_THROWS_WITH_AS(nn::Linear(3, 0), doctest::Contains("out_features=0"), Error);
  manual_seed(2718);  // the statistical bounds below hold for this draw (and for nearly every other)
  nn::Linear lin(100, 50);
  CHECK(lin.weight.shape() == Shape{50, 100});
  CHECK(lin.bias.shape() == Shape{50});
  CHECK_THROWS_WITH_AS(lin(ones({4, 99})), doctest::Contains("[4, 99]"), Error);
  CHECK_THROWS_WITH_AS(lin(ones({4, 99})), doctest::Contains("last dimension of 100"), Error);
  CHECK_THROWS_AS(lin(tensor(1.0)), Error);

  // kaiming_uniform_(a = sqrt(5)): gain = sqrt(2 / (1 + 5)), bound = sqrt(3)·gain/sqrt(fan_in) = 1/sqrt(100) = 0.1.
  const double bound = 0.1;
  auto check_uniform = [&](const Tensor& t) {
    const auto& a = t.data<float>();
    double lo = 1, hi = -1, mean = 0;
    for (float v : a) {
      lo = std::min(lo, double(v));
      hi = std::max(hi, double(v));
      mean += v;
    }
    mean /= static_cast<double>(a.size());
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    // With 5000 (50) draws the extremes come close to the bound.
    CHECK(hi > bound * (a.size() > 1000 ? 0.99 : 0.7));
    CHECK(lo < -bound * (a.size() > 1000 ? 0.99 : 0.7));
    // The mean of U(-0.1, 0.1) has standard deviation 0.1/sqrt(3·n).
    CHECK(std::abs(mean) < 5 * bound / std::sqrt(3.0 * static_cast<double>(a.size())));
  };
  check_uniform(lin.weight);
  check_uniform(lin.bias);

  // Reproducible under manual_seed, different otherwise.
  manual_seed(11);
  nn::Linear a(4, 4);
  manual_seed(11);
  nn::Linear b(4, 4);
  nn::Linear c(4, 4);
  CHECK(xt::all(xt::equal(a.weight.data<float>(), b.weight.data<float>())));
  CHECK_FALSE(xt::all(xt::equal(a.weight.data<float>(), c.weight.data<float>())));

  nn::Linear f64(3, 2, true, kFloat64);
  CHECK(f64.weight.dtype() == kFloat64);
}

TEST_CASE("nn::Linear: reset_parameters re-draws the default initialisation in place") {
  manual_seed(31);
  nn::Linear lin(20, 30, true, kFloat64);
  const Tensor weight_handle = lin.weight;  // taken before the reset: must see the new values
  const std::vector<Tensor> params_before = lin.parameters();
  {
    NoGradGuard no_grad;
    lin.weight.data<double>().fill(5.0);
    lin.bias.data<double>().fill(5.0);
  }
  // The same seed gives the same draws as a freshly constructed Linear: reset_parameters is the default init.
  manual_seed(31);
  lin.reset_parameters();
  manual_seed(31);
  const nn::Linear fresh(20, 30, true, kFloat64);
  CHECK(xt::all(xt::equal(lin.weight.data<double>(), fresh.weight.data<double>())));
  CHECK(xt::all(xt::equal(lin.bias.data<double>(), fresh.bias.data<double>())));
  // In place: the same tensors (handles, the parameter list) now hold the new values; still trainable leaves.
  CHECK(weight_handle.is_same(lin.weight));
  CHECK(params_before[0].is_same(lin.weight));
  CHECK(params_before[1].is_same(lin.bias));
  CHECK(lin.weight.requires_grad());
  CHECK(lin.weight.is_leaf());
  CHECK(lin.weight.dtype() == kFloat64);
  // Within the default bounds, U(±1/sqrt(in_features)) = U(±1/sqrt(20)) for both (no 5.0 left).
  const double bound = 1.0 / std::sqrt(20.0);
  CHECK(xt::amax(xt::abs(lin.weight.data<double>()))() <= bound);
  CHECK(xt::amax(xt::abs(lin.bias.data<double>()))() <= bound);
  // A second reset continues the stream: new values.
  lin.reset_parameters();
  CHECK_FALSE(xt::all(xt::equal(lin.weight.data<double>(), fresh.weight.data<double>())));
  // Without a bias, only the weight is drawn and the bias stays undefined.
  nn::Linear no_bias(4, 2, false);
  no_bias.reset_parameters();
  CHECK_FALSE(no_bias.bias.defined());
  CHECK(no_bias.parameters().size() == 1);
}

TEST_CASE("nn::Linear: gradcheck and gradgradcheck in float64") {
  manual_seed(5);
  nn::Linear lin(3, 2, true, kFloat64);
  check_module_gradients(lin, randn({4, 3}, kFloat64).requires_grad_());
  check_module_gradients(lin, randn({3}, kFloat64).requires_grad_());
  check_module_gradients(lin, randn({2, 2, 3}, kFloat64).requires_grad_());
  nn::Linear no_bias(3, 2, false, kFloat64);
  check_module_gradients(no_bias, randn({4, 3}, kFloat64).requires_grad_());
}

TEST_CASE("nn activations: forward values by hand") {
  Tensor x = tensor({-2.0, 0.5, 3.0});
  check_values(nn::ReLU()(x), {3}, {0.0, 0.5, 3.0}, 1e-6);
  // sigmoid(v) = 1/(1+e^-v)
  check_values(nn::Sigmoid()(x), {3}, {1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(-0.5)), 1 / (1 + std::exp(-3.0))}, 1e-6);
  check_values(nn::Tanh()(x), {3}, {std::tanh(-2.0), std::tanh(0.5), std::tanh(3.0)}, 1e-6);
  // slope·v below 0: 0.01·(-2) = -0.02; 0.2·(-2) = -0.4.
  check_values(nn::LeakyReLU()(x), {3}, {-0.02, 0.5, 3.0}, 1e-6);
  check_values(nn::LeakyReLU(0.2)(x), {3}, {-0.4, 0.5, 3.0}, 1e-6);
  // softmax([0, ln 3]) = [1, 3] / 4; along dim 1 of a (2, 2) input each row separately.
  Tensor rows = tensor({{0.0, std::log(3.0)}, {std::log(2.0), std::log(2.0)}}, kFloat64);
  check_values(nn::Softmax(1)(rows), {2, 2}, {0.25, 0.75, 0.5, 0.5}, 1e-12);
  check_values(nn::LogSoftmax(-1)(rows), {2, 2}, {std::log(0.25), std::log(0.75), std::log(0.5), std::log(0.5)}, 1e-12);
  // Along dim 0, the columns: [0, ln 2] -> [1/3, 2/3] and [ln 3, ln 2] -> [3/5, 2/5].
  check_values(nn::Softmax(0)(rows), {2, 2}, {1.0 / 3, 0.6, 2.0 / 3, 0.4}, 1e-12);
}

TEST_CASE("nn activations: gradcheck and gradgradcheck in float64") {
  // Points away from the kinks of ReLU and LeakyReLU (finite differences straddle them otherwise).
  Tensor x = tensor({{-1.5, 0.3, 2.0}, {0.7, -0.4, -2.5}}, kFloat64, true);
  nn::ReLU relu;
  nn::Sigmoid sigmoid;
  nn::Tanh tanh;
  nn::LeakyReLU leaky(0.1);
  nn::Softmax softmax(1);
  nn::LogSoftmax log_softmax(0);
  for (nn::Module* m : std::vector<nn::Module*>{&relu, &sigmoid, &tanh, &leaky, &softmax, &log_softmax}) {
    CAPTURE(m->type_name());
    check_module_gradients(*m, x);
  }
}

TEST_CASE("nn::Flatten and nn::Identity") {
  Tensor x = arange(24).reshape({2, 3, 4});
  CHECK(nn::Flatten()(x).shape() == Shape{2, 12});
  CHECK(nn::Flatten(0)(x).shape() == Shape{24});
  CHECK(nn::Flatten(0, 1)(x).shape() == Shape{6, 4});
  CHECK(nn::Flatten(1)(x).data<float>()(1, 5) == 17.0f);  // row 1 starts at 12
  nn::Identity id;
  CHECK(id(x).is_same(x));

  Tensor xd = randn({2, 2, 2}, kFloat64).requires_grad_();
  nn::Flatten flatten;
  check_module_gradients(flatten, xd);
}

TEST_CASE("nn::Dropout: statistics, scaling, eval identity, reproducibility, gradient") {
  CHECK_THROWS_WITH_AS(nn::Dropout(1.0), doctest::Contains("[0, 1), got 1"), Error);
  CHECK_THROWS_WITH_AS(nn::Dropout(-0.1), doctest::Contains("got -0.1"), Error);
  CHECK_THROWS_WITH_AS(nn::functional::dropout(ones({2}), 1.5), doctest::Contains("got 1.5"), Error);

  nn::Dropout drop(0.3);
  const std::size_t n = 100000;
  Tensor x = ones({n});
  manual_seed(42);
  Tensor y = drop(x);
  const float scale = static_cast<float>(1.0 / 0.7);
  std::size_t zeros_count = 0, other_values = 0;
  double total = 0;
  for (float v : y.data<float>()) {
    if (v == 0.0f)
      ++zeros_count;
    else if (v != scale)  // survivors are scaled by exactly 1/(1-p)
      ++other_values;
    total += v;
  }
  CHECK(other_values == 0);
  // The fraction of zeros is Binomial(n, 0.3)/n with standard deviation sqrt(0.21/n) ≈ 0.00145.
  CHECK(std::abs(static_cast<double>(zeros_count) / n - 0.3) < 0.01);
  // The mean is preserved in expectation (standard deviation sqrt(0.3/0.7/n) ≈ 0.002).
  CHECK(std::abs(total / n - 1.0) < 0.015);

  manual_seed(42);
  Tensor again = drop(x);
  CHECK(xt::all(xt::equal(again.data<float>(), y.data<float>())));
  Tensor different = drop(x);
  CHECK_FALSE(xt::all(xt::equal(different.data<float>(), y.data<float>())));

  drop.eval();
  Tensor z = drop(x);
  CHECK(z.is_same(x));
  drop.train();
  CHECK(nn::Dropout(0.0)(x).is_same(x));

  // The gradient is the mask itself: d(sum(x·m))/dx = m.
  Tensor xd = ones({50}, kFloat64).requires_grad_();
  manual_seed(9);
  Tensor yd = nn::Dropout(0.5)(xd);
  yd.sum().backward();
  CHECK(xt::all(xt::equal(xd.grad().data<double>(), yd.data<double>())));
}

TEST_CASE("nn::Dropout: gradcheck and gradgradcheck with a fixed mask") {
  // Re-seeding before every call makes every evaluation draw the same mask m, so dropout is the fixed
  // map x -> x·m that gradcheck can difference. The product with x makes the second derivative
  // nonzero (d²(x·m·x)/dx² = 2m), so gradgradcheck checks something.
  manual_seed(8);
  Tensor x = randn({3, 5}, kFloat64).requires_grad_();
  nn::Dropout drop(0.4);
  auto fn = [&](const std::vector<Tensor>& in) {
    manual_seed(17);
    return drop(in[0]) * in[0];
  };
  CHECK(gradcheck(fn, {x}));
  CHECK(gradgradcheck(fn, {x}));
  auto functional = [](const std::vector<Tensor>& in) {
    manual_seed(17);
    return nn::functional::dropout(in[0], 0.25);
  };
  CHECK(gradcheck(functional, {x}));
  CHECK(gradgradcheck(functional, {x}));
  // This mask really drops some elements and keeps others, so both branches are differenced.
  manual_seed(17);
  const Tensor mask = drop(ones({3, 5}, kFloat64));
  const auto& m = mask.data<double>();
  const auto dropped = std::count(m.begin(), m.end(), 0.0);
  CHECK(dropped > 0);
  CHECK(dropped < 15);
  // Kept elements are scaled by 1/(1-p) = 1/0.6.
  CHECK(std::count(m.begin(), m.end(), 1.0 / 0.6) == 15 - dropped);
}
