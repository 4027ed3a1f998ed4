// Reductions: sum, mean, sum_to, max/min (full and along a dim), argmax/argmin, logsumexp, var.
// Forward values are derived by hand in the comments; every differentiable pattern is checked with
// gradcheck and gradgradcheck in float64.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

using In = std::vector<Tensor>;
constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor f64(xt::xarray<double> a, bool requires_grad = true) { return tensor(std::move(a), requires_grad); }

// Shape and values of `t` (any dtype) against expectations; inf and NaN compare exactly.
void expect_values(const Tensor& t, const Shape& shape, const std::vector<double>& expected, double rel = 1e-12) {
  CHECK(shape_str(t.shape()) == shape_str(shape));
  const Tensor d = t.detach().to(kFloat64);
  const auto& a = d.data<double>();
  REQUIRE(a.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double got = a.data()[i], want = expected[i];
    INFO("element ", i, ": got ", got, ", want ", want);
    if (std::isnan(want))
      CHECK(std::isnan(got));
    else if (std::isinf(want))
      CHECK(got == want);
    else
      CHECK(std::abs(got - want) <= rel * (1 + std::abs(want)));
  }
}

// gradcheck and gradgradcheck of fn at `inputs`.
template <class F>
void check_grads(F fn, const In& inputs) {
  CHECK(gradcheck(fn, inputs));
  CHECK(gradgradcheck(fn, inputs));
}

// A float64 tensor with distinct values (no ties, so max/min are differentiable everywhere).
Tensor distinct(const Shape& shape) {
  manual_seed(7);
  return randn(shape, kFloat64).requires_grad_(true);
}

}  // namespace

// ---- sum / mean / sum_to --------------------------------------------------------------------------

TEST_CASE("reduce: sum forward values, both dtypes") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, dt);
    expect_values(sum(x), {}, {21});                      // 1+2+...+6
    expect_values(sum(x, {0}), {3}, {5, 7, 9});           // column sums: 1+4, 2+5, 3+6
    expect_values(sum(x, {1}, true), {2, 1}, {6, 15});    // row sums 1+2+3, 4+5+6, kept as (2, 1)
    expect_values(x.sum({-1}), {2}, {6, 15});             // -1 is the last dim
    expect_values(sum(x, {0, 1}), {}, {21});              // both dims = everything
    expect_values(sum(x, {1, 0}, true), {1, 1}, {21});    // order of dims does not matter
    CHECK(sum(x).dtype() == dt);
  }
  // A 0-d tensor sums to itself; dims 0 and -1 are accepted, as in PyTorch.
  expect_values(sum(tensor(4.0)), {}, {4});
  expect_values(sum(tensor(4.0), {0}), {}, {4});
}

TEST_CASE("reduce: mean forward values") {
  Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, kFloat64);
  expect_values(mean(x), {}, {3.5});                   // 21 / 6
  expect_values(mean(x, {1}), {2}, {2, 5});            // 6/3, 15/3
  expect_values(x.mean({0}, true), {1, 3}, {2.5, 3.5, 4.5});  // (1+4)/2, (2+5)/2, (3+6)/2
  expect_values(mean(x, {-2, -1}), {}, {3.5});
}

TEST_CASE("reduce: sum and mean gradients, every dims pattern") {
  Tensor x = distinct({2, 3, 4});
  for (bool keepdim : {false, true}) {
    CAPTURE(keepdim);
    for (const std::vector<int>& dims : std::vector<std::vector<int>>{{}, {0}, {1}, {-1}, {0, 2}, {-3, -2}, {0, 1, 2}}) {
      check_grads([&](const In& in) { return sum(in[0], dims, keepdim); }, {x});
      check_grads([&](const In& in) { return mean(in[0], dims, keepdim); }, {x});
    }
  }
  check_grads([](const In& in) { return in[0].sum(); }, {x});
  check_grads([](const In& in) { return in[0].mean(); }, {x});
  // dims of size 1, and a 0-d input
  Tensor y = distinct({3, 1, 2});
  check_grads([](const In& in) { return sum(in[0], {1}); }, {y});
  check_grads([](const In& in) { return mean(in[0], {1}, true); }, {y});
  Tensor s = f64(xt::xarray<double>(1.5));
  check_grads([](const In& in) { return sum(in[0]); }, {s});
  check_grads([](const In& in) { return mean(in[0], {0}); }, {s});
}

