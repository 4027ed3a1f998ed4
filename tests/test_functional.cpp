// autograd::functional: vjp, jvp, jacobian, hessian, hvp, vhp. Checked against hand-derived values,
// central finite differences, each other (forward against reverse, vectorized against loops,
// Hessians against forward over reverse written out by hand), and for their errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;
using namespace xgrad::autograd::functional;
using doctest::Contains;
using Tensors = std::vector<Tensor>;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor d = t.to(kFloat64).detach();
  const auto& a = d.data<double>();
  return {a.data(), a.data() + a.size()};
}

void expect(const Tensor& t, const Shape& shape, const std::vector<double>& expected, double tol = 1e-12) {
  REQUIRE(t.defined());
  REQUIRE(t.shape() == shape);
  std::vector<double> v = values(t);
  REQUIRE(v.size() == expected.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    CAPTURE(i);
    CHECK(v[i] == doctest::Approx(expected[i]).epsilon(tol).scale(1.0));
  }
}

// |a - b| <= tol elementwise, same shape.
void expect_close(const Tensor& a, const Tensor& b, double tol) {
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.shape() == b.shape());
  std::vector<double> va = values(a), vb = values(b);
  for (std::size_t i = 0; i < va.size(); ++i) {
    CAPTURE(i);
    CHECK(std::isfinite(va[i]));
    CHECK(std::abs(va[i] - vb[i]) <= tol * (1.0 + std::abs(vb[i])));
  }
}

double dot(const Tensor& a, const Tensor& b) { return (a.detach() * b.detach()).sum().item(); }

Tensor f64(const Shape& s) { return randn(s, kFloat64); }

// Two inputs x [3], W [2, 3]; two outputs: [2, 3] and a scalar. Every op here has a JVP rule.
Tensors two_by_two(const Tensors& in) {
  const Tensor& x = in[0];
  const Tensor& W = in[1];
  Tensor h = tanh(matmul(W, x));                 // [2]
  Tensor out0 = unsqueeze(h, 1) * sin(x);        // [2, 1] * [3] -> [2, 3]
  Tensor out1 = sum(exp(W * 0.5) * x * x);       // scalar
  return {out0, out1};
}

// A scalar function of x [3] and W [2, 3] for Hessians.
Tensor scalar_fn(const Tensors& in) {
  const Tensor& x = in[0];
  const Tensor& W = in[1];
  return sum(tanh(matmul(W, x))) + sum(x * x * sin(x)) + sum(W * W * W) * 0.25;
}

// Central differences: the block [output i][input j] of shape out_i.shape ++ in_j.shape.
Tensor numeric_block(const std::function<Tensors(const Tensors&)>& fn, const Tensors& inputs, std::size_t i,
                     std::size_t j, double eps = 1e-6) {
  NoGradGuard no_grad;
  const std::size_t n = inputs[j].numel();
  Tensor eye_n = eye(n, kFloat64);
  const Shape in_shape = inputs[j].shape();
  std::vector<std::int64_t> in_dims(in_shape.begin(), in_shape.end());
  Tensors columns;
  Shape out_shape;
  for (std::size_t k = 0; k < n; ++k) {
    Tensor e = reshape(slice(eye_n, 0, static_cast<std::int64_t>(k), static_cast<std::int64_t>(k) + 1), in_dims);
    Tensors plus = inputs, minus = inputs;
    plus[j] = inputs[j].detach() + e * eps;
    minus[j] = inputs[j].detach() - e * eps;
    Tensor col = (fn(plus)[i] - fn(minus)[i]) / (2 * eps);
    out_shape = col.shape();
    columns.push_back(col);
  }
  Tensor stacked = stack(columns, 0);  // [n, out...]
  std::vector<int> perm;
  for (int d = 1; d <= static_cast<int>(out_shape.size()); ++d) perm.push_back(d);
  perm.push_back(0);
  std::vector<std::int64_t> dims(out_shape.begin(), out_shape.end());
  dims.insert(dims.end(), in_dims.begin(), in_dims.end());
  return reshape(permute(stacked, perm), dims);
}

