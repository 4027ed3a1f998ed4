// Shape ops: reshape, expand, squeeze/unsqueeze, flatten, transpose/permute/t, slice, index_select,
// cat, stack. Forward values are derived by hand in the comments; every op is checked with gradcheck
// and gradgradcheck in float64 (their second derivatives are zero, but gradgradcheck still checks
// that each backward op is itself differentiable with the right adjoint).
#include <doctest/doctest.h>

#include <cmath>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

using In = std::vector<Tensor>;

Tensor f64(xt::xarray<double> a, bool requires_grad = true) { return tensor(std::move(a), requires_grad); }

void expect_values(const Tensor& t, const Shape& shape, const std::vector<double>& expected) {
  CHECK(shape_str(t.shape()) == shape_str(shape));
  const Tensor d = t.detach().to(kFloat64);
  const auto& a = d.data<double>();
  REQUIRE(a.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("element ", i);
    CHECK(a.data()[i] == expected[i]);
  }
}

template <class F>
void check_grads(F fn, const In& inputs) {
  CHECK(gradcheck(fn, inputs));
  CHECK(gradgradcheck(fn, inputs));
}

Tensor random64(const Shape& shape, std::uint64_t seed = 3) {
  manual_seed(seed);
  return randn(shape, kFloat64).requires_grad_(true);
}

// 0, 1, 2, ... shaped as `shape`: element values equal their flat index, so a result's values say
// exactly where each element came from.
Tensor iota(const Shape& shape, Dtype dt = kFloat64) {
  std::vector<std::int64_t> s(shape.begin(), shape.end());
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return reshape(arange(static_cast<std::int64_t>(n), dt), s);
}

}  // namespace

// ---- reshape / expand / squeeze / unsqueeze ---------------------------------------------------------

TEST_CASE("shape: reshape keeps the row-major order and infers -1") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor x = iota({2, 3}, dt);
    expect_values(reshape(x, {3, 2}), {3, 2}, {0, 1, 2, 3, 4, 5});
    expect_values(x.reshape({-1}), {6}, {0, 1, 2, 3, 4, 5});
    expect_values(reshape(x, {1, -1, 2}), {1, 3, 2}, {0, 1, 2, 3, 4, 5});  // 6 / (1·2) = 3
    expect_values(reshape(tensor(5.0, dt), {1, 1}), {1, 1}, {5});
    expect_values(reshape(tensor({5.0}, dt), {}), {}, {5});
  }
  Tensor x = random64({2, 3, 2});
  check_grads([](const In& in) { return reshape(in[0], {3, 4}); }, {x});
  check_grads([](const In& in) { return reshape(in[0], {-1}); }, {x});
  check_grads([](const In& in) { return reshape(in[0], {}); }, {random64({1, 1})});
}

TEST_CASE("shape: reshape errors") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_AS(reshape(x, {4, 2}), doctest::Contains("shape [4, 2] is invalid for input of size 6"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {-1, 4}), doctest::Contains("invalid for input of size 6"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {-1, -1}), doctest::Contains("only one dimension can be inferred"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {-2, 3}), doctest::Contains("invalid size -2"), Error);
}

TEST_CASE("shape: expand repeats size-1 and new leading dims") {
  Tensor v = tensor({1, 2, 3}, kFloat64);
  expect_values(expand(v, {2, 3}), {2, 3}, {1, 2, 3, 1, 2, 3});  // a new leading dim repeats the row
  Tensor c = reshape(tensor({1, 2}, kFloat64), {2, 1});
  expect_values(c.expand({-1, 3}), {2, 3}, {1, 1, 1, 2, 2, 2});  // -1 keeps 2, the 1 becomes 3
  expect_values(expand(tensor(7.0), {2}), {2}, {7, 7});
  expect_values(expand(c, {2, 1}), {2, 1}, {1, 2});              // same shape: a copy
  check_grads([](const In& in) { return expand(in[0], {2, 4, 3}); }, {random64({4, 1})});
  check_grads([](const In& in) { return expand(in[0], {3, -1}); }, {random64({1, 2})});
  check_grads([](const In& in) { return expand(in[0], {2, 2}); }, {f64(xt::xarray<double>(0.5))});
}

