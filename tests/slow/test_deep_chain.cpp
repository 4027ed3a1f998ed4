// A million-op chain back-propagates and is destroyed without stack overflow: the engine walks the graph
// with an explicit stack and nodes are released through a work list, never by recursion. About 5 s in
// the Release build, hence the slow suite (a 100k-node version runs in test_engine.cpp).
#include <doctest/doctest.h>

#include <cmath>

#include <xgrad.hpp>

using namespace xgrad;

namespace {
constexpr int kSteps = 1'000'000;
}

TEST_CASE("deep chain: x = x * 1.0000001 a million times, backward, then drop the graph") {
  Tensor x0 = ones({1}).requires_grad_();  // float32
  {
    Tensor x = x0;
    for (int i = 0; i < kSteps; ++i) x = x * 1.0000001;
    // dx/dx0 = c^n with c the float32 rounding of 1.0000001.
    //
    // Bound: c = 1 + 2⁻²³ (the float nearest to 1.0000001, since 1e-7 is closer to 2⁻²³ ≈ 1.19e-7 than
    // to 0), so c^n = exp(n·ln(1 + 2⁻²³)) ≈ exp(0.1192093) ≈ 1.12660. Each of the n float32 products
    // is rounded with relative error ≤ 2⁻²⁴, so the computed product lies within a factor
    // (1 ± 2⁻²⁴)^n ≈ exp(±0.0596) of c^n: in [1.0614, 1.1958]. The exact real 1.0000001^1e6 ≈ 1.10517
    // lies in that interval too.
    const double c_n = std::exp(kSteps * std::log1p(std::ldexp(1.0, -23)));
    const double slack = std::exp(kSteps * std::ldexp(1.0, -24));
    x.backward();
    REQUIRE(x0.grad().defined());
    const double g = x0.grad().item();
    CHECK(g > c_n / slack);
    CHECK(g < c_n * slack);
    CHECK(g == doctest::Approx(std::pow(1.0000001, kSteps)).epsilon(0.1));
    // The forward value is the same product, computed the same way.
    CHECK(x.item() == doctest::Approx(g).epsilon(1e-6));
  }  // the graph (already released by backward) is destroyed here
  CHECK(x0.is_leaf());
}

TEST_CASE("deep chain: a million-node graph destroyed without backward") {
  Tensor x0 = ones({1}).requires_grad_();
  Tensor x = x0;
  for (int i = 0; i < kSteps; ++i) x = x * 1.0000001;
  CHECK(x.grad_fn() != nullptr);
  x = Tensor();  // drops the whole chain
  CHECK_FALSE(x0.grad().defined());
}

TEST_CASE("deep chain: a chain of ops saving their inputs (saved tensors hold the previous node)") {
  // y = x0^(n+1) built as y = y * x0: each MulBackward saves y (whose grad_fn is the previous node) and
  // x0. At x0 = 1: dy/dx0 = (n+1)·x0^n = n+1, summed from n+1 contributions of 1 (exact in float32
  // below 2²⁴).
  const int n = kSteps / 4;
  Tensor x0 = ones({1}).requires_grad_();
  {
    Tensor y = x0;
    for (int i = 0; i < n; ++i) y = y * x0;
    y.backward(Tensor(), /*retain_graph=*/true);  // keeps the saved tensors alive through destruction
    CHECK(x0.grad().item() == static_cast<double>(n + 1));
  }
  {
    Tensor y = x0;
    for (int i = 0; i < n; ++i) y = y * x0;
  }  // destroyed without any backward, saved tensors still in place
  CHECK(x0.grad().item() == static_cast<double>(n + 1));
}