const JacobianOptions kJacobianWays[] = {
    {.vectorize = false, .strategy = Strategy::ReverseMode},
    {.vectorize = true, .strategy = Strategy::ReverseMode},
    {.vectorize = false, .strategy = Strategy::ForwardMode},
    {.vectorize = true, .strategy = Strategy::ForwardMode},
};
const HessianOptions kHessianWays[] = {
    {.vectorize = false, .outer_jacobian_strategy = Strategy::ReverseMode},
    {.vectorize = true, .outer_jacobian_strategy = Strategy::ReverseMode},
    {.vectorize = false, .outer_jacobian_strategy = Strategy::ForwardMode},
    {.vectorize = true, .outer_jacobian_strategy = Strategy::ForwardMode},
};
std::string describe(bool vectorize, Strategy s) {
  return std::string(s == Strategy::ForwardMode ? "forward" : "reverse") + (vectorize ? " vectorized" : " loop");
}

// The elements of x [2] as scalars, by ops that every mode differentiates (mul, sum).
Tensor element(const Tensor& x, int k) { return sum(x * tensor({k == 0 ? 1.0 : 0.0, k == 1 ? 1.0 : 0.0}, kFloat64)); }

// g(x, y) with x [2], y a scalar:
//   out0 = [x0² y, x0 x1 y] (shape [2]),  out1 = y³ (shape [])
Tensors polynomial(const Tensors& in) {
  Tensor x0 = element(in[0], 0), x1 = element(in[0], 1);
  const Tensor& y = in[1];
  Tensor e0 = tensor({1.0, 0.0}, kFloat64), e1 = tensor({0.0, 1.0}, kFloat64);
  return {e0 * (x0 * x0 * y) + e1 * (x0 * x1 * y), y * y * y};
}

}  // namespace

TEST_CASE("functional: jacobian of a polynomial matches hand-derived values for every strategy") {
  // At x = (1, 2), y = 3:
  //   d out0 / dx = [[2 x0 y, 0], [x1 y, x0 y]] = [[6, 0], [6, 3]]
  //   d out0 / dy = [x0², x0 x1] = [1, 2]                (shape [2] ++ [] = [2])
  //   d out1 / dx = 0 (out1 = y³ does not use x)          (shape [] ++ [2] = [2])
  //   d out1 / dy = 3 y² = 27                             (shape [])
  Tensor x = tensor({1.0, 2.0}, kFloat64), y = tensor(3.0, kFloat64);
  for (const JacobianOptions& o : kJacobianWays) {
    CAPTURE(describe(o.vectorize, o.strategy));
    auto J = jacobian(polynomial, {x, y}, o);
    REQUIRE(J.size() == 2);
    REQUIRE(J[0].size() == 2);
    expect(J[0][0], {2, 2}, {6, 0, 6, 3});
    expect(J[0][1], {2}, {1, 2});
    expect(J[1][0], {2}, {0, 0});
    expect(J[1][1], {}, {27});
    CHECK_FALSE(J[0][0].requires_grad());
    // strict: out1 is independent of x (input 0).
    JacobianOptions strict = o;
    strict.strict = true;
    CHECK_THROWS_WITH_AS(jacobian(polynomial, {x, y}, strict),
                         Contains("Output 1 of the user-provided function is independent of input 0. This is not "
                                  "allowed in strict mode."),
                         Error);
  }
}

TEST_CASE("functional: hessian of a polynomial matches hand-derived values for every strategy") {
  // f(x, y) = x0² y + x1³ with x [2], y scalar. ∇_x f = (2 x0 y, 3 x1²), ∂f/∂y = x0².
  // At x = (1, 2), y = 3:
  //   H_xx = [[2y, 0], [0, 6 x1]] = [[6, 0], [0, 12]]
  //   H_xy = ∂(∇_x f)/∂y = (2 x0, 0) = [2, 0]   (shape [2] ++ [])
  //   H_yx = ∂(x0²)/∂x = (2 x0, 0) = [2, 0]     (shape [] ++ [2])
  //   H_yy = ∂(x0²)/∂y = 0                      (shape [])
  auto f = [](const Tensors& in) {
    Tensor x0 = element(in[0], 0), x1 = element(in[0], 1);
    return x0 * x0 * in[1] + x1 * x1 * x1;
  };
  Tensor x = tensor({1.0, 2.0}, kFloat64), y = tensor(3.0, kFloat64);
  for (const HessianOptions& o : kHessianWays) {
    CAPTURE(describe(o.vectorize, o.outer_jacobian_strategy));
    auto H = hessian(f, {x, y}, o);
    REQUIRE(H.size() == 2);
    expect(H[0][0], {2, 2}, {6, 0, 0, 12});
    expect(H[0][1], {2}, {2, 0});
    expect(H[1][0], {2}, {2, 0});
    expect(H[1][1], {}, {0});
  }
  // hvp and vhp with v = ((1, -1), 2): H_xx v_x + H_xy v_y = (6 + 4, -12) = (10, -12);
  // H_yx v_x + H_yy v_y = 2.
  Tensors v{tensor({1.0, -1.0}, kFloat64), tensor(2.0, kFloat64)};
  HvpResult hv = hvp(f, {x, y}, v);
  expect(hv.output, {}, {1 * 3 + 8});
  expect(hv.hvp[0], {2}, {10, -12});
  expect(hv.hvp[1], {}, {2});
  VhpResult vh = vhp(f, {x, y}, v);
  expect(vh.output, {}, {11});
  expect(vh.vhp[0], {2}, {10, -12});
  expect(vh.vhp[1], {}, {2});
}

