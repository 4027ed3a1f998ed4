// Engine semantics: accumulation, retain_graph, no_grad, detach, hooks, retain_grad, diamonds,
// multi-root backward, autograd::grad, create_graph (Hessian-vector products), printing.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <thread>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor d = t.to(kFloat64);
  const auto& a = d.data<double>();
  return {a.data(), a.data() + a.size()};
}

void expect(const Tensor& t, const Shape& shape, const std::vector<double>& expected, double tol = 0) {
  REQUIRE(t.defined());
  CHECK(t.shape() == shape);
  std::vector<double> v = values(t);
  REQUIRE(v.size() == expected.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    CAPTURE(i);
    if (tol == 0)
      CHECK(v[i] == expected[i]);
    else
      CHECK(v[i] == doctest::Approx(expected[i]).epsilon(tol).scale(1.0));
  }
}

}  // namespace

TEST_CASE("engine: gradients accumulate across backward calls until zero_grad") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  (x * 3.0).sum().backward();
  expect(x.grad(), {2}, {3, 3});
  Tensor first = x.grad();
  (x * x).sum().backward();
  expect(x.grad(), {2}, {3 + 2, 3 + 4});  // 3 + 2x
  // As in PyTorch, accumulation is in place: a handle taken from .grad earlier sees the sum.
  expect(first, {2}, {5, 7});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  (x * x).sum().backward();
  expect(x.grad(), {2}, {2, 4});
}

TEST_CASE("engine: retain_graph allows a second backward, without it the second one throws") {
  Tensor x = tensor({1.0, -2.0}, kFloat64, true);
  Tensor z = (x * x).sum();  // MulBackward saves x
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward();
  expect(x.grad(), {2}, {4, -8});  // 2x twice
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("backward through the graph a second time"), Error);
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("retain_graph=true"), Error);
  expect(x.grad(), {2}, {4, -8});  // untouched by the failed calls

  // A graph whose nodes save nothing can be run again, as in PyTorch.
  Tensor w = tensor({1.0}, kFloat64, true);
  Tensor s = (w + 1.0).sum();
  s.backward();
  s.backward();
  expect(w.grad(), {1}, {2});
}

TEST_CASE("engine: no_grad records nothing, is thread-local, and backward still works inside it") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  CHECK(is_grad_enabled());
  {
    NoGradGuard guard;
    CHECK_FALSE(is_grad_enabled());
    Tensor y = x * 2.0;
    CHECK(y.grad_fn() == nullptr);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    {
      AutoGradMode enable(true);  // nested scopes restore the mode they found
      CHECK(is_grad_enabled());
      CHECK((x * 2.0).grad_fn() != nullptr);
    }
    CHECK_FALSE(is_grad_enabled());

    // Another thread starts with grad mode on and records.
    bool other_enabled = false;
    bool other_recorded = false;
    std::thread t([&] {
      other_enabled = is_grad_enabled();
      other_recorded = (x * 2.0).grad_fn() != nullptr;
    });
    t.join();
    CHECK(other_enabled);
    CHECK(other_recorded);
  }
  CHECK(is_grad_enabled());

  // A guard in another thread does not switch this one off.
  std::thread t([&] {
    NoGradGuard guard;
    CHECK_FALSE(is_grad_enabled());
  });
  t.join();
  CHECK(is_grad_enabled());

  // backward under no_grad: the engine sets its own mode
  Tensor z = (x * x).sum();
  {
    NoGradGuard guard;
    z.backward();
  }
  expect(x.grad(), {2}, {2, 4});
}

TEST_CASE("engine: detach shares values and has no history") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor y = x * 3.0;
  Tensor d = y.detach();
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.grad_fn() == nullptr);
  expect(d, {2}, {3, 6});
  d.data<double>()(0) = 100.0;  // same storage
  CHECK(y.data<double>()(0) == 100.0);
  // No gradient flows through the detached factor: d(x * x.detach())/dx = x.detach() = (1, 2).
  (x * x.detach()).sum().backward();
  expect(x.grad(), {2}, {1, 2});
}

