// Forward-mode AD (autograd/forward_ad.hpp): dual levels, make_dual / unpack_dual and their errors,
// hand-derived JVPs, custom Functions with and without jvp, forward over reverse (Hessian-vector
// products), reverse over forward, saved outputs' tangents, batched levels, and the no-level path.
// (Every op's rule is checked against finite differences and reverse mode by the op table's JVP
// columns, test_op_table.cpp.)
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <xgrad.hpp>

#include "autograd/detail/forward_ad.hpp"
#include "autograd/detail/op_support.hpp"  // fused_backward()
#include "autograd/forward_ad.hpp"

using namespace xgrad;
using autograd::AutogradContext;
using autograd::Function;
namespace fwd = autograd::forward_ad;

namespace {

std::vector<double> values_of(const Tensor& t) {
  Tensor d = t.detach().to(kFloat64);
  const auto& a = d.data<double>();
  return {a.data(), a.data() + a.size()};
}

void check_close(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  REQUIRE(t.defined());
  const std::vector<double> v = values_of(t);
  REQUIRE(v.size() == expected.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    CAPTURE(i);
    if (tol == 0)
      CHECK(v[i] == expected[i]);
    else
      CHECK(v[i] == doctest::Approx(expected[i]).epsilon(tol).scale(1.0));
  }
}

Tensor f64(std::initializer_list<double> v) { return tensor(v, kFloat64); }
// A float64 matrix from rows (no overload of its own: a brace list of lists is ambiguous).
Tensor m64(std::vector<std::vector<double>> rows) {
  Tensor t = zeros({rows.size(), rows.empty() ? 0 : rows[0].size()}, kFloat64);
  double* p = t.data<double>().data();
  for (const auto& r : rows)
    for (double v : r) *p++ = v;
  return t;
}

// y = x³ with a jvp: ẏ = 3x²·ẋ.
struct CubeWithJvp : Function<CubeWithJvp> {
  static const char* name() { return "CubeWithJvp"; }
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->saved()[0];
    return {g[0] * (x * x * 3.0)};
  }
  static std::vector<Tensor> jvp(AutogradContext* ctx, std::vector<Tensor> t) {
    Tensor x = ctx->saved()[0];
    return {t[0] * (x * x * 3.0)};
  }
};

// The same without a jvp: forward mode through it is an error naming it.
struct CubeWithoutJvp : Function<CubeWithoutJvp> {
  static const char* name() { return "CubeWithoutJvp"; }
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->saved()[0];
    return {g[0] * (x * x * 3.0)};
  }
};

// A jvp that returns a tangent of the wrong shape, and one that returns too many: errors naming it.
struct BadShapeJvp : Function<BadShapeJvp> {
  static const char* name() { return "BadShapeJvp"; }
  static Tensor forward(AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) { return {g[0] * 2.0}; }
  static std::vector<Tensor> jvp(AutogradContext*, std::vector<Tensor> t) { return {sum(t[0])}; }
};
struct TooManyJvp : Function<TooManyJvp> {
  static const char* name() { return "TooManyJvp"; }
  static Tensor forward(AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) { return {g[0] * 2.0}; }
  static std::vector<Tensor> jvp(AutogradContext*, std::vector<Tensor> t) { return {t[0] * 2.0, t[0]}; }
};

}  // namespace

// ---- make_dual / unpack_dual ------------------------------------------------------------------------

TEST_CASE("forward AD: make_dual carries the tangent and unpack_dual returns it with the primal") {
  const Tensor x = f64({1, 2, 3});
  const Tensor v = f64({0.5, -1, 2});
  fwd::DualLevel level;
  const Tensor d = fwd::make_dual(x, v);
  CHECK(d.shape() == x.shape());
  check_close(d, {1, 2, 3}, 0);
  const fwd::UnpackedDual u = fwd::unpack_dual(d);
  check_close(u.primal, {1, 2, 3}, 0);
  check_close(u.tangent, {0.5, -1, 2}, 0);
  // The primal of the unpacked pair carries no tangent; neither does a tensor that was never dual.
  CHECK_FALSE(fwd::unpack_dual(u.primal).tangent.defined());
  CHECK_FALSE(fwd::unpack_dual(x).tangent.defined());
  // An op on a tensor without tangent gives none.
  CHECK_FALSE(fwd::unpack_dual(x * 2.0).tangent.defined());
}