TEST_CASE("reduce: sum backward spreads the gradient, mean divides it by the count") {
  Tensor x = f64({{1, 2, 3}, {4, 5, 6}});
  // Weights w = [1, 10] on the two row sums: every element of row i gets w[i].
  sum(x, {1}).backward(tensor({1.0, 10.0}, kFloat64));
  expect_values(x.grad(), {2, 3}, {1, 1, 1, 10, 10, 10});
  x.zero_grad();
  // mean over 6 elements: every element gets 1/6
  mean(x).backward();
  expect_values(x.grad(), {2, 3}, {1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6});
}

TEST_CASE("reduce: sum_to sums broadcast dims away") {
  Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, kFloat64);
  expect_values(sum_to(x, {1, 3}), {1, 3}, {5, 7, 9});  // the size-1 dim: column sums
  expect_values(sum_to(x, {3}), {3}, {5, 7, 9});        // the leading dim: also column sums
  expect_values(sum_to(x, {2, 1}), {2, 1}, {6, 15});    // row sums
  expect_values(sum_to(x, {}), {}, {21});               // everything
  expect_values(sum_to(x, {2, 3}), {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor y = distinct({2, 3, 4});
  for (const Shape& target : std::vector<Shape>{{4}, {3, 1}, {1, 3, 4}, {2, 1, 1}, {}, {2, 3, 4}})
    check_grads([&](const In& in) { return sum_to(in[0], target); }, {y});
}

TEST_CASE("reduce: sum/mean/sum_to errors") {
  Tensor x = tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK_THROWS_WITH_AS(sum(x, {2}), doctest::Contains("dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(sum(x, {-3}), doctest::Contains("got -3"), Error);
  CHECK_THROWS_WITH_AS(mean(x, {1, -1}), doctest::Contains("appears multiple times"), Error);
  CHECK_THROWS_WITH_AS(sum_to(x, {3, 3}), doctest::Contains("is not a broadcast of"), Error);
  CHECK_THROWS_WITH_AS(sum_to(x, {1, 2, 3}), doctest::Contains("larger rank"), Error);
  CHECK_THROWS_WITH_AS(sum(Tensor()), doctest::Contains("undefined"), Error);
}

// ---- max / min ------------------------------------------------------------------------------------

TEST_CASE("reduce: full max/min values and the even split of the gradient over ties") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor x = tensor({{1, 5, 2}, {5, 0, 3}}, dt);
    expect_values(max(x), {}, {5});
    expect_values(x.min(), {}, {0});
  }
  // 5 occurs twice: each occurrence gets half of the gradient (PyTorch's evenly_distribute_backward).
  Tensor x = f64({{1, 5, 2}, {5, 0, 3}});
  max(x).backward(tensor(3.0, kFloat64));
  expect_values(x.grad(), {2, 3}, {0, 1.5, 0, 1.5, 0, 0});
  x.zero_grad();
  // Three-way tie at the minimum: a third each.
  Tensor y = f64({2, 1, 1, 4, 1});
  min(y).backward();
  expect_values(y.grad(), {5}, {0, 1.0 / 3, 1.0 / 3, 0, 1.0 / 3});
  // A single winner takes everything.
  min(x).backward();
  expect_values(x.grad(), {2, 3}, {0, 0, 0, 0, 1, 0});
}

TEST_CASE("reduce: max/min along a dim: values, keepdim, negative dims, first index on ties") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor x = tensor({{1, 5, 5}, {7, 0, 7}}, dt);
    expect_values(max(x, 1), {2}, {5, 7});                // row maxima
    expect_values(max(x, -1, true), {2, 1}, {5, 7});
    expect_values(max(x, 0), {3}, {7, 5, 7});             // column maxima: max(1,7), max(5,0), max(5,7)
    expect_values(x.min(0, true), {1, 3}, {1, 0, 5});     // column minima: min(1,7), min(5,0), min(5,7)
    expect_values(min(x, 1), {2}, {1, 0});
    CHECK(max(x, 1).dtype() == dt);
  }
  // Ties along the dim: the gradient goes to the first occurrence only (the index PyTorch returns).
  Tensor x = f64({{1, 5, 5}, {7, 0, 7}});
  max(x, 1).backward(tensor({1.0, 2.0}, kFloat64));
  expect_values(x.grad(), {2, 3}, {0, 1, 0, 2, 0, 0});
  x.zero_grad();
  Tensor z = f64({{3, 3}, {3, 1}});
  min(z, 0).backward(ones({2}, kFloat64));  // column 0: 3 and 3 tie -> row 0; column 1: 1 at row 1
  expect_values(z.grad(), {2, 2}, {1, 0, 0, 1});
  // 0-d input: dim 0 or -1 reduces nothing.
  expect_values(max(tensor(2.5), 0), {}, {2.5});
  expect_values(min(tensor(2.5), -1, true), {}, {2.5});
  // A dim of size 1.
  expect_values(max(reshape(tensor({4, 2}), {2, 1}), 1), {2}, {4, 2});
  // An empty tensor reduced along a non-empty dim is an empty result, as in PyTorch.
  expect_values(max(zeros({0, 3}), 1), {0}, {});
}