TEST_CASE("engine: requires_grad_ and is_leaf propagate like PyTorch") {
  Tensor a = tensor({1.0}, kFloat64);
  CHECK_FALSE(a.requires_grad());
  CHECK(a.is_leaf());
  Tensor b = a * 2.0;
  CHECK(b.is_leaf());  // an op result without history is a leaf
  CHECK_FALSE(b.requires_grad());
  a.requires_grad_();
  CHECK(a.requires_grad());
  Tensor c = a * 2.0 + b;  // one input requiring grad is enough
  CHECK(c.requires_grad());
  CHECK_FALSE(c.is_leaf());
  CHECK(c.grad_fn_name() == "AddBackward");
  a.requires_grad_(false);
  CHECK_FALSE(a.requires_grad());
  CHECK_FALSE((a * 2.0).requires_grad());
  CHECK(c.requires_grad());  // already recorded history stays
  c.requires_grad_(true);    // a no-op on a non-leaf
  CHECK(c.requires_grad());
}

TEST_CASE("engine: hooks on leaves and non-leaves observe, replace and can be removed") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  int leaf_calls = 0;
  std::size_t h = x.register_hook([&](const Tensor& g) {
    ++leaf_calls;
    return g * 10.0;  // replaces the gradient stored in .grad
  });
  (x * 2.0).sum().backward();
  CHECK(leaf_calls == 1);
  expect(x.grad(), {2}, {20, 20});
  x.remove_hook(h);
  x.zero_grad();
  (x * 2.0).sum().backward();
  CHECK(leaf_calls == 1);
  expect(x.grad(), {2}, {2, 2});

  // A non-leaf hook changes what flows further down.
  x.zero_grad();
  Tensor y = x * 3.0;
  Tensor seen;
  y.register_hook([&](const Tensor& g) {
    seen = g;
    return Tensor();  // undefined: keep the gradient as is
  });
  std::size_t h2 = y.register_hook([](const Tensor& g) { return g * 2.0; });
  (y * y).sum().backward(Tensor(), /*retain_graph=*/true);
  expect(seen, {2}, {6, 12});              // d(y²)/dy = 2y = 2·3x
  expect(x.grad(), {2}, {36, 72});         // 3 · (2 · 2y)
  y.remove_hook(h2);
  x.zero_grad();
  (y * y).sum().backward();
  expect(x.grad(), {2}, {18, 36});  // 3 · 2y
  CHECK_THROWS_WITH_AS(tensor({1.0}).register_hook([](const Tensor& g) { return g; }),
                       doctest::Contains("doesn't require gradient"), Error);
}

TEST_CASE("engine: retain_grad keeps .grad of a non-leaf, after the hooks") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor y = x * 3.0;
  Tensor plain = x * 5.0;
  y.retain_grad();
  CHECK(y.retains_grad());
  y.register_hook([](const Tensor& g) { return g * 2.0; });  // registered after retain_grad, still runs first
  (y * y + plain).sum().backward();
  // d/dy = 2y = (6, 12), doubled by the hook
  expect(y.grad(), {2}, {12, 24});
  expect(x.grad(), {2}, {3 * 12 + 5, 3 * 24 + 5});
  CHECK_FALSE(plain.grad().defined());  // a non-leaf without retain_grad keeps nothing
}

TEST_CASE("engine: a diamond graph sums the gradients of both paths") {
  Tensor x = tensor({0.5, -1.0}, kFloat64, true);
  Tensor a = x * 2.0;
  Tensor b = x * 3.0;
  (a + b).sum().backward();
  expect(x.grad(), {2}, {5, 5});

  // h = x² feeds two consumers: out = h·h + h, d/dx = (2h + 1)·2x
  Tensor x2 = tensor({0.5, -1.0}, kFloat64, true);
  Tensor h = x2 * x2;
  (h * h + h).sum().backward();
  auto d = [](double v) { return (2 * v * v + 1) * 2 * v; };
  expect(x2.grad(), {2}, {d(0.5), d(-1.0)}, 1e-15);
}

