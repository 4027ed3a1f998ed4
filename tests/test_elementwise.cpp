// Elementwise ops: forward values by hand, gradients by hand at the kinks, gradcheck and gradgradcheck
// (float64) everywhere else, every broadcast pattern.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

using In = std::vector<Tensor>;
using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;

std::vector<double> values(const Tensor& t) {
  Tensor d = t.to(kFloat64);
  const auto& a = d.data<double>();
  return {a.data(), a.data() + a.size()};
}

// Checks shape, dtype-independent values (within tol relative; tol = 0 means exact).
void expect(const Tensor& t, const Shape& shape, const std::vector<double>& expected, double tol = 1e-6) {
  REQUIRE(t.defined());
  CHECK(t.shape() == shape);
  std::vector<double> v = values(t);
  REQUIRE(v.size() == expected.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    CAPTURE(i);
    if (tol == 0 || std::isinf(expected[i]))
      CHECK(v[i] == expected[i]);
    else
      CHECK(v[i] == doctest::Approx(expected[i]).epsilon(tol).scale(1.0));
  }
}

template <class F>
void check_grads(F fn, const In& inputs) {
  CHECK(gradcheck(fn, inputs));
  CHECK(gradgradcheck(fn, inputs));
}

Tensor f64(std::initializer_list<double> v) { return tensor(v, kFloat64, true); }
Tensor f64(std::initializer_list<std::initializer_list<double>> v) { return tensor(v, kFloat64, true); }
// A (rows, 1) column; an initializer list of one-element rows would be ambiguous.
Tensor column(std::initializer_list<double> v, Dtype dt = kFloat64, bool rg = true) {
  return tensor(v, dt).reshape({-1, 1}).detach().requires_grad_(rg);
}

const Dtype kBoth[] = {kFloat32, kFloat64};

}  // namespace

// ---- + - * / between tensors ------------------------------------------------------------------------

TEST_CASE("elementwise: add/sub/mul/div forward values for every broadcast pattern, both dtypes") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    Tensor a = tensor({{1, 2, 3}, {4, 5, 6}}, dt);
    Tensor b = tensor({{6, 5, 4}, {3, 2, 1}}, dt);
    Tensor one = tensor({10}, dt);     // shape (1,)
    Tensor row = tensor({10, 20, 30}, dt);
    Tensor col = column({1, 2}, dt, false);
    Tensor r13 = tensor({{1, 2, 3}}, dt);
    Tensor s = tensor(2.0, dt);        // 0-d
    // same shape: a+b = 7 everywhere; a-b = (1-6, 2-5, ...) ; a*b = (6, 10, 12, 12, 10, 6); a/b = a_i / b_i
    expect(a + b, {2, 3}, {7, 7, 7, 7, 7, 7});
    expect(a - b, {2, 3}, {-5, -3, -1, 1, 3, 5});
    expect(a * b, {2, 3}, {6, 10, 12, 12, 10, 6});
    expect(a / b, {2, 3}, {1.0 / 6, 2.0 / 5, 3.0 / 4, 4.0 / 3, 5.0 / 2, 6.0});
    // (1,) broadcasts to every element
    expect(a + one, {2, 3}, {11, 12, 13, 14, 15, 16});
    expect(one - a, {2, 3}, {9, 8, 7, 6, 5, 4});
    // row (3,) is added to each row; and on the left
    expect(a + row, {2, 3}, {11, 22, 33, 14, 25, 36});
    expect(row - a, {2, 3}, {9, 18, 27, 6, 15, 24});
    expect(a * row, {2, 3}, {10, 40, 90, 40, 100, 180});
    // column (2,1): row i is combined with col[i]
    expect(a - col, {2, 3}, {0, 1, 2, 2, 3, 4});
    expect(a / col, {2, 3}, {1, 2, 3, 2, 2.5, 3});
    // (2,1) op (1,3) gives the outer table (2,3)
    expect(col * r13, {2, 3}, {1, 2, 3, 2, 4, 6});
    expect(col + r13, {2, 3}, {2, 3, 4, 3, 4, 5});
    // 0-d with 2-D, both orders
    expect(a / s, {2, 3}, {0.5, 1, 1.5, 2, 2.5, 3});
    expect(s / a, {2, 3}, {2, 1, 2.0 / 3, 0.5, 0.4, 1.0 / 3});
    expect(s - a, {2, 3}, {1, 0, -1, -2, -3, -4});
    // 0-d with 0-d stays 0-d
    expect(s * s, {}, {4});
    CHECK((a + b).dtype() == dt);
  }
}