TEST_CASE("shape: expand errors") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH_AS(expand(x, {4, 3}), doctest::Contains("must match the existing size (2) at non-singleton dimension 0"), Error);
  CHECK_THROWS_WITH_AS(expand(x, {3}), doctest::Contains("must be greater or equal"), Error);
  CHECK_THROWS_WITH_AS(expand(x, {-1, 2, 3}), doctest::Contains("-1 is not allowed in a leading"), Error);
}

TEST_CASE("shape: squeeze and unsqueeze") {
  Tensor x = iota({2, 1, 3, 1});
  CHECK(shape_str(squeeze(x, 1).shape()) == "[2, 3, 1]");
  CHECK(shape_str(squeeze(x, -1).shape()) == "[2, 1, 3]");
  CHECK(shape_str(squeeze(x, 0).shape()) == "[2, 1, 3, 1]");  // size 2: a no-op, as in PyTorch
  CHECK(shape_str(squeeze(x).shape()) == "[2, 3]");
  CHECK(shape_str(unsqueeze(x, 0).shape()) == "[1, 2, 1, 3, 1]");
  CHECK(shape_str(x.unsqueeze(-1).shape()) == "[2, 1, 3, 1, 1]");  // -1 = after the last dim
  CHECK(shape_str(unsqueeze(tensor(1.0), 0).shape()) == "[1]");
  CHECK(shape_str(squeeze(tensor(1.0), 0).shape()) == "[]");
  expect_values(squeeze(x, 1), {2, 3, 1}, {0, 1, 2, 3, 4, 5});
  Tensor y = random64({2, 1, 3});
  check_grads([](const In& in) { return squeeze(in[0], 1); }, {y});
  check_grads([](const In& in) { return squeeze(in[0], 0); }, {y});
  check_grads([](const In& in) { return squeeze(in[0]); }, {y});
  check_grads([](const In& in) { return unsqueeze(in[0], 2); }, {y});
  check_grads([](const In& in) { return in[0].unsqueeze(-4); }, {y});
  CHECK_THROWS_WITH_AS(squeeze(x, 4), doctest::Contains("squeeze: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(unsqueeze(x, 5), doctest::Contains("unsqueeze: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(unsqueeze(x, -6), doctest::Contains("got -6"), Error);
}

// ---- flatten --------------------------------------------------------------------------------------

TEST_CASE("shape: flatten") {
  Tensor x = iota({2, 3, 4});
  const auto& xv = x.data<double>();
  expect_values(flatten(x), {24}, std::vector<double>(xv.begin(), xv.end()));  // the same order, one dim
  CHECK(shape_str(flatten(x, 1).shape()) == "[2, 12]");
  CHECK(shape_str(x.flatten(0, 1).shape()) == "[6, 4]");
  CHECK(shape_str(flatten(x, -2, -1).shape()) == "[2, 12]");
  CHECK(shape_str(flatten(x, 1, 1).shape()) == "[2, 3, 4]");
  CHECK(shape_str(flatten(tensor(2.0)).shape()) == "[1]");  // a 0-d tensor becomes one element
  CHECK(shape_str(flatten(zeros({2, 0, 3}), 1).shape()) == "[2, 0]");
  check_grads([](const In& in) { return flatten(in[0], 1); }, {random64({2, 3, 2})});
  check_grads([](const In& in) { return flatten(in[0]); }, {f64(xt::xarray<double>(1.0))});
  CHECK_THROWS_WITH_AS(flatten(x, 2, 1), doctest::Contains("start_dim (2) cannot come after end_dim (1)"), Error);
  CHECK_THROWS_WITH_AS(flatten(x, 3), doctest::Contains("flatten: dimension out of range"), Error);
}

// ---- transpose / permute / t ----------------------------------------------------------------------

TEST_CASE("shape: transpose and t") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, dt);
    expect_values(transpose(x, 0, 1), {3, 2}, {1, 4, 2, 5, 3, 6});
    expect_values(x.t(), {3, 2}, {1, 4, 2, 5, 3, 6});
    expect_values(t(x), {3, 2}, {1, 4, 2, 5, 3, 6});
    expect_values(x.transpose(-1, -2), {3, 2}, {1, 4, 2, 5, 3, 6});
    expect_values(transpose(x, 1, 1), {2, 3}, {1, 2, 3, 4, 5, 6});
    CHECK(transpose(x, 0, 1).dtype() == dt);
  }
  // 1-D and 0-d: t() is the identity, as in PyTorch.
  expect_values(tensor({1, 2, 3}).t(), {3}, {1, 2, 3});
  expect_values(tensor(4.0).t(), {}, {4});
  // 3-D, dims 0 and 2 of iota(2, 3, 4): y[k][j][i] = x[i][j][k] = 12i + 4j + k.
  Tensor y = transpose(iota({2, 3, 4}), 0, 2);
  CHECK(shape_str(y.shape()) == "[4, 3, 2]");
  const auto& yv = y.data<double>();
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t i = 0; i < 2; ++i) CHECK(yv(k, j, i) == double(12 * i + 4 * j + k));
  check_grads([](const In& in) { return transpose(in[0], 0, 1); }, {random64({2, 3})});
  check_grads([](const In& in) { return transpose(in[0], -1, 0); }, {random64({2, 3, 2})});
  check_grads([](const In& in) { return in[0].t(); }, {random64({3, 2})});
  check_grads([](const In& in) { return in[0].t(); }, {random64({3})});
  CHECK_THROWS_WITH_AS(iota({2, 2, 2}).t(), doctest::Contains("t: expects a tensor with <= 2 dimensions"), Error);
  CHECK_THROWS_WITH_AS(transpose(iota({2, 2}), 0, 2), doctest::Contains("transpose: dimension out of range"), Error);
}