TEST_CASE("engine: multi-root autograd::backward and an explicit gradient") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64, true);
  Tensor y1 = (x * 2.0).sum();
  Tensor y2 = (x * x).sum();
  autograd::backward({y1, y2});
  expect(x.grad(), {3}, {2 + 2, 2 + 4, 2 + 6});

  x.zero_grad();
  Tensor v = x * 2.0;
  v.backward(tensor({1.0, 10.0, 100.0}, kFloat64));  // vector-Jacobian product: 2·g
  expect(x.grad(), {3}, {2, 20, 200});

  x.zero_grad();
  autograd::backward({x * 2.0, x * x}, {tensor({1.0, 1.0, 1.0}, kFloat64), tensor({0.5, 0.5, 0.5}, kFloat64)});
  expect(x.grad(), {3}, {2 + 1, 2 + 2, 2 + 3});  // 2 + 0.5·2x

  Tensor w = tensor({2.0}, kFloat64, true);
  autograd::backward({(w * 3.0).sum(), w});  // a one-element leaf can be a root too (its seed is 1)
  expect(w.grad(), {1}, {4});
}

TEST_CASE("engine: autograd::grad returns gradients without touching .grad, and allow_unused") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor w = tensor({3.0, 4.0}, kFloat64, true);
  Tensor unused = tensor({5.0}, kFloat64, true);
  Tensor y = (x * w).sum();
  std::vector<Tensor> g = autograd::grad({y}, {x, w}, {}, /*retain_graph=*/true);
  expect(g[0], {2}, {3, 4});
  expect(g[1], {2}, {1, 2});
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  CHECK_FALSE(g[0].requires_grad());  // no create_graph: plain values

  CHECK_THROWS_WITH_AS(autograd::grad({y}, {x, unused}, {}, true),
                       doctest::Contains("input 1 (shape [1]) appears not to have been used"), Error);
  std::vector<Tensor> g2 = autograd::grad({y}, {x, unused}, {}, true, false, /*allow_unused=*/true);
  expect(g2[0], {2}, {3, 4});
  CHECK_FALSE(g2[1].defined());

  // A non-leaf input: the gradient with respect to an intermediate.
  Tensor h = x * 2.0;
  Tensor z = (h * h).sum();
  std::vector<Tensor> gh = autograd::grad({z}, {h});
  expect(gh[0], {2}, {4, 8});  // 2h
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("engine: create_graph gives a Hessian-vector product equal to the analytic one") {
  // f(x0, x1) = x0²·x1 + sin(x1)·x0
  // ∇f = (2·x0·x1 + sin x1,  x0² + x0·cos x1)
  // H  = [[2·x1,            2·x0 + cos x1],
  //       [2·x0 + cos x1,   -x0·sin x1   ]]
  const double a = 1.5, b = 0.7, v0 = 0.3, v1 = -1.1;
  Tensor x0 = tensor(a, kFloat64, true);
  Tensor x1 = tensor(b, kFloat64, true);
  Tensor f = x0 * x0 * x1 + sin(x1) * x0;
  std::vector<Tensor> g = autograd::grad({f}, {x0, x1}, {}, std::nullopt, /*create_graph=*/true);
  REQUIRE(g[0].requires_grad());
  expect(g[0], {}, {2 * a * b + std::sin(b)}, 1e-14);
  expect(g[1], {}, {a * a + a * std::cos(b)}, 1e-14);
  // Hv = ∇(∇f · v)
  Tensor gv = g[0] * v0 + g[1] * v1;
  std::vector<Tensor> hv = autograd::grad({gv}, {x0, x1});
  const double h00 = 2 * b, h01 = 2 * a + std::cos(b), h11 = -a * std::sin(b);
  expect(hv[0], {}, {h00 * v0 + h01 * v1}, 1e-14);
  expect(hv[1], {}, {h01 * v0 + h11 * v1}, 1e-14);

  // The same through backward(create_graph): .grad has history and can be differentiated again.
  Tensor x = tensor({0.5, 2.0}, kFloat64, true);
  (x * x * x).sum().backward(Tensor(), false, /*create_graph=*/true);
  Tensor first = x.grad();  // 3x²
  REQUIRE(first.grad_fn() != nullptr);
  expect(first, {2}, {0.75, 12});
  std::vector<Tensor> second = autograd::grad({first.sum()}, {x});
  expect(second[0], {2}, {3, 12});  // 6x
  // and a third derivative: d³(x³) = 6
  x.zero_grad();
  Tensor d1 = autograd::grad({(x * x * x).sum()}, {x}, {}, std::nullopt, true)[0];
  Tensor d2 = autograd::grad({d1.sum()}, {x}, {}, std::nullopt, true)[0];
  Tensor d3 = autograd::grad({d2.sum()}, {x})[0];
  expect(d3, {2}, {6, 6});
}