TEST_CASE("elementwise: broadcast gradients are summed back to each input's shape (by hand)") {
  Tensor a = f64({{1, 2, 3}, {4, 5, 6}});
  Tensor row = f64({10, 20, 30});
  (a * row).sum().backward();
  // d/drow_j = Σ_i a_ij = (1+4, 2+5, 3+6); d/da_ij = row_j
  expect(row.grad(), {3}, {5, 7, 9}, 0);
  expect(a.grad(), {2, 3}, {10, 20, 30, 10, 20, 30}, 0);

  Tensor b = f64({{1, 2, 3}, {4, 5, 6}});
  Tensor col = column({2, 3});
  (b * col).sum().backward();
  // d/dcol_i = Σ_j b_ij = (6, 15), kept as (2, 1)
  expect(col.grad(), {2, 1}, {6, 15}, 0);

  Tensor c = column({1, 2});
  Tensor r = f64({{1, 2, 3}});
  (c - r).sum().backward();
  // c is used 3 times per row, r twice per column (with a minus sign)
  expect(c.grad(), {2, 1}, {3, 3}, 0);
  expect(r.grad(), {1, 3}, {-2, -2, -2}, 0);

  Tensor m = f64({{1, 2, 3}, {4, 5, 6}});
  Tensor s = tensor(2.0, kFloat64, true);
  (m / s).sum().backward();
  // d(m/s)/ds = -m/s², summed: -21/4; the gradient of a 0-d input is 0-d
  expect(s.grad(), {}, {-21.0 / 4}, 1e-12);
}

TEST_CASE("elementwise: gradcheck/gradgradcheck of add/sub/mul/div for every broadcast pattern") {
  Tensor a23 = f64({{0.5, -1.2, 2.0}, {1.5, 0.7, -0.3}});
  Tensor b23 = f64({{1.1, 0.9, -2.0}, {0.6, -1.4, 2.5}});
  Tensor one = f64({1.7});
  Tensor row = f64({0.8, -1.5, 2.2});
  Tensor col = column({1.3, -0.6});
  Tensor r13 = f64({{0.9, -1.1, 1.6}});
  Tensor s = tensor(1.9, kFloat64, true);
  struct Pattern {
    const char* name;
    Tensor a, b;
  };
  const Pattern patterns[] = {
      {"same shape", a23, b23}, {"(2,3) with (1,)", a23, one}, {"(1,) with (2,3)", one, b23},
      {"(2,3) with row (3,)", a23, row}, {"row (3,) with (2,3)", row, b23},
      {"(2,3) with column (2,1)", a23, col}, {"(2,1) with (1,3)", col, r13},
      {"(2,3) with 0-d", a23, s}, {"0-d with (2,3)", s, b23},
  };
  const std::pair<const char*, Binary> ops[] = {
      {"add", [](const Tensor& x, const Tensor& y) { return add(x, y); }},
      {"sub", [](const Tensor& x, const Tensor& y) { return sub(x, y); }},
      {"mul", [](const Tensor& x, const Tensor& y) { return mul(x, y); }},
      {"div", [](const Tensor& x, const Tensor& y) { return div(x, y); }},
  };
  for (const auto& entry : ops) {
    // Named copies, not structured bindings: lambdas (CAPTURE's too) cannot capture those before clang 16.
    const char* op_name = entry.first;
    const Binary& op = entry.second;
    for (const Pattern& p : patterns) {
      CAPTURE(op_name);
      CAPTURE(p.name);
      check_grads([&](const In& in) { return op(in[0], in[1]); }, {p.a, p.b});
    }
  }
}

// ---- Tensor ⊕ scalar, scalar ⊕ Tensor ---------------------------------------------------------------