TEST_CASE("forward AD: make_dual errors, no level, shape, dtype, undefined, nested levels") {
  const Tensor x = f64({1, 2, 3});
  CHECK_THROWS_WITH_AS(fwd::make_dual(x, f64({1, 1, 1})), doctest::Contains("make_dual: no dual level is open"), Error);
  fwd::DualLevel level;
  CHECK_THROWS_WITH_AS(fwd::make_dual(x, f64({1, 1})), doctest::Contains("make_dual: the tangent's shape [2]"), Error);
  CHECK_THROWS_WITH_AS(fwd::make_dual(x, tensor({1, 1, 1}, kFloat32)), doctest::Contains("make_dual: the tangent is float32"),
                       Error);
  CHECK_THROWS_WITH_AS(fwd::make_dual(Tensor(), x), doctest::Contains("make_dual: the primal is an undefined"), Error);
  CHECK_THROWS_WITH_AS(fwd::make_dual(x, Tensor()), doctest::Contains("make_dual: the tangent is an undefined"), Error);
  CHECK_THROWS_WITH_AS(fwd::unpack_dual(Tensor()), doctest::Contains("unpack_dual"), Error);
  // One level at a time, as in PyTorch; the failed construction leaves the open level as it was.
  CHECK_THROWS_WITH_AS(fwd::DualLevel(), doctest::Contains("a dual level is already open"), Error);
  const Tensor d = fwd::make_dual(x, f64({1, 1, 1}));
  check_close(fwd::unpack_dual(d * 3.0).tangent, {3, 3, 3}, 0);
}

TEST_CASE("forward AD: tangents are dropped when their level closes") {
  const Tensor x = f64({1, 2});
  Tensor d, y;
  {
    fwd::DualLevel level;
    d = fwd::make_dual(x, f64({1, 1}));
    y = d * d;
    REQUIRE(fwd::unpack_dual(y).tangent.defined());
  }
  // Outside any level nothing has a tangent.
  CHECK_FALSE(fwd::unpack_dual(d).tangent.defined());
  CHECK_FALSE(fwd::unpack_dual(y).tangent.defined());
  // Nor in a later level: the old tangents do not reappear, and ops on them propagate none.
  fwd::DualLevel later;
  CHECK_FALSE(fwd::unpack_dual(d).tangent.defined());
  CHECK_FALSE(fwd::unpack_dual(y).tangent.defined());
  CHECK_FALSE(fwd::unpack_dual(sin(d)).tangent.defined());
  check_close(d, {1, 2}, 0);  // the values stay
}

