// Numerical edge cases: extreme inputs checked against the mathematically right answer (derived in
// the comments), IEEE behaviour where the answer is infinite, and 0-element tensors through every op.
// The rule: no NaN where the mathematical answer is finite.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

double at(const Tensor& t, std::size_t i) {
  return t.dtype() == kFloat32 ? static_cast<double>(t.data<float>().data()[i]) : t.data<double>().data()[i];
}

bool all_finite(const Tensor& t) {
  for (std::size_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(at(t, i))) return false;
  return true;
}

// The gradient of sum(f(x)) at x (float64 or float32 as given).
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0) {
  Tensor x = x0.detach().clone().requires_grad_();
  sum(f(x)).backward();
  return x.grad();
}

}  // namespace

TEST_CASE("numerics: sigmoid and tanh saturate at ±1e4 with zero gradient, in both dtypes") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const Tensor x = tensor({1e4, -1e4}, dt);
    // σ(1e4) = 1/(1 + e^-1e4) = 1 to any precision; σ(-1e4) = e^-1e4/(1 + e^-1e4) ≈ 0 (below every
    // subnormal). σ' = σ(1 - σ) = 0 at both ends.
    const Tensor s = sigmoid(x);
    CHECK(at(s, 0) == 1.0);
    CHECK(at(s, 1) == 0.0);
    const Tensor gs = grad_of([](const Tensor& t) { return sigmoid(t); }, x);
    CHECK(at(gs, 0) == 0.0);
    CHECK(at(gs, 1) == 0.0);
    // tanh(±1e4) = ±1 exactly in floating point; tanh' = 1 - tanh² = 0.
    const Tensor th = tanh(x);
    CHECK(at(th, 0) == 1.0);
    CHECK(at(th, 1) == -1.0);
    const Tensor gt_ = grad_of([](const Tensor& t) { return tanh(t); }, x);
    CHECK(at(gt_, 0) == 0.0);
    CHECK(at(gt_, 1) == 0.0);
  }
}

TEST_CASE("numerics: softmax, log_softmax and logsumexp with logits of ±1e4") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const Tensor x = tensor({1e4, 0.0, -1e4}, dt);
    // softmax = e^(x - max) / Σ: [1, e^-1e4, e^-2e4] / (1 + ...) = [1, 0, 0] in floating point.
    const Tensor sm = softmax(x, 0);
    CHECK(at(sm, 0) == 1.0);
    CHECK(at(sm, 1) == 0.0);
    CHECK(at(sm, 2) == 0.0);
    // log_softmax = x - logsumexp(x) = x - (1e4 + log(1 + e^-1e4 + e^-2e4)) = [0, -1e4, -2e4].
    const Tensor ls = log_softmax(x, 0);
    CHECK(at(ls, 0) == 0.0);
    CHECK(at(ls, 1) == doctest::Approx(-1e4));
    CHECK(at(ls, 2) == doctest::Approx(-2e4));
    // d Σ_i w_i log_softmax_i / dx_j = w_j - softmax_j Σ w = [1 - 6, 2, 3] for w = [1, 2, 3].
    const Tensor w = tensor({1.0, 2.0, 3.0}, dt);
    const Tensor g = grad_of([&](const Tensor& t) { return log_softmax(t, 0) * w; }, x);
    CHECK(at(g, 0) == doctest::Approx(-5.0));
    CHECK(at(g, 1) == doctest::Approx(2.0));
    CHECK(at(g, 2) == doctest::Approx(3.0));
    // logsumexp([a, a]) = a + ln 2, for a = 1e4 and a = -1e4 (no overflow to inf, no underflow to -inf).
    CHECK(logsumexp(tensor({1e4, 1e4}, dt), 0).item() == doctest::Approx(1e4 + std::log(2.0)));
    CHECK(logsumexp(tensor({-1e4, -1e4}, dt), 0).item() == doctest::Approx(-1e4 + std::log(2.0)));
    // Its gradient is softmax: [1/2, 1/2]. Computed as exp(x - logsumexp) (PyTorch's formula), it
    // inherits the rounding of logsumexp near 1e4: half an ulp of float32 there is 4.9e-4, hence the
    // float32 tolerance of 1e-3 (float64: 1e4 · 2^-53 ≈ 1e-12).
    const Tensor gl = grad_of([](const Tensor& t) { return logsumexp(t, 0); }, tensor({-1e4, -1e4}, dt));
    const double tol = dt == kFloat32 ? 1e-3 : 1e-9;
    CHECK(at(gl, 0) == doctest::Approx(0.5).epsilon(tol));
    CHECK(at(gl, 1) == doctest::Approx(0.5).epsilon(tol));
  }
}

