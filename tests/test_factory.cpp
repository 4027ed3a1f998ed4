// Factories, random draws and item<T>(): values by hand for the deterministic ones; for the random
// ones the range, the distribution (bounds several standard errors wide, so a correct generator
// passes with the fixed seeds below and a wrong one fails) and reproducibility under manual_seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "helpers.hpp"

using namespace xgrad;
using xgrad::test::check_values;

namespace {

std::vector<double> values_of(const Tensor& t) {
  const xt::xarray<double> v = t.to(kFloat64).data<double>();
  return {v.data(), v.data() + v.size()};
}

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }

double variance_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / static_cast<double>(v.size());
}

const Dtype kBoth[] = {kFloat32, kFloat64};

}  // namespace

TEST_CASE("factory: scalar_tensor is 0-d, holds the value rounded to its dtype") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    const Tensor s = scalar_tensor(2.5, dt);
    CHECK(s.dtype() == dt);
    CHECK(s.dim() == 0);
    CHECK(s.shape() == Shape{});
    CHECK(s.numel() == 1);
    CHECK(s.item() == 2.5);
    CHECK_FALSE(s.requires_grad());
  }
  CHECK(scalar_tensor(1.0).dtype() == kFloat32);  // the default dtype
  // 0.1 is not a float: the float32 tensor holds float(0.1), which differs from the double 0.1.
  CHECK(scalar_tensor(0.1, kFloat32).item() == static_cast<double>(0.1f));
  CHECK(scalar_tensor(0.1, kFloat32).item() != 0.1);
  CHECK(scalar_tensor(0.1, kFloat64).item() == 0.1);
}

TEST_CASE("factory: arange(start, end, step) gives ceil((end - start) / step) values start + i*step") {
  // ceil((2.5 - 0) / 0.5) = 5 values: 0, 0.5, 1, 1.5, 2 (end excluded).
  check_values(arange(0.0, 2.5, 0.5, kFloat64), {5}, {0, 0.5, 1, 1.5, 2}, 0);
  // ceil((11 - 1) / 3) = ceil(3.33) = 4: 1, 4, 7, 10 (a last step short of end still counts).
  check_values(arange(1.0, 11.0, 3.0, kFloat64), {4}, {1, 4, 7, 10}, 0);
  // A negative step counts down: ceil((-2 - 3) / -2) = ceil(2.5) = 3: 3, 1, -1.
  check_values(arange(3.0, -2.0, -2.0, kFloat64), {3}, {3, 1, -1}, 0);
  // start == end: empty.
  CHECK(arange(2.0, 2.0, 1.0).shape() == Shape{0});
  // The default step is 1 and the default dtype Float32.
  const Tensor r = arange(-1.0, 2.0);
  CHECK(r.dtype() == kFloat32);
  check_values(r, {3}, {-1, 0, 1}, 0);
  // Each value is start + i*step computed in double, then rounded once to the dtype (no running sum):
  // (0.35 - 0) / 0.1 = 3.4999999999999996, so 4 values; the last is 3*0.1 = 0.30000000000000004.
  check_values(arange(0.0, 0.35, 0.1, kFloat64), {4}, {0.0, 0.1, 0.2, 3 * 0.1}, 0);
  check_values(arange(0.0, 0.35, 0.1, kFloat32), {4},
               {0.0, static_cast<double>(0.1f), static_cast<double>(static_cast<float>(0.2)),
                static_cast<double>(static_cast<float>(3 * 0.1))}, 0);
  // A step that points away from end, or no step at all, throws.
  CHECK_THROWS_WITH_AS(arange(0.0, 1.0, -1.0), doctest::Contains("inconsistent"), Error);
  CHECK_THROWS_WITH_AS(arange(0.0, 1.0, 0.0), doctest::Contains("step"), Error);
}