TEST_CASE("reduce: max/min propagate NaN") {
  const double nan = std::nan("");
  Tensor x = tensor({1.0, nan, 3.0}, kFloat64);
  expect_values(max(x), {}, {nan});
  expect_values(min(x), {}, {nan});
  expect_values(max(tensor({{1.0, nan}, {2.0, 0.0}}, kFloat64), 1), {2}, {nan, 2});
  CHECK(argmax(x).item() == 1);  // the NaN's index
  CHECK(argmin(x).item() == 1);
  // The gradient of a NaN maximum goes to the NaN.
  Tensor y = f64({1.0, nan, 3.0});
  max(y).backward();
  expect_values(y.grad(), {3}, {0, 1, 0});
}

TEST_CASE("reduce: long rows: first occurrence and NaN far from the start (vectorised row path)") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    // Row 0: values k % 50 for k < 100, so the maximum 49 occurs at 49 and 99, the minimum 0 at 0 and
    // 50. Row 1: the same, with a NaN at 90 (NaN wins for max and min, as in PyTorch).
    xt::xarray<double> v = xt::zeros<double>({2, 100});
    for (std::size_t k = 0; k < 100; ++k) v(0, k) = v(1, k) = double(k % 50);
    v(1, 90) = std::nan("");
    Tensor x = tensor(v).to(dt);
    expect_values(argmax(x, 1), {2}, {49, 90});
    expect_values(argmin(x, 1), {2}, {0, 90});
    expect_values(max(x, 1), {2}, {49, std::nan("")});
    expect_values(argmax(slice(x, 0, 0, 1)), {}, {49});
    // Along dim 0 of the transpose (the inner-axis path): the same answers.
    expect_values(argmax(transpose(x, 0, 1), 0), {2}, {49, 90});
    expect_values(argmin(transpose(x, 0, 1), 0, true), {1, 2}, {0, 90});
  }
}

TEST_CASE("reduce: max/min gradients, every pattern") {
  Tensor x = distinct({2, 3, 4});
  check_grads([](const In& in) { return max(in[0]); }, {x});
  check_grads([](const In& in) { return min(in[0]); }, {x});
  for (bool keepdim : {false, true})
    for (int dim : {0, 1, 2, -1, -3}) {
      CAPTURE(keepdim);
      CAPTURE(dim);
      check_grads([&](const In& in) { return max(in[0], dim, keepdim); }, {x});
      check_grads([&](const In& in) { return in[0].min(dim, keepdim); }, {x});
    }
  Tensor s = f64(xt::xarray<double>(-0.5));
  check_grads([](const In& in) { return max(in[0]); }, {s});
  check_grads([](const In& in) { return max(in[0], 0, true); }, {s});
  Tensor y = distinct({3, 1});
  check_grads([](const In& in) { return min(in[0], 1); }, {y});
  // Second order through a non-linear use: d²/dx² of max(x, 1)² is 2 at the winners.
  check_grads([](const In& in) { return mul(max(in[0], 1), max(in[0], 1)); }, {x});
}

TEST_CASE("reduce: argmax/argmin, full and along a dim") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor x = tensor({{1, 5, 5}, {7, 0, 7}}, dt);
    // Flattened: [1, 5, 5, 7, 0, 7]; the first 7 is at 3, the 0 at 4.
    expect_values(argmax(x), {}, {3});
    expect_values(x.argmax(), {}, {3});
    expect_values(argmin(x), {}, {4});
    expect_values(argmax(x, 1), {2}, {1, 0});          // first 5 of row 0, first 7 of row 1
    expect_values(x.argmax(-1, true), {2, 1}, {1, 0});
    expect_values(argmax(x, 0), {3}, {1, 0, 1});       // 7 > 1, 5 > 0, 7 > 5
    expect_values(argmin(x, 0, true), {1, 3}, {0, 1, 0});
    expect_values(argmin(x, 1), {2}, {0, 1});
    CHECK(argmax(x).dtype() == dt);
    CHECK(argmax(x, 1).dtype() == dt);
  }
  Tensor x = f64({{1, 5}, {7, 0}});
  CHECK_FALSE(argmax(x, 0).requires_grad());  // indices carry no gradient
  CHECK_FALSE(argmin(x).requires_grad());
  expect_values(argmax(tensor(3.0)), {}, {0});
  expect_values(argmin(tensor(3.0), 0), {}, {0});
  // Along the middle dim of a 3-D tensor: x[i, :, k] for shape (2, 3, 2).
  Tensor y = tensor(xt::xarray<double>{{{0, 9}, {8, 1}, {8, 2}}, {{3, 3}, {1, 4}, {5, 4}}});
  expect_values(argmax(y, 1), {2, 2}, {1, 0, 2, 1});  // [0,8,8]->1, [9,1,2]->0, [3,1,5]->2, [3,4,4]->1
  expect_values(max(y, 1), {2, 2}, {8, 9, 5, 4});
}