TEST_CASE("functional: jacobian agrees with central finite differences for every strategy") {
  manual_seed(7);
  Tensors in{f64({3}), f64({2, 3})};
  for (const JacobianOptions& o : kJacobianWays) {
    CAPTURE(describe(o.vectorize, o.strategy));
    auto J = jacobian(two_by_two, in, o);
    REQUIRE(J.size() == 2);
    CHECK(J[0][0].shape() == Shape{2, 3, 3});
    CHECK(J[0][1].shape() == Shape{2, 3, 2, 3});
    CHECK(J[1][0].shape() == Shape{3});
    CHECK(J[1][1].shape() == Shape{2, 3});
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 2; ++j) {
        CAPTURE(i);
        CAPTURE(j);
        expect_close(J[i][j], numeric_block(two_by_two, in, i, j), 1e-6);
      }
  }
}

TEST_CASE("functional: hessian agrees with finite differences of the gradient, is symmetric, equals forward over reverse") {
  manual_seed(11);
  Tensors in{f64({3}), f64({2, 3})};
  auto gradient = [](const Tensors& x) {
    AutoGradMode enable(true);
    Tensors leaves{x[0].detach().requires_grad_(), x[1].detach().requires_grad_()};
    return autograd::grad({scalar_fn(leaves)}, leaves);
  };
  std::vector<std::vector<Tensor>> reference;
  for (const HessianOptions& o : kHessianWays) {
    CAPTURE(describe(o.vectorize, o.outer_jacobian_strategy));
    auto H = hessian(scalar_fn, in, o);
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 2; ++j) {
        CAPTURE(i);
        CAPTURE(j);
        expect_close(H[i][j], numeric_block(gradient, in, i, j), 1e-6);
        // Symmetry: H[j][i] is H[i][j] with the two index groups swapped.
        const std::size_t ri = in[i].shape().size(), rj = in[j].shape().size();
        std::vector<int> swap;
        for (std::size_t d = 0; d < rj; ++d) swap.push_back(static_cast<int>(ri + d));
        for (std::size_t d = 0; d < ri; ++d) swap.push_back(static_cast<int>(d));
        expect_close(permute(H[i][j], swap), H[j][i], 1e-12);
      }
    if (reference.empty()) reference = H;
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 2; ++j) expect_close(H[i][j], reference[i][j], 1e-12);
  }
  // Forward over reverse by hand: a tangent on x_j, the gradient's tangent is H[.][j]·v.
  Tensor v0 = f64({3}), v1 = f64({2, 3});
  Tensors hv_manual;
  {
    autograd::forward_ad::DualLevel level;
    Tensor x = autograd::forward_ad::make_dual(in[0].detach().requires_grad_(), v0);
    Tensor W = autograd::forward_ad::make_dual(in[1].detach().requires_grad_(), v1);
    Tensors g = autograd::grad({scalar_fn({x, W})}, {x, W}, {}, std::nullopt, /*create_graph=*/true);
    for (const Tensor& gi : g) hv_manual.push_back(autograd::forward_ad::unpack_dual(gi).tangent);
  }
  auto H = hessian(scalar_fn, in);
  // H[i][0]·v0 + H[i][1]·v1, contracting the input dims.
  for (std::size_t i = 0; i < 2; ++i) {
    const int ri = static_cast<int>(in[i].shape().size());
    Tensor a = sum(H[i][0] * v0, {ri});
    Tensor b = sum(H[i][1] * v1, {ri, ri + 1});
    expect_close(hv_manual[i], a + b, 1e-10);
  }
  HvpResult hv = hvp(scalar_fn, in, {v0, v1});
  VhpResult vh = vhp(scalar_fn, in, {v0, v1});
  for (std::size_t i = 0; i < 2; ++i) {
    expect_close(hv.hvp[i], hv_manual[i], 1e-10);
    expect_close(vh.vhp[i], hv_manual[i], 1e-10);
  }
}