TEST_CASE("engine: leaves' gradients never alias each other after a create_graph backward") {
  // AddBackward hands one tensor to both operands; under create_graph that tensor used to become both
  // .grad values, and the next (in-place) accumulation into x.grad changed w.grad too.
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor w = tensor({1.0, 2.0}, kFloat64, true);
  (x + w).sum().backward(Tensor(), false, /*create_graph=*/true);
  expect(x.grad(), {2}, {1, 1});
  expect(w.grad(), {2}, {1, 1});
  (x * 1.0).sum().backward();
  expect(x.grad(), {2}, {2, 2});
  expect(w.grad(), {2}, {1, 1});
}

TEST_CASE("engine: gradients through clone and to(dtype)") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor c = x.clone();
  CHECK_FALSE(c.is_same(x));
  CHECK(c.grad_fn_name() == "CloneBackward");
  c.data<double>()(0) = 7.0;  // a copy: the original is unchanged
  CHECK(x.data<double>()(0) == 1.0);
  (x.clone() * 2.0).sum().backward();
  expect(x.grad(), {2}, {2, 2});

  x.zero_grad();
  Tensor f = x.to(kFloat32);
  CHECK(f.dtype() == kFloat32);
  (f * f).sum().backward();
  CHECK(x.grad().dtype() == kFloat64);  // converted back to the input's dtype
  expect(x.grad(), {2}, {2, 4});
  CHECK(x.to(kFloat64).is_same(x));  // same dtype: the same tensor
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return in[0].clone() * in[0]; }, {x}));
  CHECK(gradgradcheck([](const std::vector<Tensor>& in) { return in[0].clone() * in[0]; }, {x}));
}

TEST_CASE("engine: operator<< prints values, shape, dtype and grad_fn") {
  Tensor x = tensor({{1.0, 2.0}, {3.0, 4.5}}, kFloat64, true);
  std::ostringstream leaf;
  leaf << x;
  CHECK(leaf.str().find("[[1, 2],") != std::string::npos);
  CHECK(leaf.str().find("[3, 4.5]]") != std::string::npos);
  CHECK(leaf.str().find("shape=[2, 2]") != std::string::npos);
  CHECK(leaf.str().find("float64") != std::string::npos);
  CHECK(leaf.str().find("requires_grad=true") != std::string::npos);
  std::ostringstream op;
  op << x * 2.0;
  CHECK(op.str().find("grad_fn=<MulBackward>") != std::string::npos);
  CHECK(op.str().find("[[2, 4],") != std::string::npos);
  std::ostringstream zero_d;
  zero_d << tensor(2.5);
  CHECK(zero_d.str().find("2.5") != std::string::npos);
  CHECK(zero_d.str().find("shape=[]") != std::string::npos);
  CHECK(zero_d.str().find("float32") != std::string::npos);
}

TEST_CASE("engine: a 100k-node chain back-propagates and is destroyed without recursion") {
  // The million-node version lives in tests/slow/test_deep_chain.cpp. 100k nested destructor or
  // visit frames would already exceed an 8 MB stack if either were recursive.
  Tensor x0 = ones({1}, kFloat64).requires_grad_();
  {
    Tensor x = x0;
    for (int i = 0; i < 100'000; ++i) x = x * 1.000001;
    x.backward();
    // d/dx0 = 1.000001^1e5 = e^(1e5·ln 1.000001) ≈ e^0.1 (float64 rounding: relative 1e5·2⁻⁵³, negligible)
    CHECK(x0.grad().item() == doctest::Approx(std::pow(1.000001, 100'000)).epsilon(1e-9));
  }
  Tensor y = x0;
  for (int i = 0; i < 100'000; ++i) y = y * x0;  // saved inputs hold the previous node
  y = Tensor();
  CHECK(x0.is_leaf());
}