TEST_CASE("elementwise: tensor-scalar and scalar-tensor values, gradients by hand, both dtypes") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    Tensor x = tensor({1, 2, 4}, dt, true);
    expect(x + 2.0, {3}, {3, 4, 6});
    expect(2.0 + x, {3}, {3, 4, 6});
    expect(x - 2.0, {3}, {-1, 0, 2});
    expect(2.0 - x, {3}, {1, 0, -2});
    expect(x * 3.0, {3}, {3, 6, 12});
    expect(3.0 * x, {3}, {3, 6, 12});
    expect(x / 2.0, {3}, {0.5, 1, 2});
    expect(8.0 / x, {3}, {8, 4, 2});
    CHECK((x * 3).dtype() == dt);  // an int literal takes the tensor's dtype too
    CHECK((0.5f * x).dtype() == dt);

    auto grad_of = [&](const std::function<Tensor(const Tensor&)>& f) {
      x.zero_grad();
      f(x).sum().backward();
      return x.grad();
    };
    expect(grad_of([](const Tensor& t) { return t + 2.0; }), {3}, {1, 1, 1}, 0);
    expect(grad_of([](const Tensor& t) { return 2.0 + t; }), {3}, {1, 1, 1}, 0);
    expect(grad_of([](const Tensor& t) { return t - 2.0; }), {3}, {1, 1, 1}, 0);
    expect(grad_of([](const Tensor& t) { return 2.0 - t; }), {3}, {-1, -1, -1}, 0);
    expect(grad_of([](const Tensor& t) { return t * 3.0; }), {3}, {3, 3, 3}, 0);
    expect(grad_of([](const Tensor& t) { return 3.0 * t; }), {3}, {3, 3, 3}, 0);
    expect(grad_of([](const Tensor& t) { return t / 2.0; }), {3}, {0.5, 0.5, 0.5}, 0);
    // d(8/x)/dx = -8/x² = -8, -2, -0.5
    expect(grad_of([](const Tensor& t) { return 8.0 / t; }), {3}, {-8, -2, -0.5}, 0);
    // d(-x) = -1
    expect(grad_of([](const Tensor& t) { return -t; }), {3}, {-1, -1, -1}, 0);
  }
}

TEST_CASE("elementwise: gradcheck/gradgradcheck of tensor-scalar and scalar-tensor ops, and neg") {
  Tensor x = f64({{0.5, -1.2, 2.0}, {1.5, 0.7, -0.3}});
  check_grads([](const In& in) { return in[0] + 1.5; }, {x});
  check_grads([](const In& in) { return 1.5 + in[0]; }, {x});
  check_grads([](const In& in) { return in[0] - 1.5; }, {x});
  check_grads([](const In& in) { return 1.5 - in[0]; }, {x});
  check_grads([](const In& in) { return in[0] * -2.5; }, {x});
  check_grads([](const In& in) { return -2.5 * in[0]; }, {x});
  check_grads([](const In& in) { return in[0] / 0.7; }, {x});
  check_grads([](const In& in) { return 0.7 / in[0]; }, {x});
  check_grads([](const In& in) { return neg(in[0]); }, {x});
  check_grads([](const In& in) { return -in[0] * in[0]; }, {x});
  // 0-d inputs
  Tensor s = tensor(0.9, kFloat64, true);
  check_grads([](const In& in) { return 2.0 / in[0] - in[0] * 3.0; }, {s});
}

// ---- pow ----------------------------------------------------------------------------------------------

TEST_CASE("elementwise: pow forward values, both dtypes") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    Tensor x = tensor({2, 3}, dt);
    expect(pow(x, 2.0), {2}, {4, 9});
    expect(pow(x, 0.0), {2}, {1, 1});
    expect(pow(x, 1.0), {2}, {2, 3});
    Tensor q = tensor({4, 0.25}, dt);
    expect(pow(q, 0.5), {2}, {2, 0.5});    // √4, √(1/4)
    expect(q.pow(-1.5), {2}, {0.125, 8});  // 4^-1.5 = 1/(2³), (1/4)^-1.5 = 2³
    // tensor exponent: 2³, 3²
    expect(pow(x, tensor({3, 2}, dt)), {2}, {8, 9});
    expect(x.pow(tensor({3, 2}, dt)), {2}, {8, 9});
    // broadcast: column of bases (2,1) ^ row of exponents (3,) = table b_i^e_j
    expect(pow(column({2, 3}, dt, false), tensor({0, 1, 2}, dt)), {2, 3}, {1, 2, 4, 1, 3, 9});
    // scalar base: 2⁰, 2³, 2⁻¹
    expect(pow(2.0, tensor({0, 3, -1}, dt)), {3}, {1, 8, 0.5});
    CHECK(pow(2.0, tensor({1}, dt)).dtype() == dt);
  }
}