TEST_CASE("functional: forward and reverse products satisfy the adjoint identity") {
  // ⟨u, J·v⟩ = ⟨Jᵀ·u, v⟩ for random u (one per output) and v (one per input).
  manual_seed(3);
  Tensors in{f64({3}), f64({2, 3})};
  Tensors v{f64({3}), f64({2, 3})};
  Tensors u{f64({2, 3}), f64({})};
  JvpResult jv = jvp(two_by_two, in, v);
  VjpResult vj = vjp(two_by_two, in, u);
  REQUIRE(jv.jvp.size() == 2);
  REQUIRE(vj.vjp.size() == 2);
  const double lhs = dot(u[0], jv.jvp[0]) + dot(u[1], jv.jvp[1]);
  const double rhs = dot(vj.vjp[0], v[0]) + dot(vj.vjp[1], v[1]);
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  // And both against the Jacobian.
  auto J = jacobian(two_by_two, in);
  Tensor jv0 = sum(J[0][0] * v[0], {2}) + sum(J[0][1] * v[1], {2, 3});
  expect_close(jv.jvp[0], jv0, 1e-12);
  Tensor vj1 = sum(J[0][1] * unsqueeze(unsqueeze(u[0], 2), 3), {0, 1}) + J[1][1] * u[1];
  expect_close(vj.vjp[1], vj1, 1e-12);
  // Outputs are fn's values, detached.
  expect_close(jv.outputs[0], two_by_two(in)[0], 0);
  CHECK_FALSE(jv.outputs[0].requires_grad());
  CHECK_FALSE(vj.vjp[0].requires_grad());
}

TEST_CASE("functional: vectorize gives the loop's values on a two-layer network for both strategies") {
  // W8's function at a small size: f(x) = tanh(W2 tanh(W1 x)).
  manual_seed(5);
  const std::size_t n = 12;
  Tensor W1 = f64({n, n}) / std::sqrt(double(n)), W2 = f64({n + 2, n}) / std::sqrt(double(n)), x0 = f64({n});
  auto f = [&](const Tensors& x) { return tanh(matmul(W2, tanh(matmul(W1, x[0])))); };
  auto g = [&](const Tensors& x) { return sum(tanh(matmul(W1, x[0]))); };
  Tensor loop = jacobian(f, {x0})[0][0];
  CHECK(loop.shape() == Shape{n + 2, n});
  for (const JacobianOptions& o : kJacobianWays) expect_close(jacobian(f, {x0}, o)[0][0], loop, 1e-13);
  Tensor hloop = hessian(g, {x0})[0][0];
  for (const HessianOptions& o : kHessianWays) expect_close(hessian(g, {x0}, o)[0][0], hloop, 1e-13);
  // Hand-derived: J = diag(1 - y²) W2 diag(1 - h²) W1 with h = tanh(W1 x), y = tanh(W2 h).
  Tensor h = tanh(matmul(W1, x0)), y = tanh(matmul(W2, h));
  Tensor J = matmul(unsqueeze(1.0 - y * y, 1) * W2, unsqueeze(1.0 - h * h, 1) * W1);
  expect_close(loop, J, 1e-12);
  // H of sum(tanh(W1 x)) = W1ᵀ diag(-2 h (1 - h²)) W1.
  Tensor H = matmul(t(W1), unsqueeze(-2.0 * h * (1.0 - h * h), 1) * W1);
  expect_close(hloop, H, 1e-12);
}