TEST_CASE("factory: eye(n, m) puts ones on the main diagonal of an n x m matrix") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    // Wide: min(2, 3) = 2 ones at (0,0), (1,1).
    check_values(eye(2, 3, dt), {2, 3}, {1, 0, 0, 0, 1, 0}, 0);
    // Tall: ones at (0,0), (1,1); the third row is all zeros.
    check_values(eye(3, 2, dt), {3, 2}, {1, 0, 0, 1, 0, 0}, 0);
    CHECK(eye(2, 3, dt).dtype() == dt);
  }
  check_values(eye(2, 2), {2, 2}, {1, 0, 0, 1}, 0);
  CHECK(eye(0, 3).shape() == Shape{0, 3});
  CHECK(eye(4, 0).shape() == Shape{4, 0});
  // eye(n) is eye(n, n).
  check_values(eye(3), {3, 3}, values_of(eye(3, 3)), 0);
}

TEST_CASE("factory: full_like copies shape and dtype, not values, gradient or storage") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    Tensor src = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, dt, true);
    Tensor f = full_like(src, -1.5);
    CHECK(f.dtype() == dt);
    check_values(f, {2, 3}, {-1.5, -1.5, -1.5, -1.5, -1.5, -1.5}, 0);
    CHECK_FALSE(f.requires_grad());  // a new leaf without history, like torch.full_like
    CHECK(f.grad_fn() == nullptr);
  }
  // Its own storage: filling the source afterwards leaves it unchanged.
  Tensor src = tensor({1.0, 2.0}, kFloat64);
  Tensor f = full_like(src, 7.0);
  src.data<double>().fill(0.0);
  check_values(f, {2}, {7, 7}, 0);
  // A 0-d source gives a 0-d result.
  CHECK(full_like(tensor(3.0), 2.0).shape() == Shape{});
}

TEST_CASE("factory: randn_like draws standard normals in the source's shape and dtype, reproducibly") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    const Tensor src = zeros({100, 200}, dt);
    manual_seed(2024);
    const Tensor a = randn_like(src);
    CHECK(a.shape() == src.shape());
    CHECK(a.dtype() == dt);
    CHECK_FALSE(a.requires_grad());
    // 20 000 draws: the mean has standard error 1/sqrt(20000) = 0.0071, the variance sqrt(2/20000) = 0.01;
    // the bounds are 5 standard errors. A uniform on [0, 1) (mean 0.5, variance 1/12) fails both.
    const std::vector<double> v = values_of(a);
    CHECK(std::abs(mean_of(v)) < 0.036);
    CHECK(std::abs(variance_of(v) - 1.0) < 0.05);
    // Tails: P(|z| > 1) = 0.3173 for a standard normal (standard error 0.0033; bound 0.017).
    const double beyond_one = static_cast<double>(std::count_if(v.begin(), v.end(), [](double x) { return std::abs(x) > 1; })) /
                              static_cast<double>(v.size());
    CHECK(std::abs(beyond_one - 0.3173) < 0.017);
    // Same seed, same draws; and the same draws as randn of that shape and dtype.
    manual_seed(2024);
    CHECK(values_of(randn_like(src)) == v);
    manual_seed(2024);
    CHECK(values_of(randn(src.shape(), dt)) == v);
    // The next draw continues the stream: different values.
    CHECK(values_of(randn_like(src)) != v);
  }
}