TEST_CASE("elementwise: pow gradients by hand, including PyTorch's masks at 0") {
  Tensor b = f64({2, 3});
  Tensor e = f64({3, 2});
  pow(b, e).sum().backward();
  // d/db = e·b^(e-1) = 3·2², 2·3¹; d/de = b^e·ln b = 8 ln 2, 9 ln 3
  expect(b.grad(), {2}, {12, 6}, 1e-12);
  expect(e.grad(), {2}, {8 * std::log(2.0), 9 * std::log(3.0)}, 1e-12);

  Tensor e2 = f64({0, 3, -1});
  pow(2.0, e2).sum().backward();
  // d 2^e/de = 2^e ln 2
  expect(e2.grad(), {3}, {std::log(2.0), 8 * std::log(2.0), 0.5 * std::log(2.0)}, 1e-12);

  // pow(x, 0) has zero gradient everywhere, also at x = 0 (where 0·x⁻¹ would be NaN)
  Tensor z = f64({0, 2});
  pow(z, 0.0).sum().backward();
  expect(z.grad(), {2}, {0, 0}, 0);

  // Tensor exponent at base 0: d/db is 0 where e == 0 (0·0⁻¹ masked) and e·0^(e-1) = 0 for e = 2;
  // d/de is masked to 0 where b == 0 and e >= 0, else bᵉ·ln b (1·ln 2 at b = 2, e = 0).
  Tensor b0 = f64({0, 0, 2});
  Tensor e0 = f64({0, 2, 0});
  Tensor y = pow(b0, e0);
  expect(y, {3}, {1, 0, 1}, 0);
  y.sum().backward();
  expect(b0.grad(), {3}, {0, 0, 0}, 0);
  expect(e0.grad(), {3}, {0, 0, std::log(2.0)}, 1e-12);

  // Scalar base 0: 0^e is flat for e >= 0 (gradient 0); for e < 0 it is inf·ln 0 = -inf, as in PyTorch.
  Tensor e3 = f64({0, 2, -1});
  pow(0.0, e3).sum().backward();
  expect(e3.grad(), {3}, {0, 0, -std::numeric_limits<double>::infinity()}, 0);

  // Broadcasting: the exponent (3,) gets the column sums, the base (2,1) the row sums.
  Tensor bc = column({2, 3});
  Tensor ec = f64({1, 2, 3});
  pow(bc, ec).sum().backward();
  // d/db_i = Σ_j e_j b_i^(e_j - 1) = 1 + 2b + 3b²: 1+4+12 = 17, 1+6+27 = 34
  expect(bc.grad(), {2, 1}, {17, 34}, 1e-12);
  // d/de_j = Σ_i b_i^e_j ln b_i
  auto de = [](double ej) { return std::pow(2.0, ej) * std::log(2.0) + std::pow(3.0, ej) * std::log(3.0); };
  expect(ec.grad(), {3}, {de(1), de(2), de(3)}, 1e-12);
}

