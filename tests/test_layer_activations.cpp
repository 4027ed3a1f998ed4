// gelu (exact and tanh), silu, elu, softplus, erf, log1p, expm1 and embedding: values from their
// definitions (constants in comments), the table checks, embedding's padding_idx and errors.
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

TEST_CASE("smooth activations and special functions: values from their definitions") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const double tol = dt == kFloat32 ? 1e-6 : 1e-14;
    Tensor x = tensor({-1.0, 0.0, 1.0}, dt);
    // gelu(x) = x·Φ(x): Φ(1) = ½(1 + erf(1/√2)) = 0.8413447460685429, and gelu(-1) = -Φ(-1) = -0.15865525393145707.
    check_values(F::gelu(x), {3}, {-0.15865525393145707, 0, 0.8413447460685429}, tol);
    // tanh form at 1: ½(1 + tanh(√(2/π)(1 + 0.044715))) = 0.8411919906082768.
    check_values(F::gelu(tensor({1.0}, dt), F::GeluApproximate::Tanh), {1}, {0.8411919906082768}, tol);
    // silu(x) = x·σ(x): σ(1) = 1/(1 + e^-1) = 0.7310585786300049; silu(-1) = -σ(-1) = -0.2689414213699951.
    check_values(F::silu(x), {3}, {-0.2689414213699951, 0, 0.7310585786300049}, tol);
    // elu(-1) = e^-1 - 1 = -0.6321205588285577; with alpha 2 at -2: 2(e^-2 - 1) = -1.7293294335267746.
    check_values(F::elu(x), {3}, {-0.6321205588285577, 0, 1}, tol);
    check_values(F::elu(tensor({-2.0, 3.0}, dt), 2.0), {2}, {-1.7293294335267746, 3}, tol);
    // softplus(0) = ln 2; beta 2 at 1: ln(1 + e²)/2 = 1.0634640055214863; above the threshold (β·x > 20) x itself.
    check_values(F::softplus(tensor({0.0, 30.0}, dt)), {2}, {0.6931471805599453, 30}, tol);
    check_values(F::softplus(tensor({1.0, 11.0}, dt), 2.0, 20.0), {2}, {1.0634640055214863, 11}, tol);
    // erf(1) = 0.8427007929497149, erf(-0.5) = -0.5204998778130465.
    check_values(xgrad::erf(tensor({1.0, -0.5}, dt)), {2}, {0.8427007929497149, -0.5204998778130465}, tol);
    // log1p and expm1 of 1e-10 equal 1e-10 to the last digits (1e-10 - 5e-21 and 1e-10 + 5e-21) where log(1 + x)
    // and exp(x) - 1 lose most of them.
    check_values(xgrad::log1p(tensor({1e-10, 1.0}, dt)), {2}, {1e-10, std::log(2.0)}, tol);
    check_values(xgrad::expm1(tensor({1e-10, 1.0}, dt)), {2}, {1e-10, std::exp(1.0) - 1}, tol);
  }
}

TEST_CASE("activations: derivatives at chosen points") {
  // d gelu(0) = Φ(0) + 0 = ½; d silu(0) = σ(0) = ½; d elu at 0 = alpha (PyTorch's choice); d softplus(0) = σ(0) = ½,
  // and 1 above the threshold; d erf(0) = 2/√π; d log1p(1) = ½; d expm1(0) = 1.
  Tensor x = tensor({0.0}, kFloat64, true);
  auto d = [&](Tensor y) { return autograd::grad({y}, {x})[0].item(); };
  CHECK(d(F::gelu(x)) == doctest::Approx(0.5));
  CHECK(d(F::gelu(x, F::GeluApproximate::Tanh)) == doctest::Approx(0.5));
  CHECK(d(F::silu(x)) == doctest::Approx(0.5));
  CHECK(d(F::elu(x, 3.0)) == doctest::Approx(3.0));
  CHECK(d(F::softplus(x)) == doctest::Approx(0.5));
  CHECK(d(xgrad::erf(x)) == doctest::Approx(2 / std::sqrt(M_PI)));
  CHECK(d(xgrad::expm1(x)) == doctest::Approx(1.0));
  Tensor one = tensor({1.0}, kFloat64, true);
  CHECK(autograd::grad({xgrad::log1p(one)}, {one})[0].item() == doctest::Approx(0.5));
  Tensor big = tensor({30.0}, kFloat64, true);
  CHECK(autograd::grad({F::softplus(big)}, {big})[0].item() == 1.0);
  // elu far in the positive range: the unused exp branch stays finite, so the second derivative is 0, not NaN.
  Tensor huge = tensor({1000.0}, kFloat64, true);
  Tensor g = autograd::grad({F::elu(huge)}, {huge}, {}, std::nullopt, true)[0];
  REQUIRE(g.item() == 1.0);
  Tensor gg = autograd::grad({g}, {huge}, {}, std::nullopt, false, true)[0];
  CHECK((!gg.defined() || gg.item() == 0.0));
}

TEST_CASE("embedding: rows by index, repeated indices add gradients, padding_idx gets none") {
  Tensor w = tensor({{0.0, 1.0}, {2.0, 3.0}, {4.0, 5.0}}, kFloat64);
  w.requires_grad_();
  Tensor idx = tensor({{2.0, 0.0}, {1.0, 2.0}});
  Tensor y = F::embedding(idx, w);
  check_values(y, {2, 2, 2}, {4, 5, 0, 1, 2, 3, 4, 5});
  y.sum().backward();
  // Row 2 is picked twice, rows 0 and 1 once.
  check_values(w.grad(), {3, 2}, {1, 1, 1, 1, 2, 2});
  w.zero_grad();
  Tensor yp = F::embedding(idx, w, 2);
  check_values(yp, {2, 2, 2}, {4, 5, 0, 1, 2, 3, 4, 5});  // the padding row's value is still read
  yp.sum().backward();
  check_values(w.grad(), {3, 2}, {1, 1, 1, 1, 0, 0});
  w.zero_grad();
  F::embedding(idx, w, -1).sum().backward();  // -1 counts from the end: row 2
  check_values(w.grad(), {3, 2}, {1, 1, 1, 1, 0, 0});
  // A 0-d index gives one row; an empty index tensor no rows.
  check_values(F::embedding(tensor(1.0), w), {2}, {2, 3});
  CHECK(F::embedding(zeros({0}), w).shape() == Shape{0, 2});
}

TEST_CASE("embedding errors name the index") {
  Tensor w = zeros({3, 2});
  check_error([&] { F::embedding(tensor({0.0, 3.0}), w); }, {"embedding", "index 3", "position 1", "3 embeddings"});
  check_error([&] { F::embedding(tensor({-1.0}), w); }, {"embedding", "index -1", "out of range"});
  check_error([&] { F::embedding(tensor({0.5}), w); }, {"embedding", "index 0.5", "not an integer"});
  check_error([&] { F::embedding(tensor({0.0}), zeros({3})); }, {"embedding", "2-D weight", "[3]"});
  check_error([&] { F::embedding(tensor({0.0}), w, 3); }, {"embedding", "padding_idx 3"});
  check_error([] { nn::Embedding(3, 2)(tensor({{1.0, 7.0}})); }, {"embedding", "index 7"});
}