TEST_CASE("reduce: max/min/argmax errors") {
  Tensor empty = zeros({0});
  CHECK_THROWS_WITH_AS(max(empty), doctest::Contains("max: cannot reduce an empty tensor"), Error);
  CHECK_THROWS_WITH_AS(min(zeros({2, 0})), doctest::Contains("[2, 0]"), Error);
  CHECK_THROWS_WITH_AS(argmax(empty), doctest::Contains("argmax: cannot reduce an empty tensor"), Error);
  CHECK_THROWS_WITH_AS(argmin(empty), doctest::Contains("argmin"), Error);
  CHECK_THROWS_WITH_AS(max(zeros({3, 0}), 1), doctest::Contains("dimension 1 of size 0"), Error);
  CHECK_THROWS_WITH_AS(argmax(zeros({3, 0}), -1), doctest::Contains("of size 0"), Error);
  Tensor x = tensor({{1, 2}, {3, 4}});
  CHECK_THROWS_WITH_AS(max(x, 2), doctest::Contains("max: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(min(x, -3), doctest::Contains("min: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(argmax(x, 5, true), doctest::Contains("argmax: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(max(tensor(1.0), 1), doctest::Contains("dimension out of range"), Error);
}

// ---- logsumexp ------------------------------------------------------------------------------------

TEST_CASE("reduce: logsumexp forward values") {
  const double ln3 = std::log(3.0);
  for (Dtype dt : {kFloat32, kFloat64}) {
    const double rel = dt == kFloat32 ? 1e-6 : 1e-12;
    Tensor x = tensor({{0, ln3}, {1, 1}}, dt);
    // row 0: log(e^0 + e^ln3) = log(1 + 3) = log 4; row 1: log(2e) = 1 + log 2
    expect_values(logsumexp(x, 1), {2}, {std::log(4.0), 1 + std::log(2.0)}, rel);
    expect_values(x.logsumexp(-1, true), {2, 1}, {std::log(4.0), 1 + std::log(2.0)}, rel);
    // column 0: log(1 + e); column 1: log(3 + e)
    expect_values(logsumexp(x, 0), {2}, {std::log(1 + std::exp(1.0)), std::log(3 + std::exp(1.0))}, rel);
    // 0-d: log(exp(x)) = x
    expect_values(logsumexp(tensor(0.7, dt), 0), {}, {0.7}, rel);
  }
}

TEST_CASE("reduce: logsumexp is stable at magnitude 1e4 and handles infinities like PyTorch") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    const double rel = dt == kFloat32 ? 1e-6 : 1e-12;
    // exp(1e4) overflows and exp(-1e4) underflows; shifted by the max: m + log(2).
    Tensor x = tensor({{1e4, 1e4}, {-1e4, -1e4}, {1e4, -1e4}}, dt);
    expect_values(logsumexp(x, 1), {3}, {1e4 + std::log(2.0), -1e4 + std::log(2.0), 1e4}, rel);
    // A row of -inf is -inf (not NaN); a row holding +inf is +inf; -inf next to finite values drops out.
    Tensor y = tensor({{-kInf, -kInf}, {kInf, 0}, {-kInf, 0}}, dt);
    expect_values(logsumexp(y, 1), {3}, {-kInf, kInf, 0});
    // Reducing over an empty dim: log(0) = -inf, as in PyTorch.
    expect_values(logsumexp(zeros({2, 0}, dt), 1), {2}, {-kInf, -kInf});
  }
  // The gradient at 1e4 is the softmax, finite: [0.5, 0.5] for equal entries, [1, 0] across 2e4.
  Tensor x = f64({{1e4, 1e4}, {1e4, -1e4}});
  logsumexp(x, 1).backward(tensor({1.0, 1.0}, kFloat64));
  expect_values(x.grad(), {2, 2}, {0.5, 0.5, 1, 0});
}

TEST_CASE("reduce: logsumexp gradients, every pattern") {
  Tensor x = distinct({2, 3, 4});
  for (bool keepdim : {false, true})
    for (int dim : {0, 1, 2, -1, -2}) {
      CAPTURE(keepdim);
      CAPTURE(dim);
      check_grads([&](const In& in) { return logsumexp(in[0], dim, keepdim); }, {x});
    }
  check_grads([](const In& in) { return logsumexp(in[0], 0); }, {f64(xt::xarray<double>(0.3))});
  check_grads([](const In& in) { return logsumexp(in[0], 1, true); }, {distinct({4, 1})});
  // Large inputs: the gradient (softmax) is still exact.
  check_grads([](const In& in) { return logsumexp(in[0], 1); }, {f64({{1e4, 1e4 - 1, 1e4 + 0.5}})});
}

// ---- var --------------------------------------------------------------------------------------------

TEST_CASE("reduce: var forward values") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    const double rel = dt == kFloat32 ? 1e-6 : 1e-12;
    Tensor v = tensor({1, 2, 3, 4}, dt);
    // mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; unbiased 5/3, biased 5/4
    expect_values(var(v, {}), {}, {5.0 / 3}, rel);
    expect_values(v.var({0}, false), {}, {1.25}, rel);
    Tensor x = tensor({{1, 2}, {3, 5}}, dt);
    // rows: [1,2] mean 1.5, 0.25+0.25 = 0.5 / 1; [3,5] mean 4, 1+1 = 2 / 1
    expect_values(var(x, {1}), {2}, {0.5, 2}, rel);
    // columns, biased, keepdim: [1,3] mean 2, (1+1)/2 = 1; [2,5] mean 3.5, (2.25+2.25)/2 = 2.25
    expect_values(var(x, {0}, false, true), {1, 2}, {1, 2.25}, rel);
    // all four: mean 2.75; deviations² 3.0625 + 0.5625 + 0.0625 + 5.0625 = 8.75; / 3
    expect_values(var(x, {}), {}, {8.75 / 3}, rel);
    expect_values(var(x, {-1, 0}, true, true), {1, 1}, {8.75 / 3}, rel);
  }
  // Well-conditioned despite a large offset (two-pass): var([1e8+1, 1e8+2, 1e8+3]) = 1.
  expect_values(var(tensor({1e8 + 1, 1e8 + 2, 1e8 + 3}, kFloat64), {}), {}, {1.0});
  // One element: N - 1 = 0, so 0/0 = NaN for the unbiased estimate (PyTorch too), 0 for the biased one.
  CHECK(std::isnan(var(tensor({3.0}, kFloat64), {}).item()));
  expect_values(var(tensor({3.0}, kFloat64), {}, false), {}, {0});
}