TEST_CASE("elementwise: gradcheck/gradgradcheck of pow") {
  Tensor x = f64({{0.5, 1.2, 2.0}, {1.5, 0.7, 0.3}});  // positive: every exponent is defined
  for (double p : {0.0, 1.0, 2.0, 0.5, -1.5, 3.0}) {
    CAPTURE(p);
    check_grads([p](const In& in) { return pow(in[0], p); }, {x});
  }
  Tensor neg_base = f64({-1.5, 0.4, -0.7});  // integer exponents are fine on negative bases
  check_grads([](const In& in) { return pow(in[0], 2.0); }, {neg_base});
  check_grads([](const In& in) { return pow(in[0], 3.0); }, {neg_base});
  Tensor e23 = f64({{1.5, -0.5, 2.0}, {0.3, 1.1, -1.2}});
  check_grads([](const In& in) { return pow(in[0], in[1]); }, {x, e23});
  Tensor erow = f64({1.5, -0.5, 2.0});
  check_grads([](const In& in) { return pow(in[0], in[1]); }, {x, erow});
  Tensor bcol = column({0.8, 1.6});
  check_grads([](const In& in) { return pow(in[0], in[1]); }, {bcol, erow});
  Tensor s = tensor(1.3, kFloat64, true);
  check_grads([](const In& in) { return pow(in[0], in[1]); }, {s, e23});
  check_grads([](const In& in) { return pow(1.7, in[0]); }, {e23});
  check_grads([](const In& in) { return pow(0.4, in[0]); }, {e23});
}

// ---- Unary math -------------------------------------------------------------------------------------

TEST_CASE("elementwise: unary forward values by hand, both dtypes") {
  constexpr double e = std::numbers::e;
  constexpr double pi = std::numbers::pi;
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    expect(neg(tensor({1, -2, 0}, dt)), {3}, {-1, 2, 0}, 0);
    expect(exp(tensor({0, 1, -1}, dt)), {3}, {1, e, 1 / e});
    expect(log(tensor({1, e, 0.5}, dt)), {3}, {0, 1, -std::log(2.0)});
    expect(sqrt(tensor({4, 0.25, 9}, dt)), {3}, {2, 0.5, 3});
    expect(abs(tensor({-1.5, 0, 2}, dt)), {3}, {1.5, 0, 2}, 0);
    // tanh(x) = (e^{2x} - 1)/(e^{2x} + 1): tanh(0) = 0, tanh(ln 2) = (4-1)/(4+1) = 0.6
    expect(tanh(tensor({0, std::log(2.0)}, dt)), {2}, {0, 0.6});
    // σ(x) = 1/(1+e^{-x}): σ(0) = 1/2, σ(ln 3) = 1/(1 + 1/3) = 0.75
    expect(sigmoid(tensor({0, std::log(3.0)}, dt)), {2}, {0.5, 0.75});
    expect(relu(tensor({-1, 0, 2}, dt)), {3}, {0, 0, 2}, 0);
    expect(leaky_relu(tensor({-2, 0, 3}, dt), 0.1), {3}, {-0.2, 0, 3});
    CHECK(values(leaky_relu(tensor({-100}, dt)))[0] == doctest::Approx(-1.0));  // default slope 0.01
    // sin 0 = 0, sin π/2 = 1, sin π/6 = 1/2; cos 0 = 1, cos π/3 = 1/2, cos π = -1
    expect(sin(tensor({0, pi / 2, pi / 6}, dt)), {3}, {0, 1, 0.5});
    expect(cos(tensor({0, pi / 3, pi}, dt)), {3}, {1, 0.5, -1});
    expect(clamp(tensor({-1, 0.5, 2}, dt), 0, 1), {3}, {0, 0.5, 1}, 0);
    expect(maximum(tensor({1, 5, 3}, dt), tensor({4, 2, 3}, dt)), {3}, {4, 5, 3}, 0);
    expect(minimum(tensor({1, 5, 3}, dt), tensor({4, 2, 3}, dt)), {3}, {1, 2, 3}, 0);
    // maximum broadcasts: column (2,1) against row (3,)
    expect(maximum(column({1, 2}, dt, false), tensor({0, 1.5, 3}, dt)), {2, 3}, {1, 1.5, 3, 2, 2, 3}, 0);
    // methods
    Tensor t = tensor({0.25}, dt);
    expect(t.sqrt(), {1}, {0.5});
    expect(t.neg().abs(), {1}, {0.25}, 0);
    expect(t.clamp(0.5, 1.0), {1}, {0.5}, 0);
    CHECK(exp(tensor({1}, dt)).dtype() == dt);
  }
}