TEST_CASE("shape: large transposes and permutes match the index formula (tiled copy path)") {
  // 70 x 45 crosses several 32 x 32 tiles with ragged edges: y[j][i] = x[i][j] = 45i + j.
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor y = transpose(iota({70, 45}, dt), 0, 1).to(kFloat64);
    const auto& v = y.data<double>();
    bool ok = true;
    for (std::size_t j = 0; j < 45; ++j)
      for (std::size_t i = 0; i < 70; ++i) ok = ok && v(j, i) == double(45 * i + j);
    CHECK(ok);
  }
  // permute (2, 0, 3, 1) of iota(3, 4, 5, 6): y[c][a][d][b] = x[a][b][c][d] = 120a + 30b + 6c + d.
  Tensor y = permute(iota({3, 4, 5, 6}), {2, 0, 3, 1});
  CHECK(shape_str(y.shape()) == "[5, 3, 6, 4]");
  const auto& v = y.data<double>();
  bool ok = true;
  for (std::size_t c = 0; c < 5; ++c)
    for (std::size_t a = 0; a < 3; ++a)
      for (std::size_t d = 0; d < 6; ++d)
        for (std::size_t b = 0; b < 4; ++b) ok = ok && v(c, a, d, b) == double(120 * a + 30 * b + 6 * c + d);
  CHECK(ok);
  // Batched matrix transpose (the last two dims) of iota(3, 40, 33): y[b][j][i] = 1320b + 33i + j.
  Tensor z = transpose(iota({3, 40, 33}), -1, -2);
  const auto& w = z.data<double>();
  ok = true;
  for (std::size_t b = 0; b < 3; ++b)
    for (std::size_t j = 0; j < 33; ++j)
      for (std::size_t i = 0; i < 40; ++i) ok = ok && w(b, j, i) == double(1320 * b + 33 * i + j);
  CHECK(ok);
}

TEST_CASE("shape: permute") {
  Tensor x = iota({2, 3, 4});
  // (2, 0, 1): y[k][i][j] = x[i][j][k] = 12i + 4j + k
  Tensor y = permute(x, {2, 0, 1});
  CHECK(shape_str(y.shape()) == "[4, 2, 3]");
  const auto& v = y.data<double>();
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j) CHECK(v(k, i, j) == double(12 * i + 4 * j + k));
  expect_values(x.permute({-3, -2, -1}), {2, 3, 4}, std::vector<double>(x.data<double>().begin(), x.data<double>().end()));
  expect_values(permute(tensor(3.0), {}), {}, {3});
  // A non-involutive permutation checks that the backward applies the inverse.
  check_grads([](const In& in) { return permute(in[0], {2, 0, 1}); }, {random64({2, 3, 2})});
  check_grads([](const In& in) { return permute(in[0], {1, 2, 0}); }, {random64({2, 1, 3})});
  check_grads([](const In& in) { return permute(in[0], {-1, 0}); }, {random64({2, 3})});
  CHECK_THROWS_WITH_AS(permute(x, {0, 1}), doctest::Contains("permute: dims [0, 1] must name each of the 3 dimensions"), Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, 1, 1}), doctest::Contains("dims [0, 1, 1] is not a permutation: dim 1 is repeated"), Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, -3, 1}), doctest::Contains("dim -3 is repeated"), Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, 1, 3}), doctest::Contains("permute: dimension out of range"), Error);
}