TEST_CASE("forward AD: a level closed by an exception is closed") {
  try {
    fwd::DualLevel level;
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  CHECK_FALSE(detail::forward_ad_enabled());
  fwd::DualLevel again;  // would throw "already open" if the first one had leaked
  CHECK(detail::forward_ad_enabled());
}

// ---- Hand-derived JVPs ------------------------------------------------------------------------------

TEST_CASE("forward AD: hand-derived JVP values") {
  fwd::DualLevel level;
  SUBCASE("f(x) = sin(x)·x²") {
    // f'(x) = cos(x)·x² + 2x·sin(x); the jvp is f'(x)·v elementwise.
    const Tensor x = f64({0.5, 1.0}), v = f64({1, 2});
    const Tensor y = sin(fwd::make_dual(x, v)) * pow(fwd::make_dual(x, v), 2.0);
    auto fp = [](double a) { return std::cos(a) * a * a + 2 * a * std::sin(a); };
    check_close(fwd::unpack_dual(y).tangent, {fp(0.5) * 1, fp(1.0) * 2});
  }
  SUBCASE("matmul: d(AB) = ȦB + AḂ") {
    // A = [[1,2],[3,4]], B = [[5],[6]], Ȧ = [[1,0],[0,0]], Ḃ = [[0],[1]]:
    // ȦB = [[5],[0]], AḂ = [[2],[4]]  =>  [[7],[4]]
    const Tensor a = fwd::make_dual(m64({{1, 2}, {3, 4}}), m64({{1, 0}, {0, 0}}));
    const Tensor b = fwd::make_dual(m64({{5}, {6}}), m64({{0}, {1}}));
    check_close(fwd::unpack_dual(matmul(a, b)).tangent, {7, 4});
  }
  SUBCASE("softmax at equal logits") {
    // x = [0, 0]: y = [1/2, 1/2]; ẏ = y ⊙ (ẋ - <ẋ, y>) with ẋ = [1, 0]: <ẋ, y> = 1/2, ẏ = [1/4, -1/4].
    const Tensor y = softmax(fwd::make_dual(f64({0, 0}), f64({1, 0})), 0);
    check_close(fwd::unpack_dual(y).tangent, {0.25, -0.25});
  }
  SUBCASE("logsumexp") {
    // x = [0, ln 3]: softmax(x) = [1/4, 3/4]; the jvp is <softmax(x), ẋ>: ẋ = [4, 0] -> 1, ẋ = [0, 4] -> 3.
    const Tensor x = f64({0, std::log(3.0)});
    check_close(fwd::unpack_dual(logsumexp(fwd::make_dual(x, f64({4, 0})), 0, false)).tangent, {1});
    check_close(fwd::unpack_dual(logsumexp(fwd::make_dual(x, f64({0, 4})), 0, false)).tangent, {3});
  }
  SUBCASE("var, unbiased") {
    // x = [1, 2, 3]: mean 2, x - mean = [-1, 0, 1], N - 1 = 2; the jvp is 2<x - mean, ẋ>/2:
    // ẋ = [1, 0, 0] -> -1, ẋ = [1, 1, 1] -> 0.
    const Tensor x = f64({1, 2, 3});
    check_close(fwd::unpack_dual(var(fwd::make_dual(x, f64({1, 0, 0})), {0}, true, false)).tangent, {-1});
    check_close(fwd::unpack_dual(var(fwd::make_dual(x, f64({1, 1, 1})), {0}, true, false)).tangent, {0});
  }
  SUBCASE("max and min: ties split evenly over all elements, the first index along a dim") {
    // max([1, 3, 3]) with ẋ = [10, 2, 4]: the two tied maxima share the derivative, (2 + 4)/2 = 3.
    const Tensor x = f64({1, 3, 3}), v = f64({10, 2, 4});
    check_close(fwd::unpack_dual(max(fwd::make_dual(x, v))).tangent, {3});
    // max along dim 0 picks the first maximum (index 1): its tangent, 2.
    check_close(fwd::unpack_dual(max(fwd::make_dual(x, v), 0, false)).tangent, {2});
    // min along dim: index 0, tangent 10.
    check_close(fwd::unpack_dual(min(fwd::make_dual(x, v), 0, false)).tangent, {10});
  }
  SUBCASE("maximum and minimum: the winner's tangent, the mean on a tie (PyTorch's rule)") {
    // a = [1, 2, 5], b = [2, 2, 1], ȧ = [1, 1, 1], ḃ = [3, 3, 3]:
    // maximum: b wins, tie, a wins -> [3, (1+3)/2, 1]; minimum: a wins, tie, b wins -> [1, 2, 3].
    const Tensor a = f64({1, 2, 5}), b = f64({2, 2, 1});
    const Tensor ta = f64({1, 1, 1}), tb = f64({3, 3, 3});
    check_close(fwd::unpack_dual(maximum(fwd::make_dual(a, ta), fwd::make_dual(b, tb))).tangent, {3, 2, 1});
    check_close(fwd::unpack_dual(minimum(fwd::make_dual(a, ta), fwd::make_dual(b, tb))).tangent, {1, 2, 3});
  }
  SUBCASE("clamp: the tangent inside [lo, hi], bounds included, zero outside") {
    // clamp(x, -1, 1) at x = [-2, -1, 0.5, 1, 3]: inside for -1, 0.5, 1.
    const Tensor x = f64({-2, -1, 0.5, 1, 3});
    check_close(fwd::unpack_dual(clamp(fwd::make_dual(x, f64({1, 2, 3, 4, 5})), -1, 1)).tangent, {0, 2, 3, 4, 0});
  }
  SUBCASE("where, cat, index_select, to") {
    // where([1, 0], a, b) takes ȧ[0] and ḃ[1] = [1, 20]; cat of tangents [1, 2] and none -> [1, 2, 0];
    // index_select rows [2, 0, 0] of [5, 6, 7] -> [7, 5, 5]; to(float32) converts the tangent.
    const Tensor a = fwd::make_dual(f64({1, 2}), f64({1, 2})), b = fwd::make_dual(f64({3, 4}), f64({10, 20}));
    check_close(fwd::unpack_dual(where(f64({1, 0}), a, b)).tangent, {1, 20});
    check_close(fwd::unpack_dual(cat({a, f64({9})}, 0)).tangent, {1, 2, 0});
    const Tensor c = fwd::make_dual(f64({0, 0, 0}), f64({5, 6, 7}));
    check_close(fwd::unpack_dual(index_select(c, 0, f64({2, 0, 0}))).tangent, {7, 5, 5});
    const Tensor t32 = fwd::unpack_dual(a.to(kFloat32)).tangent;
    REQUIRE(t32.defined());
    CHECK(t32.dtype() == kFloat32);
    check_close(t32, {1, 2});
  }
  SUBCASE("cross_entropy, mean over the batch") {
    // logits [[0, 0]] with target 0: softmax [1/2, 1/2] - onehot = [-1/2, 1/2]; ẋ = [[2, 6]] -> -1 + 3 = 2.
    const Tensor x = fwd::make_dual(m64({{0, 0}}), m64({{2, 6}}));
    check_close(fwd::unpack_dual(nn::functional::cross_entropy(x, f64({0}))).tangent, {2});
  }
}

// ---- Custom Functions ---------------------------------------------------------------------------------

TEST_CASE("forward AD: a custom Function's jvp gives its outputs' tangents, and without one it is an error") {
  const Tensor x = f64({1, 2});
  fwd::DualLevel level;
  // d x³ = 3x²·ẋ: at x = [1, 2] with ẋ = [1, -1], [3, -12].
  const Tensor y = CubeWithJvp::apply(fwd::make_dual(x, f64({1, -1})));
  check_close(y, {1, 8});
  check_close(fwd::unpack_dual(y).tangent, {3, -12});
  CHECK_THROWS_WITH_AS(CubeWithoutJvp::apply(fwd::make_dual(x, f64({1, 1}))), doctest::Contains("CubeWithoutJvp"), Error);
  CHECK_THROWS_WITH_AS(CubeWithoutJvp::apply(fwd::make_dual(x, f64({1, 1}))), doctest::Contains("jvp"), Error);
  // Without a tangent on its inputs the Function runs as usual under the level.
  check_close(CubeWithoutJvp::apply(x), {1, 8});
}

TEST_CASE("forward AD: a custom Function's jvp of the wrong shape or count, and an op rule of the wrong shape, are errors") {
  const Tensor x = f64({1, 2});
  fwd::DualLevel level;
  const Tensor d = fwd::make_dual(x, f64({1, 1}));
  CHECK_THROWS_WITH_AS(BadShapeJvp::apply(d), doctest::Contains("BadShapeJvp: jvp returned a tangent of shape []"), Error);
  CHECK_THROWS_WITH_AS(TooManyJvp::apply(d), doctest::Contains("TooManyJvp: jvp returned 2 tangents for 1 outputs"), Error);
  // An op's rule is checked too (an internal error that names the op).
  Tensor out = d * 1.0;
  CHECK_THROWS_WITH_AS(detail::record_jvp("probe_op", out, {&d}, [](detail::Tangents t) { return sum(t[0]); }),
                       doctest::Contains("probe_op: internal error: its JVP rule gave a tangent of shape []"), Error);
}

TEST_CASE("forward AD: a custom Function's jvp under a batched level runs per entry") {
  const Tensor x = f64({1, 2});
  detail::BatchedDualLevel level(2);
  // Entries [1, 0] and [0, 1]: 3x² on the diagonal, [[3, 0], [0, 12]].
  const Tensor y = CubeWithJvp::apply(fwd::make_dual(x, m64({{1, 0}, {0, 1}})));
  check_close(fwd::unpack_dual(y).tangent, {3, 0, 0, 12});
}

// ---- Composition with reverse mode ---------------------------------------------------------------------

TEST_CASE("forward AD over reverse mode: a jvp of autograd::grad is a Hessian-vector product") {
  // f(x) = x0³ + x1³ + x0·x1: ∇f = [3x0² + x1, 3x1² + x0], H = [[6x0, 1], [1, 6x1]].
  // At x = [1, 2], v = [1, -1]: H = [[6, 1], [1, 12]], Hv = [6 - 1, 1 - 12] = [5, -11].
  const Tensor x = f64({1, 2}).requires_grad_();
  fwd::DualLevel level;
  const Tensor d = fwd::make_dual(x, f64({1, -1}));
  const Tensor cube = pow(d, 3.0);
  const Tensor y = sum(cube) + slice(d, 0, 0, 1).sum() * slice(d, 0, 1, 2).sum();
  const Tensor g = autograd::grad({y}, {x}, {}, true, true)[0];
  check_close(g, {3 + 2, 12 + 1});
  check_close(fwd::unpack_dual(g).tangent, {5, -11});
}

TEST_CASE("forward AD over reverse mode: saved outputs carry their tangents into the backward") {
  // exp, tanh and sigmoid save their output; their backward reads it, so the jvp of the gradient needs
  // the output's tangent. At x = [0.3, -0.7] with ẋ = [1, 2]:
  //   d/dx exp = e^x,           its jvp e^x·ẋ
  //   d/dx tanh = 1 - t²,       its jvp -2t(1 - t²)·ẋ
  //   d/dx sigmoid = s(1 - s),  its jvp s(1 - s)(1 - 2s)·ẋ
  const std::vector<double> xs{0.3, -0.7}, vs{1, 2};
  const Tensor x = f64({0.3, -0.7}).requires_grad_();
  fwd::DualLevel level;
  const Tensor d = fwd::make_dual(x, f64({1, 2}));
  std::vector<double> e, te, se;
  for (std::size_t i = 0; i < 2; ++i) {
    const double t = std::tanh(xs[i]), s = 1 / (1 + std::exp(-xs[i]));
    e.push_back(std::exp(xs[i]) * vs[i]);
    te.push_back(-2 * t * (1 - t * t) * vs[i]);
    se.push_back(s * (1 - s) * (1 - 2 * s) * vs[i]);
  }
  check_close(fwd::unpack_dual(autograd::grad({sum(exp(d))}, {x}, {}, true, true)[0]).tangent, e);
  check_close(fwd::unpack_dual(autograd::grad({sum(tanh(d))}, {x}, {}, true, true)[0]).tangent, te);
  check_close(fwd::unpack_dual(autograd::grad({sum(sigmoid(d))}, {x}, {}, true, true)[0]).tangent, se);
}

TEST_CASE("reverse mode over forward AD: the gradient of a tangent") {
  // f(x) = x²·sin(x), tangent along v = 1: j(x) = 2x·sin(x) + x²·cos(x);
  // dj/dx = 2 sin(x) + 4x cos(x) - x² sin(x).
  const double a = 0.8;
  const Tensor x = f64({a}).requires_grad_();
  Tensor j;
  {
    fwd::DualLevel level;
    const Tensor d = fwd::make_dual(x, f64({1}));
    j = fwd::unpack_dual(pow(d, 2.0) * sin(d)).tangent;
  }
  REQUIRE(j.defined());
  check_close(j, {2 * a * std::sin(a) + a * a * std::cos(a)});
  const Tensor g = autograd::grad({sum(j)}, {x})[0];
  check_close(g, {2 * std::sin(a) + 4 * a * std::cos(a) - a * a * std::sin(a)});
  // And with respect to the direction itself (the tangent is linear in it): dj/dv = f'(x).
  const Tensor v = f64({1}).requires_grad_();
  Tensor jv;
  {
    fwd::DualLevel level;
    const Tensor d = fwd::make_dual(x, v);
    jv = fwd::unpack_dual(pow(d, 2.0) * sin(d)).tangent;
  }
  check_close(autograd::grad({sum(jv)}, {v})[0], {2 * a * std::sin(a) + a * a * std::cos(a)});
}

TEST_CASE("forward AD: a dual tensor that requires grad still backpropagates") {
  // y = Σ x²: ∇y = 2x = [2, 4]; ẏ = 2<x, v> = 2(1·3 + 2·(-1)) = 2.
  const Tensor x = f64({1, 2}).requires_grad_();
  fwd::DualLevel level;
  const Tensor d = fwd::make_dual(x, f64({3, -1}));
  CHECK(d.requires_grad());
  const Tensor y = sum(d * d);
  check_close(fwd::unpack_dual(y).tangent, {2});
  y.backward();
  check_close(x.grad(), {2, 4});
  // unpack_dual's primal is differentiable with respect to the dual (and so to x).
  const Tensor p = fwd::unpack_dual(d).primal;
  CHECK(p.requires_grad());
  check_close(autograd::grad({sum(p * 3.0)}, {x})[0], {3, 3});
}

TEST_CASE("forward AD under NoGradGuard: tangents propagate, nothing is recorded") {
  // d sin(x) = cos(x)·ẋ at x = [0, π/3], ẋ = [1, 2]: [1, 1].
  const Tensor x = f64({0, std::numbers::pi / 3}).requires_grad_();
  fwd::DualLevel level;
  NoGradGuard no_grad;
  const Tensor y = sin(fwd::make_dual(x, f64({1, 2})));
  CHECK_FALSE(y.requires_grad());
  check_close(fwd::unpack_dual(y).tangent, {1, 1});
}

// ---- Batched levels and the no-level path ------------------------------------------------------------

TEST_CASE("forward AD: a batched level equals a loop of single jvps") {
  // g(W, x, b) = log_softmax(tanh(W·x + b)) summed over a max: several rule kinds (matmul, broadcast add,
  // unary, softmax, reduction with dim, transpose) in one graph.
  manual_seed(31);
  const Tensor w = randn({4, 3}, kFloat64), x = randn({3, 5}, kFloat64), b = randn({4, 1}, kFloat64);
  const auto g = [](const Tensor& W, const Tensor& X, const Tensor& B) {
    return max(log_softmax(tanh(matmul(W, X) + B), 0).t(), 1, false);
  };
  const std::int64_t n = 4;
  const Tensor vw = randn({n, 4, 3}, kFloat64), vx = randn({n, 3, 5}, kFloat64), vb = randn({n, 4, 1}, kFloat64);
  Tensor batched;
  {
    detail::BatchedDualLevel level(n);
    CHECK(detail::tangent_batch() == n);
    CHECK_THROWS_WITH_AS(fwd::make_dual(w, randn({4, 3}, kFloat64)), doctest::Contains("batch dimension"), Error);
    batched = fwd::unpack_dual(g(fwd::make_dual(w, vw), fwd::make_dual(x, vx), fwd::make_dual(b, vb))).tangent;
  }
  REQUIRE(batched.defined());
  REQUIRE(batched.shape() == Shape{4, 5});
  for (std::int64_t k = 0; k < n; ++k) {
    const auto entry = [k](const Tensor& t) { return squeeze(slice(t, 0, k, k + 1), 0); };
    fwd::DualLevel level;
    CHECK(detail::tangent_batch() == 0);
    const Tensor single =
        fwd::unpack_dual(g(fwd::make_dual(w, entry(vw)), fwd::make_dual(x, entry(vx)), fwd::make_dual(b, entry(vb)))).tangent;
    check_close(entry(batched), values_of(single), 1e-12);
  }
}

TEST_CASE("forward AD: without a level ops carry no tangent and backward keeps its fused path") {
  CHECK_FALSE(detail::forward_ad_enabled());
  const Tensor x = f64({1, 2}).requires_grad_();
  const Tensor y = exp(x);
  CHECK_FALSE(fwd::unpack_dual(y).tangent.defined());
  {
    NoGradGuard no_grad;
    CHECK(detail::fused_backward());  // no level: the fused kernels run as before
  }
  {
    fwd::DualLevel level;
    CHECK(detail::forward_ad_enabled());
    NoGradGuard no_grad;
    CHECK_FALSE(detail::fused_backward());  // a level: backward formulas in Tensor ops carry tangents
  }
  CHECK_FALSE(detail::forward_ad_enabled());
  // Gradients are what they were: d exp = exp.
  check_close(autograd::grad({sum(y)}, {x})[0], {std::exp(1.0), std::exp(2.0)});
}

TEST_CASE("forward AD: a graph that outlives its level keeps no tangent memory") {
  // exp saves its output for backward (with a box for the output's tangent, forward over reverse).
  // Once the level closes, that box must not keep the tangent's values alive while the graph lives.
  const Tensor x = f64({1, 2}).requires_grad_();
  Tensor y;
  std::weak_ptr<detail::Storage> tangent_storage;
  {
    fwd::DualLevel level;
    y = exp(fwd::make_dual(x, f64({1, 1})));
    const Tensor t = fwd::unpack_dual(y).tangent;
    REQUIRE(t.defined());
    tangent_storage = t.impl()->storage;
  }
  CHECK(tangent_storage.expired());
  // The graph still works: d exp = exp.
  check_close(autograd::grad({sum(y)}, {x})[0], {std::exp(1.0), std::exp(2.0)});
}

TEST_CASE("forward AD over reverse mode under a batched level equals the loop, through gathers and scatters") {
  // Hessian-vector products for a batch of 3 directions at once against one at a time, for scalar
  // functions whose backward passes scatter (place_at, index_add, slice_backward, scatter_rows) and
  // whose forward gathers (take_at, index_select, gather_rows): the batched rules of those ops.
  manual_seed(41);
  const Tensor idx = f64({2, 0, 2, 1});
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> functions{
      {"max along dim", [](const Tensor& x) { return sum(max(pow(x, 3.0), 1, false)); }},
      {"max of all", [](const Tensor& x) { return max(pow(x, 3.0)); }},
      {"index_select", [idx](const Tensor& x) { return sum(pow(index_select(x, 0, idx), 3.0)); }},
      {"slice", [](const Tensor& x) { return sum(pow(slice(x, 1, 1, 4, 2), 3.0)); }},
      {"embedding", [idx](const Tensor& x) { return sum(pow(embedding(idx, x), 3.0)); }},
      {"cat and stack", [](const Tensor& x) { return sum(pow(stack({x, cat({x, x}, 0).slice(0, 0, 3)}, 1), 3.0)); }},
  };
  const Tensor x0 = randn({3, 4}, kFloat64);
  const Tensor v = randn({3, 3, 4}, kFloat64);
  for (const auto& entry : functions) {
    // (no structured binding: the sanitizer build's clang 14 cannot capture one in INFO)
    const std::string& name = entry.first;
    const auto& f = entry.second;
    INFO(name);
    const Tensor x = x0.detach().clone().requires_grad_();
    Tensor batched;
    {
      detail::BatchedDualLevel level(3);
      const Tensor d = fwd::make_dual(x, v);
      const Tensor g = autograd::grad({f(d)}, {x}, {}, true, true)[0];
      batched = fwd::unpack_dual(g).tangent;
    }
    REQUIRE(batched.defined());
    REQUIRE(batched.shape() == Shape{3, 3, 4});
    for (std::int64_t b = 0; b < 3; ++b) {
      fwd::DualLevel level;
      const Tensor d = fwd::make_dual(x, squeeze(slice(v, 0, b, b + 1), 0));
      const Tensor single = fwd::unpack_dual(autograd::grad({f(d)}, {x}, {}, true, true)[0]).tangent;
      REQUIRE(single.defined());
      check_close(squeeze(slice(batched, 0, b, b + 1), 0), values_of(single), 1e-12);
    }
  }
}