TEST_CASE("elementwise: gradcheck/gradgradcheck of unary ops away from kinks") {
  Tensor x = f64({{0.5, -1.2, 2.0}, {1.5, 0.7, -0.3}});
  Tensor pos = f64({{0.5, 1.2, 2.0}, {1.5, 0.7, 0.3}});
  check_grads([](const In& in) { return exp(in[0]); }, {x});
  check_grads([](const In& in) { return log(in[0]); }, {pos});
  check_grads([](const In& in) { return sqrt(in[0]); }, {pos});
  check_grads([](const In& in) { return abs(in[0]); }, {x});
  check_grads([](const In& in) { return tanh(in[0]); }, {x});
  check_grads([](const In& in) { return sigmoid(in[0]); }, {x});
  check_grads([](const In& in) { return relu(in[0]); }, {x});
  check_grads([](const In& in) { return leaky_relu(in[0], 0.2); }, {x});
  check_grads([](const In& in) { return sin(in[0]); }, {x});
  check_grads([](const In& in) { return cos(in[0]); }, {x});
  check_grads([](const In& in) { return clamp(in[0], -1.0, 1.0); }, {x});
  check_grads([](const In& in) { return in[0].exp().sin() * in[0].tanh(); }, {x});  // a composition
  Tensor y = f64({{0.9, -1.0, 1.0}, {2.5, 0.2, -0.9}});
  check_grads([](const In& in) { return maximum(in[0], in[1]); }, {x, y});
  check_grads([](const In& in) { return minimum(in[0], in[1]); }, {x, y});
  Tensor row = f64({0.1, 0.2, 0.3});
  check_grads([](const In& in) { return maximum(in[0], in[1]); }, {x, row});
  check_grads([](const In& in) { return minimum(in[0], in[1]); }, {row, x});
}

// ---- Kinks: PyTorch's subgradients --------------------------------------------------------------------

TEST_CASE("elementwise: subgradients at kinks match PyTorch") {
  auto grad_of = [](const std::function<Tensor(const Tensor&)>& f, std::initializer_list<double> v) {
    Tensor x = tensor(v, kFloat64, true);
    f(x).sum().backward();
    return x.grad();
  };
  // relu'(0) = 0
  expect(grad_of([](const Tensor& t) { return relu(t); }, {-1, 0, 2}), {3}, {0, 0, 1}, 0);
  // abs'(0) = 0 (sign(0))
  expect(grad_of([](const Tensor& t) { return abs(t); }, {-1, 0, 2}), {3}, {-1, 0, 1}, 0);
  // leaky_relu'(0) = slope
  expect(grad_of([](const Tensor& t) { return leaky_relu(t, 0.1); }, {-2, 0, 3}), {3}, {0.1, 0.1, 1}, 1e-12);
  // clamp passes the gradient at both bounds (inclusive), not outside
  expect(grad_of([](const Tensor& t) { return clamp(t, 0.0, 1.0); }, {-1, 0, 0.5, 1, 2}), {5}, {0, 1, 1, 1, 0}, 0);

  // maximum/minimum: the winner gets the gradient, a tie splits it 0.5/0.5
  Tensor a = f64({1, 2, 3});
  Tensor b = f64({3, 2, 1});
  maximum(a, b).sum().backward();
  expect(a.grad(), {3}, {0, 0.5, 1}, 0);
  expect(b.grad(), {3}, {1, 0.5, 0}, 0);
  a.zero_grad();
  b.zero_grad();
  minimum(a, b).sum().backward();
  expect(a.grad(), {3}, {1, 0.5, 0}, 0);
  expect(b.grad(), {3}, {0, 0.5, 1}, 0);
}

TEST_CASE("elementwise: sigmoid and tanh saturate exactly at ±1e4 with finite gradients, both dtypes") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    Tensor x = tensor({-1e4, 1e4}, dt, true);
    Tensor s = sigmoid(x);
    expect(s, {2}, {0, 1}, 0);
    s.sum().backward();
    // σ' = σ(1-σ) = 0 at both ends
    expect(x.grad(), {2}, {0, 0}, 0);
    x.zero_grad();
    Tensor t = tanh(x);
    expect(t, {2}, {-1, 1}, 0);
    t.sum().backward();
    // tanh' = 1 - tanh² = 0
    expect(x.grad(), {2}, {0, 0}, 0);
  }
}