TEST_CASE("reduce: var gradients, every pattern") {
  Tensor x = distinct({2, 3, 4});
  for (bool unbiased : {true, false})
    for (bool keepdim : {false, true})
      for (const std::vector<int>& dims : std::vector<std::vector<int>>{{}, {0}, {1}, {-1}, {0, 2}, {-1, -2}}) {
        CAPTURE(unbiased);
        CAPTURE(keepdim);
        check_grads([&](const In& in) { return var(in[0], dims, unbiased, keepdim); }, {x});
      }
  check_grads([](const In& in) { return in[0].var({1}); }, {distinct({3, 2})});
  check_grads([](const In& in) { return var(in[0], {1}, false); }, {distinct({3, 1})});  // size-1 dim: 0
  // By hand: d var_biased / dx_i = 2 (x_i - mean) / N. For [1, 2, 3, 4]: 2·[-1.5, -0.5, 0.5, 1.5] / 4.
  Tensor v = f64({1, 2, 3, 4});
  var(v, {}, false).backward();
  expect_values(v.grad(), {4}, {-0.75, -0.25, 0.25, 0.75});
}

TEST_CASE("reduce: var errors") {
  Tensor x = tensor({{1, 2}, {3, 4}});
  CHECK_THROWS_WITH_AS(var(x, {0, -2}), doctest::Contains("var: dim -2 appears multiple times"), Error);
  CHECK_THROWS_WITH_AS(var(x, {2}), doctest::Contains("var: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(logsumexp(x, 2), doctest::Contains("logsumexp: dimension out of range"), Error);
}