TEST_CASE("factory: randint draws integers uniformly from low to high - 1, reproducibly") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    manual_seed(11);
    const Tensor r = randint(-3, 4, {7000}, dt);
    CHECK(r.shape() == Shape{7000});
    CHECK(r.dtype() == dt);
    const std::vector<double> v = values_of(r);
    // Every value an integer in [-3, 4): -3 .. 3, seven values.
    std::vector<int> counts(7, 0);
    for (double x : v) {
      REQUIRE(x == std::floor(x));
      REQUIRE(x >= -3);
      REQUIRE(x < 4);
      ++counts[static_cast<std::size_t>(x + 3)];
    }
    // Uniform: each value 1000 times expected; Pearson's chi-square with 6 degrees of freedom has
    // P(chi2 > 22.46) = 0.001. A generator that never draws high - 1 (an off-by-one) gives chi2 > 1000.
    double chi2 = 0;
    for (int c : counts) chi2 += (c - 1000.0) * (c - 1000.0) / 1000.0;
    CAPTURE(chi2);
    CHECK(chi2 < 22.46);
    manual_seed(11);
    CHECK(values_of(randint(-3, 4, {7000}, dt)) == v);
  }
  // A range of one value gives only that value; shapes of any rank, 0-d included.
  check_values(randint(5, 6, {2, 2}, kFloat64), {2, 2}, {5, 5, 5, 5}, 0);
  CHECK(randint(0, 10, {}).shape() == Shape{});
  CHECK(randint(0, 10, {3, 0}).numel() == 0);
  CHECK_THROWS_WITH_AS(randint(4, 4, {2}), doctest::Contains("[4, 4)"), Error);
  CHECK_THROWS_WITH_AS(randint(5, 1, {2}), doctest::Contains("[5, 1)"), Error);
}

TEST_CASE("factory: randperm is a uniform random permutation of 0..n-1, reproducibly") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    manual_seed(5);
    const Tensor p = randperm(50, dt);
    CHECK(p.shape() == Shape{50});
    CHECK(p.dtype() == dt);
    std::vector<double> v = values_of(p);
    std::vector<double> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == values_of(arange(50, kFloat64)));  // each of 0..49 exactly once
    CHECK(v != sorted);                                 // shuffled (identity has probability 1/50!)
    manual_seed(5);
    CHECK(values_of(randperm(50, dt)) == v);
    CHECK(values_of(randperm(50, dt)) != v);  // the next draw differs
  }
  CHECK(randperm(0).shape() == Shape{0});
  check_values(randperm(1), {1}, {0}, 0);
  // Uniform: over 4000 permutations of 4, the value 0 lands in each position 1000 times expected
  // (chi-square, 3 degrees of freedom: P(chi2 > 16.27) = 0.001).
  manual_seed(77);
  std::vector<int> where_zero(4, 0);
  for (int k = 0; k < 4000; ++k) {
    const std::vector<double> v = values_of(randperm(4));
    ++where_zero[static_cast<std::size_t>(std::find(v.begin(), v.end(), 0.0) - v.begin())];
  }
  double chi2 = 0;
  for (int c : where_zero) chi2 += (c - 1000.0) * (c - 1000.0) / 1000.0;
  CAPTURE(chi2);
  CHECK(chi2 < 16.27);
}

TEST_CASE("tensor: item<T>() converts the only element like static_cast") {
  const Tensor d = tensor(0.1, kFloat64);
  CHECK(d.item<double>() == 0.1);
  CHECK(d.item<float>() == 0.1f);  // rounded to the nearest float
  CHECK(tensor(-2.0, kFloat32).item<std::int64_t>() == -2);
  CHECK(tensor(3.75, kFloat64).item<int>() == 3);    // truncation toward zero, like static_cast
  CHECK(tensor(-3.75, kFloat64).item<int>() == -3);
  CHECK(tensor(1.0).item<bool>());
  CHECK_FALSE(tensor(0.0).item<bool>());
  // One element of any rank: a (1, 1) tensor has an item.
  CHECK(tensor({4.5}, kFloat64).reshape({1, 1}).item<double>() == 4.5);
  // A float32 value read as double is exact (the float widened), not re-rounded from decimal.
  CHECK(tensor(0.1, kFloat32).item<double>() == static_cast<double>(0.1f));
  CHECK_THROWS_WITH_AS(tensor({1.0, 2.0}).item<float>(), doctest::Contains("item"), Error);
  CHECK_THROWS_WITH_AS(zeros({0}).item<double>(), doctest::Contains("0 elements"), Error);
}