TEST_CASE("numerics: cross-entropy with logits of ±1e4") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    // Row 0 is confidently right (loss -log softmax_0 = log(1 + e^-2e4) = 0); row 1 confidently wrong
    // (loss = logsumexp - x_1 = 1e4 - (-1e4) = 2e4). Mean: 1e4.
    const Tensor logits = tensor({{1e4, -1e4}, {1e4, -1e4}}, dt);
    const Tensor target = tensor({0.0, 1.0}, dt);
    const Tensor none = nn::functional::cross_entropy(logits, target, nn::Reduction::None);
    CHECK(at(none, 0) == 0.0);
    CHECK(at(none, 1) == doctest::Approx(2e4));
    CHECK(nn::functional::cross_entropy(logits, target).item() == doctest::Approx(1e4));
    // d loss_mean / d logits = (softmax - onehot) / N = [[0, 0], [1/2, -1/2]].
    const Tensor g =
        grad_of([&](const Tensor& t) { return nn::functional::cross_entropy(t, target); }, logits);
    CHECK(at(g, 0) == 0.0);
    CHECK(at(g, 1) == 0.0);
    CHECK(at(g, 2) == doctest::Approx(0.5));
    CHECK(at(g, 3) == doctest::Approx(-0.5));
  }
}

TEST_CASE("numerics: BCEWithLogits at ±100") {
  // loss(x, y) = max(x, 0) - x y + log(1 + e^-|x|):
  //   x = 100, y = 1:  log(1 + e^-100) ≈ e^-100 ≈ 3.72e-44     x = 100, y = 0:  100 + e^-100
  //   x = -100, y = 0: e^-100                                  x = -100, y = 1: 100 + e^-100
  // gradient σ(x) - y: σ(100) - 1 = -e^-100/(1 + e^-100) ≈ -3.72e-44, σ(100) - 0 ≈ 1, σ(-100) ≈ 3.72e-44, σ(-100) - 1 ≈ -1.
  const double tiny = std::exp(-100.0);
  const Tensor x = tensor({100.0, 100.0, -100.0, -100.0}, kFloat64);
  const Tensor y = tensor({1.0, 0.0, 0.0, 1.0}, kFloat64);
  const Tensor l = nn::functional::binary_cross_entropy_with_logits(x, y, nn::Reduction::None);
  // Relative checks: doctest's Approx(tiny) would also accept 0 (its margin is absolute near 0), and
  // 0 is exactly what a kernel that computes (100 + log1p(e^-100)) - 100 would return.
  CHECK(std::abs(at(l, 0) - tiny) <= 1e-12 * tiny);
  CHECK(at(l, 1) == doctest::Approx(100.0).epsilon(1e-15));
  CHECK(std::abs(at(l, 2) - tiny) <= 1e-12 * tiny);
  CHECK(at(l, 3) == doctest::Approx(100.0).epsilon(1e-15));
  const Tensor g = grad_of(
      [&](const Tensor& t) { return nn::functional::binary_cross_entropy_with_logits(t, y, nn::Reduction::Sum); }, x);
  CHECK(std::abs(at(g, 0)) <= 1e-40);
  CHECK(at(g, 1) == doctest::Approx(1.0));
  CHECK(std::abs(at(g, 2)) <= 1e-40);
  CHECK(at(g, 3) == doctest::Approx(-1.0));
  // float32: the same values. e^-100 ≈ 3.7e-44 is below float's smallest normal (1.2e-38) but not
  // below its smallest subnormal (2^-149 ≈ 1.4e-45): it is held as a multiple of 2^-149, so one
  // such step is the tolerance, and 0 fails.
  const Tensor l32 = nn::functional::binary_cross_entropy_with_logits(x.to(kFloat32), y.to(kFloat32), nn::Reduction::None);
  CHECK(all_finite(l32));
  CHECK(at(l32, 1) == 100.0);  // 100 + e^-100 rounds to 100
  CHECK(std::abs(at(l32, 0) - static_cast<double>(std::exp(-100.0f))) <= 0x1p-149);
  CHECK(std::exp(-100.0f) > 0.0f);
}