// ---- slice ----------------------------------------------------------------------------------------

TEST_CASE("shape: slice follows Python slicing") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor x = arange(10, dt);
    expect_values(slice(x, 0, 2, 8, 3), {2}, {2, 5});           // 2, 5 (8 excluded)
    expect_values(slice(x, 0, -3, 1000), {3}, {7, 8, 9});       // -3 -> 7; the end clamps to 10
    expect_values(x.slice(0, -100, 2), {2}, {0, 1});            // the start clamps to 0
    expect_values(slice(x, 0, 5, 2), {0}, {});                  // end before start: empty
    expect_values(slice(x, 0, 12, 20), {0}, {});                // start past the end: empty
    expect_values(slice(x, -1, 0, 10, 4), {3}, {0, 4, 8});
    expect_values(slice(x, 0, 1, -1, 7), {2}, {1, 8});          // -1 -> 9: 1, 8
  }
  // Along dim 1 of iota(3, 4) with step 2: columns 1 and 3 → [[1, 3], [5, 7], [9, 11]]
  expect_values(slice(iota({3, 4}), 1, 1, 4, 2), {3, 2}, {1, 3, 5, 7, 9, 11});
  // Rows 1..2 of iota(3, 4)
  expect_values(slice(iota({3, 4}), 0, 1, 3), {2, 4}, {4, 5, 6, 7, 8, 9, 10, 11});
  // Middle dim of iota(2, 3, 2), index 2 only: [[4, 5], [10, 11]]
  expect_values(slice(iota({2, 3, 2}), 1, 2, 3), {2, 1, 2}, {4, 5, 10, 11});
  // The gradient lands in the sliced positions, zeros elsewhere.
  Tensor y = f64({0, 0, 0, 0, 0, 0});
  slice(y, 0, 1, 6, 2).backward(tensor({1.0, 2.0, 3.0}, kFloat64));
  expect_values(y.grad(), {6}, {0, 1, 0, 2, 0, 3});
}

TEST_CASE("shape: slice gradients, every pattern") {
  Tensor x = random64({3, 4, 2});
  check_grads([](const In& in) { return slice(in[0], 0, 1, 3); }, {x});
  check_grads([](const In& in) { return slice(in[0], 1, 0, 4, 3); }, {x});
  check_grads([](const In& in) { return slice(in[0], -1, -1, 2); }, {x});
  check_grads([](const In& in) { return slice(in[0], 1, 2, 100, 2); }, {x});
  check_grads([](const In& in) { return slice(in[0], 1, 3, 1); }, {x});  // empty result: zero gradient
  // Second order through a non-linear use: the backward (slice_backward) is differentiable.
  check_grads([](const In& in) { return mul(slice(in[0], 1, 0, 4, 2), slice(in[0], 1, 1, 4, 2)); }, {x});
}

TEST_CASE("shape: slice errors") {
  Tensor x = arange(5);
  CHECK_THROWS_WITH_AS(slice(x, 0, 0, 5, 0), doctest::Contains("slice: step must be positive, got 0"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 0, 5, 0, -1), doctest::Contains("got -1"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 1, 0, 1), doctest::Contains("slice: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(slice(tensor(1.0), 0, 0, 1), doctest::Contains("0-d"), Error);
}

// ---- index_select ---------------------------------------------------------------------------------

TEST_CASE("shape: index_select values and accumulated gradients") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor x = tensor({{1, 2}, {3, 4}, {5, 6}}, dt);
    expect_values(index_select(x, 0, tensor({2, 0, 2}, dt)), {3, 2}, {5, 6, 1, 2, 5, 6});  // rows 2, 0, 2
    expect_values(x.index_select(1, tensor({1}, dt)), {3, 1}, {2, 4, 6});                   // column 1
    expect_values(index_select(x, -1, tensor({1, 0}, dt)), {3, 2}, {2, 1, 4, 3, 6, 5});     // columns swapped
    expect_values(index_select(x, 0, tensor(1.0, dt)), {1, 2}, {3, 4});                     // a 0-d index keeps the dim
    expect_values(index_select(x, 0, zeros({0}, dt)), {0, 2}, {});
  }
  // Indices in another float dtype than the values are fine.
  expect_values(index_select(tensor({10, 20, 30}, kFloat64), 0, tensor({2, 1}, kFloat32)), {2}, {30, 20});
  // 0-d input: the only index is 0.
  expect_values(index_select(tensor(9.0), 0, tensor({0})), {}, {9});
  // Row 2 is selected twice: its gradient is the sum of both (1 + 1); row 1 is never selected.
  Tensor x = f64({{1, 2}, {3, 4}, {5, 6}});
  index_select(x, 0, tensor({2, 0, 2}, kFloat64)).backward(ones({3, 2}, kFloat64));
  expect_values(x.grad(), {3, 2}, {1, 1, 0, 0, 2, 2});
}