TEST_CASE("functional: create_graph makes a jacobian entry differentiable") {
  // f(x) = x³ elementwise: J = diag(3x²); sum(J) = 3 Σ x², whose gradient is 6x.
  auto f = [](const Tensors& in) { return in[0] * in[0] * in[0]; };
  for (const JacobianOptions& base : kJacobianWays) {
    CAPTURE(describe(base.vectorize, base.strategy));
    Tensor x = tensor({1.0, -2.0, 0.5}, kFloat64, true);
    JacobianOptions o = base;
    o.create_graph = true;
    Tensor J = jacobian(f, {x}, o)[0][0];
    REQUIRE(J.requires_grad());
    expect(J, {3, 3}, {3, 0, 0, 0, 12, 0, 0, 0, 0.75});
    Tensor g = autograd::grad({sum(J)}, {x})[0];
    expect(g, {3}, {6, -12, 3});
  }
  // vjp, jvp, hvp with create_graph: d/dx of ⟨v, f'(x) v⟩ with v = 1: f'(x) = 3x², so the product is
  // 3x² per element and its gradient 6x; for hvp of sum(x⁴)/4 (H = diag(3x²)) likewise.
  Tensor x = tensor({1.0, -2.0, 0.5}, kFloat64, true);
  Tensor one = ones({3}, kFloat64);
  FunctionalOptions cg{.create_graph = true};
  expect(autograd::grad({sum(vjp(f, {x}, {one}, cg).vjp[0])}, {x})[0], {3}, {6, -12, 3});
  expect(autograd::grad({sum(jvp(f, {x}, {one}, cg).jvp[0])}, {x})[0], {3}, {6, -12, 3});
  auto quartic = [](const Tensors& in) { return sum(in[0] * in[0] * in[0] * in[0]) * 0.25; };
  expect(autograd::grad({sum(hvp(quartic, {x}, {one}, cg).hvp[0])}, {x})[0], {3}, {6, -12, 3});
  expect(autograd::grad({sum(vhp(quartic, {x}, {one}, cg).vhp[0])}, {x})[0], {3}, {6, -12, 3});
  for (const HessianOptions& base : kHessianWays) {
    CAPTURE(describe(base.vectorize, base.outer_jacobian_strategy));
    HessianOptions o = base;
    o.create_graph = true;
    Tensor H = hessian(quartic, {x}, o)[0][0];
    REQUIRE(H.requires_grad());
    expect(autograd::grad({sum(H)}, {x})[0], {3}, {6, -12, 3});
  }
}

TEST_CASE("functional: the hessian of a function that itself calls jacobian") {
  // inner(x) = x³ elementwise, whose Jacobian is diag(3x²); fn(x) = sum of that Jacobian = 3 Σ x²,
  // whose Hessian is 6·I. The inner jacobian runs inside the outer transform (under its dual level
  // for the forward strategies).
  auto inner = [](const Tensors& in) { return in[0] * in[0] * in[0]; };
  for (const JacobianOptions& inner_way : kJacobianWays) {
    auto fn = [&](const Tensors& in) {
      JacobianOptions o = inner_way;
      o.create_graph = true;
      return sum(jacobian(inner, in, o)[0][0]);
    };
    for (const HessianOptions& o : kHessianWays) {
      CAPTURE(describe(inner_way.vectorize, inner_way.strategy));
      CAPTURE(describe(o.vectorize, o.outer_jacobian_strategy));
      Tensor x = tensor({1.0, -2.0}, kFloat64);
      auto H = hessian(fn, {x}, o);
      expect(H[0][0], {2, 2}, {6, 0, 0, 6});
    }
  }
  // A jacobian of a function calling jacobian: d/dx of the gradient of sum(x⁴)/4 = diag(3x²).
  auto gradient = [](const Tensors& in) {
    auto quartic = [](const Tensors& z) { return sum(z[0] * z[0] * z[0] * z[0]) * 0.25; };
    return jacobian(quartic, in, {.create_graph = true})[0][0];
  };
  for (const JacobianOptions& o : kJacobianWays) {
    CAPTURE(describe(o.vectorize, o.strategy));
    expect(jacobian(gradient, {tensor({1.0, 2.0}, kFloat64, true)}, o)[0][0], {2, 2}, {3, 0, 0, 12});
  }
}