TEST_CASE("numerics: BCE with probabilities exactly 0 and 1") {
  // loss = -(y log p + (1 - y) log(1 - p)). Where p equals the label the loss is 0 (the 0·log 0 term
  // is 0 by continuity). Where p is the opposite certainty the true loss is +inf; PyTorch (and xgrad)
  // clamp each log at -100, so the loss is 100 — finite, documented, and never NaN.
  const Tensor p = tensor({0.0, 1.0, 0.0, 1.0}, kFloat64);
  const Tensor y = tensor({0.0, 1.0, 1.0, 0.0}, kFloat64);
  const Tensor l = nn::functional::binary_cross_entropy(p, y, nn::Reduction::None);
  CHECK(at(l, 0) == 0.0);
  CHECK(at(l, 1) == 0.0);
  CHECK(at(l, 2) == 100.0);
  CHECK(at(l, 3) == 100.0);
  // The gradient (p - y) / max(p (1 - p), 1e-12): 0 where p = y, ∓1e12 at the opposite certainty.
  const Tensor g = grad_of(
      [&](const Tensor& t) { return nn::functional::binary_cross_entropy(t, y, nn::Reduction::Sum); }, p);
  CHECK(all_finite(g));
  CHECK(at(g, 0) == 0.0);
  CHECK(at(g, 1) == 0.0);
  CHECK(at(g, 2) == doctest::Approx(-1e12));
  CHECK(at(g, 3) == doctest::Approx(1e12));
}

TEST_CASE("numerics: pow with a zero base") {
  const Tensor zero = tensor({0.0}, kFloat64);
  // 0^0.5 = 0 and d/dx x^0.5 = 0.5 x^-0.5 → +inf at 0 (the true one-sided derivative).
  CHECK(pow(zero, 0.5).item() == 0.0);
  CHECK(grad_of([](const Tensor& t) { return pow(t, 0.5); }, zero).item() == kInf);
  // 0^2.5 = 0, derivative 2.5·0^1.5 = 0.
  CHECK(pow(zero, 2.5).item() == 0.0);
  CHECK(grad_of([](const Tensor& t) { return pow(t, 2.5); }, zero).item() == 0.0);
  // 0^0 = 1 (IEEE pow and PyTorch), derivative 0 (the exponent 0 makes x^0 constant).
  CHECK(pow(zero, 0.0).item() == 1.0);
  CHECK(grad_of([](const Tensor& t) { return pow(t, 0.0); }, zero).item() == 0.0);
  // 0^-0.5 = +inf.
  CHECK(pow(zero, -0.5).item() == kInf);
  // 0^1 = 0, derivative 1 (no 0 * inf = NaN from a x^(e-1) formula).
  CHECK(grad_of([](const Tensor& t) { return pow(t, 1.0); }, zero).item() == 1.0);
  // Tensor exponent: d/de 0^e = 0^e ln 0 → 0 · (-inf); for e > 0 the function is constant 0 in e, so
  // the right answer is 0, as in PyTorch.
  Tensor e = tensor({2.0}, kFloat64, true);
  Tensor base = tensor({0.0}, kFloat64, true);
  sum(pow(base, e)).backward();
  CHECK(e.grad().item() == 0.0);
  CHECK(base.grad().item() == 0.0);  // 2 · 0^1
}

TEST_CASE("numerics: division by zero follows IEEE") {
  const Tensor a = tensor({1.0, -1.0, 0.0}, kFloat64);
  const Tensor zero = zeros({3}, kFloat64);
  const Tensor q = div(a, zero);
  CHECK(at(q, 0) == kInf);
  CHECK(at(q, 1) == -kInf);
  CHECK(std::isnan(at(q, 2)));  // 0/0 has no value
  CHECK(div(tensor({1.0}, kFloat32), 0.0).item() == kInf);
  CHECK(rdiv(tensor({0.0}, kFloat64), 2.0).item() == kInf);  // 2 / 0
  // d(a/b)/da = 1/b = inf at b = 0.
  CHECK(at(grad_of([&](const Tensor& t) { return div(t, zero); }, a), 0) == kInf);
  // exp and log at the ends of their range.
  CHECK(exp(tensor({1000.0}, kFloat64)).item() == kInf);
  CHECK(exp(tensor({-1000.0}, kFloat64)).item() == 0.0);
  CHECK(log(tensor({0.0}, kFloat64)).item() == -kInf);
}