TEST_CASE("shape: index_select gradients, every pattern") {
  Tensor x = random64({3, 4, 2});
  check_grads([](const In& in) { return index_select(in[0], 0, tensor({2, 0, 2, 1}, kFloat64)); }, {x});
  check_grads([](const In& in) { return index_select(in[0], 1, tensor({3, 3}, kFloat64)); }, {x});
  check_grads([](const In& in) { return index_select(in[0], -1, tensor(1.0, kFloat64)); }, {x});
  check_grads([](const In& in) { return index_select(in[0], 0, tensor({0}, kFloat64)); }, {f64(xt::xarray<double>(2.0))});
  // Second order through a non-linear use: the index_add backward is itself differentiable.
  check_grads([](const In& in) {
    Tensor s = index_select(in[0], 1, tensor({0, 2, 0}, kFloat64));
    return mul(s, s);
  }, {x});
}

TEST_CASE("shape: index_select errors name the offending value") {
  Tensor x = zeros({3, 2});
  CHECK_THROWS_WITH_AS(index_select(x, 0, tensor({0, 3})), doctest::Contains("index 3 (position 1) is out of range for dimension 0 of size 3"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 1, tensor({-1})), doctest::Contains("index -1 (position 0) is out of range"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, tensor({1.5})), doctest::Contains("index 1.5 (position 0) is not an integer"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, tensor({std::nan("")})), doctest::Contains("is not an integer"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, tensor({{0, 1}})), doctest::Contains("indices must be a 1-D (or 0-d) tensor, got shape [1, 2]"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 2, tensor({0})), doctest::Contains("index_select: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(index_select(tensor(1.0), 0, tensor({0, 0})), doctest::Contains("exactly one index"), Error);
}

// ---- cat / stack ----------------------------------------------------------------------------------

TEST_CASE("shape: cat values") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor a = tensor({{1, 2}}, dt), b = tensor({{3, 4}, {5, 6}}, dt);
    expect_values(cat({a, b}, 0), {3, 2}, {1, 2, 3, 4, 5, 6});         // rows of a, then rows of b
    expect_values(cat({b, a}), {3, 2}, {3, 4, 5, 6, 1, 2});
    Tensor c = reshape(tensor({7, 8}, dt), {2, 1});
    expect_values(cat({b, c}, 1), {2, 3}, {3, 4, 7, 5, 6, 8});         // c becomes a third column
    expect_values(cat({c, b, c}, -1), {2, 4}, {7, 3, 4, 7, 8, 5, 6, 8});
    expect_values(cat({a}, 0), {1, 2}, {1, 2});
    // PyTorch's legacy rule: a 1-D empty tensor is skipped whatever the others' shapes.
    expect_values(cat({zeros({0}, dt), b}, 1), {2, 2}, {3, 4, 5, 6});
    // Empty pieces along the cat dim are fine.
    expect_values(cat({zeros({0, 2}, dt), a}, 0), {1, 2}, {1, 2});
  }
  // Middle dim of 3-D tensors: iota(2, 1, 2) = [[[0,1]],[[2,3]]] and 10 + iota(2, 2, 2)
  Tensor p = iota({2, 1, 2}), q = add(iota({2, 2, 2}), 10.0);
  expect_values(cat({p, q}, 1), {2, 3, 2}, {0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17});
}