TEST_CASE("functional: fn receives inputs that require grad and may call autograd::grad") {
  // The forward strategy passes inputs on with the caller's requires_grad; fn computes a gradient
  // (of sum(x³), 3x²) inside, so the Jacobian of that is diag(6x).
  auto gradient = [](const Tensors& in) {
    return autograd::grad({sum(in[0] * in[0] * in[0])}, {in[0]}, {}, std::nullopt, /*create_graph=*/true)[0];
  };
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  for (const JacobianOptions& o : kJacobianWays) {
    CAPTURE(describe(o.vectorize, o.strategy));
    expect(jacobian(gradient, {x}, o)[0][0], {2, 2}, {6, 0, 0, 12});
  }
  // jvp: forward over reverse gives H·v = diag(6x)·(1, 1).
  expect(jvp(gradient, {x}, {ones({2}, kFloat64)}).jvp[0], {2}, {6, 12});
}

TEST_CASE("functional: strict errors name the output and the input") {
  // out0 depends on x only, out1 on y only.
  auto f = [](const Tensors& in) { return Tensors{in[0] * 2.0, in[1] * in[1]}; };
  Tensor x = tensor({1.0, 2.0}, kFloat64), y = tensor({3.0}, kFloat64);
  for (const JacobianOptions& base : kJacobianWays) {
    CAPTURE(describe(base.vectorize, base.strategy));
    JacobianOptions o = base;
    o.strict = true;
    CHECK_THROWS_WITH_AS(jacobian(f, {x, y}, o),
                         Contains("autograd::functional::jacobian: Output 0 of the user-provided function is "
                                  "independent of input 1. This is not allowed in strict mode."),
                         Error);
    o.strict = false;
    auto J = jacobian(f, {x, y}, o);
    expect(J[0][1], {2, 1}, {0, 0});
    expect(J[1][0], {1, 2}, {0, 0});
    expect(J[0][0], {2, 2}, {2, 0, 0, 2});
  }
  CHECK_THROWS_WITH_AS(vjp(f, {x, y}, {ones({2}, kFloat64), Tensor()}, {.strict = true}),
                       Contains("Entry 1 in v is an undefined tensor"), Error);
  auto only_x = [](const Tensors& in) { return sum(in[0] * in[0]); };
  CHECK_THROWS_WITH_AS(vjp(only_x, {x, y}, {}, {.strict = true}),
                       Contains("The output of the user-provided function is independent of input 1. This is not "
                                "allowed in strict mode."),
                       Error);
  expect(vjp(only_x, {x, y}).vjp[1], {1}, {0});
  // An output that does not depend on any input.
  auto constant = [](const Tensors&) { return ones({2}, kFloat64); };
  CHECK_THROWS_WITH_AS(jacobian(constant, {x}, {.strict = true}),
                       Contains("Output 0 of the user-provided function does not require gradients"), Error);
  CHECK_THROWS_WITH_AS(jvp(constant, {x}, {ones({2}, kFloat64)}, {.strict = true}), Contains("Output 0"), Error);
  expect(jvp(constant, {x}, {ones({2}, kFloat64)}).jvp[0], {2}, {0, 0});
  // A linear function's Hessian in strict mode: its gradient does not depend on the input.
  auto linear = [](const Tensors& in) { return sum(in[0] * 3.0); };
  for (const HessianOptions& base : kHessianWays) {
    HessianOptions o = base;
    o.strict = true;
    CHECK_THROWS_WITH_AS(hessian(linear, {x}, o),
                         Contains("the jacobian of the user-provided function with respect to input 0 is independent "
                                  "of the input"),
                         Error);
    o.strict = false;
    expect(hessian(linear, {x}, o)[0][0], {2, 2}, {0, 0, 0, 0});
  }
  CHECK_THROWS_WITH_AS(hvp(linear, {x}, {ones({2}, kFloat64)}, {.strict = true}),
                       Contains("jacobian of the user-provided function with respect to input 0"), Error);
  expect(hvp(linear, {x}, {ones({2}, kFloat64)}).hvp[0], {2}, {0, 0});
}

