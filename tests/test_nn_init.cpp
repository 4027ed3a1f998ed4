#include <doctest/doctest.h>

#include <cmath>

#include <xgrad.hpp>

using namespace xgrad;
namespace init = xgrad::nn::init;

namespace {

struct Stats {
  double min = INFINITY, max = -INFINITY, mean = 0, stddev = 0;
};

Stats stats_of(const Tensor& t) {
  Stats s;
  const auto& a = t.data<float>();
  for (float v : a) {
    s.min = std::min(s.min, double(v));
    s.max = std::max(s.max, double(v));
    s.mean += v;
  }
  s.mean /= static_cast<double>(a.size());
  for (float v : a) s.stddev += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(s.stddev / static_cast<double>(a.size()));
  return s;
}

// Thousands separators, as the summary prints them.
std::string grouped(std::size_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

TEST_CASE("nn::init: fans and gains as PyTorch computes them") {
  // (out, in, kh, kw) = (4, 3, 5, 5): receptive field 25, fan_in = 3·25, fan_out = 4·25.
  auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(zeros({4, 3, 5, 5}));
  CHECK(fan_in == 75);
  CHECK(fan_out == 100);
  auto [in2, out2] = init::calculate_fan_in_and_fan_out(zeros({7, 2}));
  CHECK(in2 == 2);
  CHECK(out2 == 7);
  CHECK_THROWS_WITH_AS(init::calculate_fan_in_and_fan_out(zeros({5})), doctest::Contains("fewer than 2 dimensions"),
                       Error);
  CHECK_THROWS_AS(init::xavier_uniform_(zeros({5})), Error);

  CHECK(init::calculate_gain("linear") == 1.0);
  CHECK(init::calculate_gain("sigmoid") == 1.0);
  CHECK(init::calculate_gain("tanh") == doctest::Approx(5.0 / 3));
  CHECK(init::calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain("leaky_relu") == doctest::Approx(std::sqrt(2.0 / (1 + 0.01 * 0.01))));
  CHECK(init::calculate_gain("leaky_relu", 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)));
  CHECK(init::calculate_gain("selu") == 0.75);
  CHECK_THROWS_WITH_AS(init::calculate_gain("swish"), doctest::Contains("\"swish\""), Error);
  CHECK_THROWS_WITH_AS(init::kaiming_uniform_(zeros({2, 2}), 0, "fan_avg"), doctest::Contains("\"fan_avg\""), Error);
}

TEST_CASE("nn::init: fills in place, returns the same tensor, and respects the bounds") {
  manual_seed(65);  // the statistical bounds below are checked on this draw, the same in every run
  Tensor w = zeros({200, 100});
  w.requires_grad_();
  Tensor back = init::uniform_(w, -2.0, 3.0);
  CHECK(back.is_same(w));
  CHECK(w.is_leaf());
  CHECK(w.requires_grad());
  Stats u = stats_of(w);
  CHECK(u.min >= -2.0);
  CHECK(u.max <= 3.0);
  CHECK(u.min < -1.99);
  CHECK(u.max > 2.99);
  // Mean 0.5, standard deviation 5/sqrt(12) ≈ 1.443; the sample mean over 20000 has sd ≈ 0.0102.
  CHECK(std::abs(u.mean - 0.5) < 0.05);
  CHECK(std::abs(u.stddev - 5 / std::sqrt(12.0)) < 0.03);

  init::normal_(w, 1.0, 0.5);
  Stats n = stats_of(w);
  CHECK(std::abs(n.mean - 1.0) < 0.02);  // sd of the sample mean 0.5/sqrt(20000) ≈ 0.0035
  CHECK(std::abs(n.stddev - 0.5) < 0.02);

  // xavier_uniform_: a = gain·sqrt(6/(fan_in + fan_out)) = 2·sqrt(6/300).
  init::xavier_uniform_(w, 2.0);
  const double a = 2.0 * std::sqrt(6.0 / 300.0);
  Stats xu = stats_of(w);
  CHECK(xu.max <= a);
  CHECK(xu.min >= -a);
  CHECK(xu.max > 0.99 * a);
  // xavier_normal_: std = sqrt(2/300).
  init::xavier_normal_(w);
  CHECK(std::abs(stats_of(w).stddev - std::sqrt(2.0 / 300.0)) < 0.05 * std::sqrt(2.0 / 300.0));  // sample sd off by ~0.5 %

  // kaiming_uniform_(a = 0) on fan_in 100: gain sqrt(2/(1+0)) = sqrt(2), bound = sqrt(3)·sqrt(2)/10 = sqrt(6)/10.
  init::kaiming_uniform_(w);
  Stats ku = stats_of(w);
  CHECK(ku.max <= std::sqrt(6.0) / 10);
  CHECK(ku.max > 0.99 * std::sqrt(6.0) / 10);
  // mode fan_out (200), nonlinearity relu: bound sqrt(6/200).
  init::kaiming_uniform_(w, 0, "fan_out", "relu");
  CHECK(stats_of(w).max <= std::sqrt(6.0 / 200));
  CHECK(stats_of(w).max > 0.99 * std::sqrt(6.0 / 200));
  // kaiming_normal_: std = sqrt(2)/sqrt(100).
  init::kaiming_normal_(w);
  CHECK(std::abs(stats_of(w).stddev - std::sqrt(2.0) / 10) < 0.005);

  init::constant_(w, 0.25);
  CHECK(stats_of(w).min == 0.25);
  CHECK(stats_of(w).max == 0.25);
  init::ones_(w);
  CHECK(stats_of(w).min == 1.0);
  init::zeros_(w);
  CHECK(stats_of(w).max == 0.0);

  Tensor d = zeros({3, 3}, kFloat64);
  init::uniform_(d, 5.0, 6.0);
  for (double v : d.data<double>()) CHECK((v >= 5.0 && v < 6.0));

  CHECK_THROWS_WITH_AS(init::uniform_(w, 1.0, 0.0), doctest::Contains("a = 1, b = 0"), Error);
  CHECK_THROWS_WITH_AS(init::normal_(w, 0.0, -1.0), doctest::Contains("-1"), Error);
  CHECK_THROWS_AS(init::zeros_(Tensor()), Error);
}

TEST_CASE("nn::init: reproducible under manual_seed") {
  Tensor a = zeros({10, 10}), b = zeros({10, 10});
  manual_seed(123);
  init::kaiming_normal_(a);
  manual_seed(123);
  init::kaiming_normal_(b);
  CHECK(xt::all(xt::equal(a.data<float>(), b.data<float>())));
  init::kaiming_normal_(b);
  CHECK_FALSE(xt::all(xt::equal(a.data<float>(), b.data<float>())));
}

TEST_CASE("nn::utils::clip_grad_norm_ by hand") {
  Tensor p1 = zeros({2}, kFloat64).requires_grad_();
  Tensor p2 = zeros({1}, kFloat64).requires_grad_();
  Tensor unused = zeros({3}, kFloat64).requires_grad_();  // no gradient: skipped
  p1.set_grad(tensor({3.0, 0.0}, kFloat64));
  p2.set_grad(tensor({-4.0}, kFloat64));
  // Joint 2-norm sqrt(9 + 16) = 5; max_norm 10 leaves the gradients alone.
  CHECK(nn::utils::clip_grad_norm_({p1, p2, unused}, 10.0) == doctest::Approx(5.0));
  CHECK(p1.grad().data<double>()(0) == 3.0);
  // max_norm 1: factor 1 / (5 + 1e-6).
  CHECK(nn::utils::clip_grad_norm_({p1, p2, unused}, 1.0) == doctest::Approx(5.0));
  const double c = 1.0 / (5.0 + 1e-6);
  CHECK(p1.grad().data<double>()(0) == doctest::Approx(3.0 * c).epsilon(1e-14));
  CHECK(p2.grad().data<double>()(0) == doctest::Approx(-4.0 * c).epsilon(1e-14));
  CHECK_FALSE(unused.grad().defined());
  // The returned norm is the norm before clipping; now it is just under 1.
  CHECK(nn::utils::clip_grad_norm_({p1, p2}, 1.0) == doctest::Approx(5.0 * c).epsilon(1e-12));
  // The infinity norm is the largest |g|: grads [6, 0] and [-8] -> 8, clipped by 2 / (8 + 1e-6).
  p1.set_grad(tensor({6.0, 0.0}, kFloat64));
  p2.set_grad(tensor({-8.0}, kFloat64));
  CHECK(nn::utils::clip_grad_norm_({p1, p2}, 2.0, INFINITY) == 8.0);
  CHECK(p2.grad().data<double>()(0) == doctest::Approx(-8.0 * 2.0 / (8.0 + 1e-6)).epsilon(1e-14));
  // A gradient shared by two parameters is scaled once for each, not twice.
  Tensor shared = tensor({3.0, 4.0}, kFloat64);
  Tensor q1 = zeros({2}, kFloat64).requires_grad_(), q2 = zeros({2}, kFloat64).requires_grad_();
  q1.set_grad(shared);
  q2.set_grad(shared);
  // Joint norm sqrt(2·25) = sqrt(50).
  CHECK(nn::utils::clip_grad_norm_({q1, q2}, 1.0) == doctest::Approx(std::sqrt(50.0)));
  CHECK(q1.grad().data<double>()(0) == doctest::Approx(3.0 / (std::sqrt(50.0) + 1e-6)).epsilon(1e-12));
  CHECK(q2.grad().data<double>()(0) == doctest::Approx(3.0 / (std::sqrt(50.0) + 1e-6)).epsilon(1e-12));
  CHECK_THROWS_AS(nn::utils::clip_grad_norm_({p1}, 1.0, -1.0), Error);
}

TEST_CASE("nn::utils::clip_grad_norm_ with p other than 2 and infinity, by hand") {
  // Gradients [3, 0] and [-4]: the joint p-norm is (Σ|g|^p)^(1/p) over all of them.
  auto setup = [](Tensor& a, Tensor& b) {
    a = zeros({2}, kFloat64).requires_grad_();
    b = zeros({1}, kFloat64).requires_grad_();
    a.set_grad(tensor({3.0, 0.0}, kFloat64));
    b.set_grad(tensor({-4.0}, kFloat64));
  };
  struct Case {
    double p, norm;
  };
  // p = 1: 3 + 4 = 7.  p = 3: (27 + 64)^(1/3) = 91^(1/3).  p = 0.5: (sqrt 3 + sqrt 4)² = 13.928...
  // (Each differs from the 2-norm 5 and the ∞-norm 4, so using the wrong p fails.)
  for (const Case c : {Case{1.0, 7.0}, Case{3.0, std::cbrt(91.0)}, Case{0.5, std::pow(std::sqrt(3.0) + 2.0, 2.0)}}) {
    CAPTURE(c.p);
    Tensor a, b;
    setup(a, b);
    // max_norm above the norm: nothing changes, the norm is returned.
    CHECK(nn::utils::clip_grad_norm_({a, b}, 100.0, c.p) == doctest::Approx(c.norm).epsilon(1e-14));
    CHECK(b.grad().data<double>()(0) == -4.0);
    // max_norm 2: every gradient scaled by 2 / (norm + 1e-6), so the p-norm becomes (just under) 2.
    const double k = 2.0 / (c.norm + 1e-6);
    CHECK(nn::utils::clip_grad_norm_({a, b}, 2.0, c.p) == doctest::Approx(c.norm).epsilon(1e-14));
    CHECK(a.grad().data<double>()(0) == doctest::Approx(3.0 * k).epsilon(1e-14));
    CHECK(a.grad().data<double>()(1) == 0.0);
    CHECK(b.grad().data<double>()(0) == doctest::Approx(-4.0 * k).epsilon(1e-14));
    CHECK(nn::utils::clip_grad_norm_({a, b}, 100.0, c.p) == doctest::Approx(2.0 * c.norm / (c.norm + 1e-6)).epsilon(1e-12));
  }
  // float32 gradients are summed in double: p = 1 over 1000 gradients of 0.1f is 1000·float(0.1).
  Tensor big = zeros({1000}).requires_grad_();
  big.set_grad(full({1000}, 0.1));
  CHECK(nn::utils::clip_grad_norm_({big}, 1e9, 1.0) == doctest::Approx(1000.0 * static_cast<double>(0.1f)).epsilon(1e-12));
}

TEST_CASE("nn::summary: layers, output shapes, parameter counts and totals") {
  auto model = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(256, 256),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(256, 10));
  const std::size_t total = (784 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10);
  std::string before = nn::summary(*model);
  CAPTURE(before);
  CHECK(before.find("Model: \"Sequential\"") != std::string::npos);
  CHECK(before.find("0 (Linear)") != std::string::npos);
  CHECK(before.find("1 (ReLU)") != std::string::npos);
  CHECK(before.find("4 (Linear)") != std::string::npos);
  CHECK(before.find(grouped(784 * 256 + 256)) != std::string::npos);  // the first layer's count
  CHECK(before.find("Total params: " + grouped(total)) != std::string::npos);
  CHECK(before.find("Trainable params: " + grouped(total)) != std::string::npos);
  CHECK(before.find("Non-trainable params: 0") != std::string::npos);
  CHECK(before.find("?") != std::string::npos);  // not run yet: shapes unknown

  (*model)(zeros({3, 784}));
  std::string after = nn::summary(*model);
  CAPTURE(after);
  CHECK(after.find("[3, 256]") != std::string::npos);
  CHECK(after.find("[3, 10]") != std::string::npos);
  CHECK(after.find("?") == std::string::npos);

  // Freezing the last bias moves 10 parameters to non-trainable.
  model->at<nn::Linear>(4)->bias.requires_grad_(false);
  std::string frozen = nn::summary(*model);
  CHECK(frozen.find("Trainable params: " + grouped(total - 10)) != std::string::npos);
  CHECK(frozen.find("Non-trainable params: 10") != std::string::npos);

  // A single layer is its own row.
  std::string single = nn::summary(nn::Linear(3, 2));
  CHECK(single.find("Linear") != std::string::npos);
  CHECK(single.find("Total params: 8") != std::string::npos);
}