TEST_CASE("elementwise: division by zero follows IEEE (inf, -inf, NaN), both dtypes") {
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    Tensor num = tensor({1, -1, 0}, dt);
    std::vector<double> q = values(num / zeros({3}, dt));
    CHECK(q[0] == inf);
    CHECK(q[1] == -inf);
    CHECK(std::isnan(q[2]));
    std::vector<double> qs = values(num / 0.0);
    CHECK(qs[0] == inf);
    CHECK(qs[1] == -inf);
    CHECK(std::isnan(qs[2]));
    std::vector<double> r = values(1.0 / tensor({0}, dt));
    CHECK(r[0] == inf);
    std::vector<double> l = values(log(tensor({0}, dt)));
    CHECK(l[0] == -inf);
  }
}

// ---- Comparisons and where ----------------------------------------------------------------------------

TEST_CASE("elementwise: comparisons give 0/1 in the input dtype and no gradient") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    Tensor a = tensor({1, 2, 3}, dt, true);
    Tensor b = tensor({3, 2, 1}, dt, true);
    // a vs b elementwise: (1,3) (2,2) (3,1); against the scalar 2 the answers happen to be the same
    const std::pair<std::function<Tensor()>, std::vector<double>> cases[] = {
        {[&] { return eq(a, b); }, {0, 1, 0}}, {[&] { return ne(a, b); }, {1, 0, 1}},
        {[&] { return lt(a, b); }, {1, 0, 0}}, {[&] { return le(a, b); }, {1, 1, 0}},
        {[&] { return gt(a, b); }, {0, 0, 1}}, {[&] { return ge(a, b); }, {0, 1, 1}},
        {[&] { return eq(a, 2.0); }, {0, 1, 0}}, {[&] { return ne(a, 2.0); }, {1, 0, 1}},
        {[&] { return lt(a, 2.0); }, {1, 0, 0}}, {[&] { return le(a, 2.0); }, {1, 1, 0}},
        {[&] { return gt(a, 2.0); }, {0, 0, 1}}, {[&] { return ge(a, 2.0); }, {0, 1, 1}},
    };
    for (const auto& [f, expected] : cases) {
      Tensor c = f();
      expect(c, {3}, expected, 0);
      CHECK(c.dtype() == dt);
      CHECK(c.grad_fn() == nullptr);
      CHECK_FALSE(c.requires_grad());
    }
    // broadcasting: (2,1) vs (3,)
    expect(lt(column({1, 2}, dt, false), tensor({0, 1.5, 3}, dt)), {2, 3}, {0, 1, 1, 0, 0, 1}, 0);
  }
}

TEST_CASE("elementwise: where picks values and routes gradients into a and b only") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    Tensor a = tensor({-1, 2, 0.5}, dt, true);
    Tensor b = tensor({10, 20, 30}, dt, true);
    Tensor cond = tensor({0, 1, 1}, dt, true);  // even a cond that requires grad gets none
    Tensor y = where(cond, a, b);
    expect(y, {3}, {10, 2, 0.5}, 0);
    y.sum().backward();
    expect(a.grad(), {3}, {0, 1, 1}, 0);
    expect(b.grad(), {3}, {1, 0, 0}, 0);
    CHECK_FALSE(cond.grad().defined());
    // a comparison as the condition, broadcasting b (1,)
    Tensor z = where(gt(a, 0.0), a, tensor({-5}, dt));
    expect(z, {3}, {-5, 2, 0.5}, 0);
  }
  Tensor cond = tensor({1, 0, 1}, kFloat64);
  Tensor a = f64({{0.5, -1.2, 2.0}, {1.5, 0.7, -0.3}});
  Tensor b = f64({0.9});
  check_grads([&](const In& in) { return where(cond, in[0], in[1]); }, {a, b});
  check_grads([&](const In& in) { return where(cond, in[0] * in[0], in[1] * in[0]); }, {a, b});
}

// ---- clamp_min, clamp_max, sign, rsub ------------------------------------------------------------