TEST_CASE("functional: bad v, bad outputs and bad inputs are errors naming the function and shapes") {
  auto f = [](const Tensors& in) { return in[0] * in[0]; };
  Tensor x = tensor({1.0, 2.0}, kFloat64);
  CHECK_THROWS_WITH_AS(vjp(f, {x}, {ones({3}, kFloat64)}),
                       Contains("autograd::functional::vjp: Entry 0 in v has invalid size: should be [2] but got [3]"),
                       Error);
  CHECK_THROWS_WITH_AS(vjp(f, {x}, {ones({2}, kFloat64), ones({2}, kFloat64)}),
                       Contains("v is a list of invalid length: should be 1 (one per output) but got 2"), Error);
  CHECK_THROWS_WITH_AS(vjp(f, {x}), Contains("The vector v can only be empty"), Error);
  CHECK_THROWS_WITH_AS(jvp(f, {x}, {ones({2, 1}, kFloat64)}),
                       Contains("autograd::functional::jvp: Entry 0 in v has invalid size: should be [2] but got [2, 1]"),
                       Error);
  CHECK_THROWS_WITH_AS(jvp(f, {x}), Contains("The vector v can only be empty if the input"), Error);
  CHECK_THROWS_WITH_AS(jvp(f, {x}, {ones({2}, kFloat32)}), Contains("dtype float32 but should be float64"), Error);
  CHECK_THROWS_WITH_AS(hessian(f, {x}), Contains("should contain a single element (it has shape [2])"), Error);
  auto listed = [](const Tensors& in) { return Tensors{sum(in[0])}; };
  CHECK_THROWS_WITH_AS(hessian(listed, {x}), Contains("The function given to hessian should return a single Tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(hvp(listed, {x}, {x}), Contains("The function given to autograd::functional::hvp should"),
                       Error);
  CHECK_THROWS_WITH_AS(jacobian(f, {}), Contains("autograd::functional::jacobian: no inputs given"), Error);
  CHECK_THROWS_WITH_AS(jacobian(f, {Tensor()}), Contains("input 0 is an undefined tensor"), Error);
  auto undefined = [](const Tensors&) { return Tensor(); };
  CHECK_THROWS_WITH_AS(jacobian(undefined, {x}), Contains("output 0 of the user-provided function is an undefined"),
                       Error);
  // Single-element defaults: v = 1.
  Tensor s = tensor({2.0}, kFloat64);
  auto cube = [](const Tensors& in) { return in[0] * in[0] * in[0]; };
  expect(vjp(cube, {s}).vjp[0], {1}, {12});
  expect(jvp(cube, {s}).jvp[0], {1}, {12});
  expect(hvp([](const Tensors& in) { return sum(in[0] * in[0] * in[0]); }, {s}).hvp[0], {1}, {12});
  // The caller's tensors are left as they were.
  CHECK_FALSE(x.requires_grad());
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("functional: transforms work inside an open dual level and without grad mode") {
  // Nested in a forward-mode level, jacobian (either strategy) and jvp fall back to reverse mode.
  auto f = [](const Tensors& in) { return in[0] * in[0] * in[0]; };
  Tensor x = tensor({1.0, 2.0}, kFloat64);
  {
    autograd::forward_ad::DualLevel level;
    for (const JacobianOptions& o : kJacobianWays) expect(jacobian(f, {x}, o)[0][0], {2, 2}, {3, 0, 0, 12});
    expect(jvp(f, {x}, {ones({2}, kFloat64)}).jvp[0], {2}, {3, 12});
    expect(hvp([](const Tensors& in) { return sum(in[0] * in[0] * in[0]); }, {x}, {ones({2}, kFloat64)}).hvp[0], {2},
           {6, 12});
  }
  NoGradGuard no_grad;
  expect(jacobian(f, {x})[0][0], {2, 2}, {3, 0, 0, 12});
  expect(hessian([](const Tensors& in) { return sum(in[0] * in[0] * in[0]); }, {x},
                 {.vectorize = true, .outer_jacobian_strategy = Strategy::ForwardMode})[0][0],
         {2, 2}, {6, 0, 0, 12});
}

TEST_CASE("functional: autograd::grad without create_graph keeps the gradients' tangents") {
  // Forward over reverse without recording the backward: g = ∇ sum(x³) = 3x², and along v its tangent
  // is diag(6x)·v. x = (1, 2), v = (1, -1): (6, -12). The result itself is detached.
  autograd::forward_ad::DualLevel level;
  Tensor x = autograd::forward_ad::make_dual(tensor({1.0, 2.0}, kFloat64, true), tensor({1.0, -1.0}, kFloat64));
  Tensor g = autograd::grad({sum(x * x * x)}, {x})[0];
  CHECK_FALSE(g.requires_grad());
  expect(g, {2}, {3, 12});
  expect(autograd::forward_ad::unpack_dual(g).tangent, {2}, {6, -12});
}