TEST_CASE("shape: cat gradients") {
  Tensor a = random64({2, 3}, 1), b = random64({1, 3}, 2), c = random64({2, 2}, 4);
  check_grads([](const In& in) { return cat({in[0], in[1]}, 0); }, {a, b});
  check_grads([](const In& in) { return cat({in[0], in[1], in[0]}, -1); }, {a, c});  // a used twice
  check_grads([](const In& in) { return cat({in[0], in[1]}, 2); }, {random64({2, 1, 2}, 5), random64({2, 1, 3}, 6)});
  // Only some inputs require grad.
  Tensor fixed = tensor({{1.0, 2.0, 3.0}}, kFloat64);
  check_grads([&](const In& in) { return cat({fixed, in[0]}, 0); }, {a});
  Tensor x = f64({{1, 2}}), y = reshape(tensor({3.0}, kFloat64), {1, 1}).detach().requires_grad_(true);
  cat({x, y}, 1).backward(tensor({{10.0, 20.0, 30.0}}, kFloat64));
  expect_values(x.grad(), {1, 2}, {10, 20});  // the first two columns
  expect_values(y.grad(), {1, 1}, {30});      // the last one
  // The legacy empty input gets an empty gradient.
  Tensor e = f64(xt::xarray<double>::from_shape({0}));
  cat({e, x}, 0).sum().backward();
  CHECK(shape_str(e.grad().shape()) == "[0]");
}

TEST_CASE("shape: cat errors") {
  Tensor a = zeros({2, 3}), b = zeros({2, 4});
  CHECK_THROWS_WITH_AS(cat({}, 0), doctest::Contains("cat: expected a non-empty list of tensors"), Error);
  CHECK_THROWS_WITH_AS(cat({a, b}, 0), doctest::Contains("cat: sizes of tensors must match except in dimension 0, but tensor 0 has shape [2, 3] and tensor 1 has shape [2, 4]"), Error);
  CHECK_THROWS_WITH_AS(cat({a, zeros({2, 3, 1})}, 1), doctest::Contains("tensor 1 has shape [2, 3, 1]"), Error);
  CHECK_THROWS_WITH_AS(cat({a, zeros({2, 3}, kFloat64)}, 0), doctest::Contains("tensor 0 is float32 and tensor 1 is float64"), Error);
  CHECK_THROWS_WITH_AS(cat({a, b}, 2), doctest::Contains("cat: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(cat({tensor(1.0), tensor(2.0)}, 0), doctest::Contains("zero-dimensional tensor (at position 0)"), Error);
  CHECK_THROWS_WITH_AS(cat({a, Tensor()}, 0), doctest::Contains("tensor 1 in the list is undefined"), Error);
}

TEST_CASE("shape: stack values and gradients") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    Tensor a = tensor({1, 2, 3}, dt), b = tensor({4, 5, 6}, dt);
    expect_values(stack({a, b}), {2, 3}, {1, 2, 3, 4, 5, 6});          // a and b as rows
    expect_values(stack({a, b}, 1), {3, 2}, {1, 4, 2, 5, 3, 6});       // ... as columns
    expect_values(stack({a, b}, -1), {3, 2}, {1, 4, 2, 5, 3, 6});
    expect_values(stack({tensor(1.0, dt), tensor(2.0, dt)}), {2}, {1, 2});
  }
  // (2, 2) inputs stacked in the middle: out[i][k][j] = input_k[i][j]
  Tensor p = tensor({{1, 2}, {3, 4}}, kFloat64), q = tensor({{5, 6}, {7, 8}}, kFloat64);
  expect_values(stack({p, q}, 1), {2, 2, 2}, {1, 2, 5, 6, 3, 4, 7, 8});
  Tensor a = random64({2, 3}, 1), b = random64({2, 3}, 2);
  for (int dim : {0, 1, 2, -1, -3}) {
    CAPTURE(dim);
    check_grads([dim](const In& in) { return stack({in[0], in[1], in[0]}, dim); }, {a, b});
  }
  check_grads([](const In& in) { return stack({in[0], in[1]}); }, {f64(xt::xarray<double>(1.0)), f64(xt::xarray<double>(2.0))});
  CHECK_THROWS_WITH_AS(stack({}, 0), doctest::Contains("stack: expected a non-empty list"), Error);
  CHECK_THROWS_WITH_AS(stack({zeros({2, 3}), zeros({3, 2})}), doctest::Contains("stack: expects each tensor to be equal size, but tensor 0 has shape [2, 3] and tensor 1 has shape [3, 2]"), Error);
  CHECK_THROWS_WITH_AS(stack({zeros({2}), zeros({2}, kFloat64)}), doctest::Contains("float32 and tensor 1 is float64"), Error);
  CHECK_THROWS_WITH_AS(stack({zeros({2}), zeros({2})}, 3), doctest::Contains("stack: dimension out of range"), Error);
}