TEST_CASE("elementwise: clamp_min and clamp_max values, NaN, and gradients at and beyond the bound") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    const Tensor x = tensor({-inf, -2.0, -0.5, 0.0, 0.5, 3.0, inf}, dt);
    // clamp_min(x, -1) = max(x, -1): -inf and -2 become -1, the rest stay.
    expect(clamp_min(x, -1.0), {7}, {-1, -1, -0.5, 0, 0.5, 3, inf}, 0);
    // clamp_max(x, 0.5) = min(x, 0.5): 3 and inf become 0.5, the rest stay.
    expect(clamp_max(x, 0.5), {7}, {-inf, -2, -0.5, 0, 0.5, 0.5, 0.5}, 0);
    // The bound is rounded to the dtype like the values: clamp_max(0.3, 0.1) in float32 is float(0.1).
    CHECK(clamp_max(tensor({0.3}, dt), 0.1).item() == (dt == kFloat32 ? static_cast<double>(0.1f) : 0.1));
    // NaN propagates (PyTorch), it is not replaced by the bound.
    CHECK(std::isnan(clamp_min(tensor({nan}, dt), 0.0).item()));
    CHECK(std::isnan(clamp_max(tensor({nan}, dt), 0.0).item()));
    // Only one side is bounded: clamp_min never lowers a value, clamp_max never raises one.
    expect(clamp_min(tensor({1e30, -1e30}, dt), -1e30), {2}, {dt == kFloat32 ? double(1e30f) : 1e30,
                                                               dt == kFloat32 ? double(-1e30f) : -1e30}, 0);
  }
  // Gradient: 1 where lo <= x (the bound included, as in PyTorch), 0 below it; mirrored for clamp_max.
  Tensor x = f64({-2, -1, 0, 4});
  clamp_min(x, -1.0).sum().backward();
  expect(x.grad(), {4}, {0, 1, 1, 1}, 0);
  x.zero_grad();
  clamp_max(x, 0.0).sum().backward();
  expect(x.grad(), {4}, {1, 1, 1, 0}, 0);
  // Away from the bound, gradcheck and gradgradcheck (second derivative 0).
  Tensor y = f64({{-1.7, 0.3, 2.2}, {0.9, -0.4, 1.6}});
  check_grads([](const In& in) { return clamp_min(in[0], 0.1) * in[0]; }, {y});
  check_grads([](const In& in) { return clamp_max(in[0], 0.6) * in[0]; }, {y});
}

TEST_CASE("elementwise: sign values (-1, 0, 1), no gradient") {
  const double inf = std::numeric_limits<double>::infinity();
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    // The smallest subnormal of each dtype is still positive: sign 1, not 0.
    const double tiny = dt == kFloat32 ? static_cast<double>(std::numeric_limits<float>::denorm_min())
                                       : std::numeric_limits<double>::denorm_min();
    const Tensor s = sign(tensor({-inf, -3.5, -tiny, 0.0, -0.0, tiny, 0.25, inf}, dt));
    CHECK(s.dtype() == dt);
    expect(s, {8}, {-1, -1, -1, 0, 0, 1, 1, 1}, 0);
  }
  // sign is piecewise constant: its result never requires grad, even from an input that does.
  Tensor x = f64({-2, 0, 2});
  CHECK_FALSE(sign(x).requires_grad());
}

TEST_CASE("elementwise: rsub(a, s) = s - a, values and gradient -1") {
  for (Dtype dt : kBoth) {
    CAPTURE(dt);
    // 1 - [0.25, -2, 3] = [0.75, 3, -2] (exact in both dtypes)
    expect(rsub(tensor({0.25, -2.0, 3.0}, dt), 1.0), {3}, {0.75, 3, -2}, 0);
    // Not sub: s - a, not a - s (this would give [-0.75, -3, 2]).
    CHECK(rsub(tensor({5.0}, dt), 2.0).item() == -3.0);
    CHECK(rsub(tensor({5.0}, dt), 2.0).dtype() == dt);
  }
  // rsub of a 0-d tensor stays 0-d.
  CHECK(rsub(tensor(2.0), 0.5).shape() == Shape{});
  // d(s - a)/da = -1 everywhere.
  Tensor x = f64({0.5, -1.5, 4.0});
  rsub(x, 3.0).sum().backward();
  expect(x.grad(), {3}, {-1, -1, -1}, 0);
  check_grads([](const In& in) { return rsub(in[0], 0.75) * in[0]; }, {f64({{0.5, -1.2}, {2.0, 0.1}})});
}