TEST_CASE("numerics: reductions over empty dimensions") {
  // The empty sum is 0, the empty mean 0/0 = NaN (PyTorch's value), logsumexp of nothing is log 0 = -inf.
  CHECK(sum(zeros({0}, kFloat64)).item() == 0.0);
  CHECK(std::isnan(mean(zeros({0}, kFloat64)).item()));
  const Tensor s = sum(ones({2, 0}, kFloat64), {1});
  REQUIRE(s.shape() == Shape{2});
  CHECK(at(s, 0) == 0.0);
  CHECK(at(s, 1) == 0.0);
  const Tensor s0 = sum(ones({0, 3}, kFloat64), {0}, true);
  REQUIRE(s0.shape() == Shape{1, 3});
  CHECK(at(s0, 2) == 0.0);
  const Tensor m = mean(ones({2, 0}, kFloat64), {1});
  REQUIRE(m.shape() == Shape{2});
  CHECK(std::isnan(at(m, 0)));
  const Tensor lse = logsumexp(ones({2, 0}, kFloat64), 1);
  REQUIRE(lse.shape() == Shape{2});
  CHECK(at(lse, 0) == -kInf);
  // The gradient of an empty sum is an empty tensor.
  Tensor x = zeros({0, 3}, kFloat64).requires_grad_();
  sum(x).backward();
  CHECK(x.grad().shape() == Shape{0, 3});
}

// Every op on 0-element inputs (forward shape, 0-element gradients, or PyTorch's refusal as an Error)
// is the op table's "0-element inputs" check (test_op_table.cpp). Here: the Tensor methods outside the
// op headers, and the values of empty sums and products.
TEST_CASE("numerics: 0-element tensors through clone and to, and the values of empty reductions") {
  for (const auto& entry : std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>>{
           {"clone", [](const Tensor& x) { return x.clone(); }},
           {"to float32 and back", [](const Tensor& x) { return x.to(kFloat32).to(kFloat64); }}}) {
    // Not a structured binding: clang 14 (the sanitizer build) cannot capture one in doctest's lambdas.
    const std::string name = entry.first;
    const auto& f = entry.second;
    CAPTURE(name);
    Tensor x = zeros({0, 3}, kFloat64).requires_grad_();
    Tensor y;
    REQUIRE_NOTHROW(y = f(x));
    CHECK(y.shape() == Shape{0, 3});
    REQUIRE(y.requires_grad());
    REQUIRE_NOTHROW(sum(y).backward());
    CHECK(x.grad().shape() == Shape{0, 3});
  }
  // Empty sums and products have the values of mathematics: Σ∅ = 0, [3,0]·[0,3] = zeros.
  Tensor x = zeros({0, 3}, kFloat64);
  CHECK(sum(x).item() == 0.0);
  CHECK(max(abs(matmul(t(x), x))).item() == 0.0);
  CHECK(nn::functional::cross_entropy(x, zeros({0}, kFloat64), nn::Reduction::Sum).item() == 0.0);
  // Layers on an empty batch.
  nn::Linear layer(3, 2);
  layer.to(kFloat64);
  Tensor out = layer(x);
  CHECK(out.shape() == Shape{0, 2});
  sum(out).backward();
  REQUIRE(layer.weight.grad().defined());
  CHECK(max(abs(layer.weight.grad())).item() == 0.0);  // no samples, no gradient
}

TEST_CASE("numerics: no multiply-add contraction in code built with the library's flags") {
  // x = 1 + 2^-30, y = 1 - 2^-30: x·y = 1 - 2^-60 exactly, which rounds to 1 in double (2^-60 is far
  // below half an ulp of 1), so x·y + z with z = -1 is 0 when the product is rounded on its own. A
  // fused multiply-add rounds once, at the end, and gives -2^-60 instead. xgrad builds with
  // -ffp-contract=off (PUBLIC, so this test's translation unit has the library's flags): GCC would
  // otherwise fuse this expression on an FMA machine, even under -std=c++20. Float likewise with 2^-13.
  volatile double vx = 1 + 0x1p-30, vy = 1 - 0x1p-30, vz = -1;  // volatile: no constant folding
  const double x = vx, y = vy, z = vz;
  CHECK(x * y + z == 0.0);
  CHECK(std::fma(x, y, z) == -0x1p-60);  // what contraction would give: the check above can fail
  volatile float fx = 1 + 0x1p-13f, fy = 1 - 0x1p-13f, fz = -1;
  const float a = fx, b = fy, c = fz;
  CHECK(a * b + c == 0.0f);
  CHECK(std::fma(a, b, c) == -0x1p-26f);
  // The same through the library: mul then add are separate ops, each rounded (and no fused kernel
  // merges them).
  const Tensor product = tensor({1 + 0x1p-30}, kFloat64) * tensor({1 - 0x1p-30}, kFloat64);
  CHECK((product + tensor({-1.0}, kFloat64)).item() == 0.0);
}
