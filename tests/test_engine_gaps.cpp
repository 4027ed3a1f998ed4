// Issue 10 §4: leaf hooks under autograd::grad, mark_non_differentiable, to_dot's input shapes,
// RMSprop centered, and state_dict round trips of every scheduler.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;

// ---- Leaf hooks during autograd::grad ---------------------------------------------------------------

TEST_CASE("leaf hooks: autograd::grad returns the gradient as the leaf's hooks leave it") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64, true);
  Tensor w = tensor({1.0, 1.0, 1.0}, kFloat64, true);
  int x_calls = 0, w_calls = 0;
  Tensor seen;
  x.register_hook([&](const Tensor& g) {
    ++x_calls;
    seen = g.detach().clone();
    return g * 10.0;  // replaces the gradient
  });
  w.register_hook([&](const Tensor&) {
    ++w_calls;
    return Tensor();
  });
  // d/dx sum(x^2 w) = 2 x w = [2, 4, 6]; the hook returns 10 times that.
  auto g = autograd::grad({(x * x * w).sum()}, {x});
  CHECK(x_calls == 1);
  CHECK(w_calls == 0);  // w's gradient is not asked for: its hook does not run (as in PyTorch)
  CHECK(seen.data<double>()(2) == 6.0);
  CHECK(g[0].data<double>()(0) == 20.0);
  CHECK(g[0].data<double>()(2) == 60.0);
  CHECK_FALSE(x.grad().defined());  // grad touches no .grad
  // backward runs the same hooks once per leaf, accumulating the replaced gradient.
  (x * x * w).sum().backward();
  CHECK(x_calls == 2);
  CHECK(w_calls == 1);
  CHECK(x.grad().data<double>()(1) == 40.0);
  // A hook returning a wrong shape is an error under grad as well.
  Tensor y = tensor({1.0, 2.0}, kFloat64, true);
  y.register_hook([](const Tensor&) { return zeros({3}, kFloat64); });
  CHECK_THROWS_WITH_AS(autograd::grad({(y * y).sum()}, {y}), doctest::Contains("hook on a leaf tensor"), Error);
}

// ---- mark_non_differentiable --------------------------------------------------------------------------

namespace {
// Returns {2x, the indicator x > 0}; the indicator is not differentiable.
struct DoubleAndSign : autograd::Function<DoubleAndSign> {
  static std::vector<Tensor> forward(autograd::AutogradContext* ctx, const Tensor& x) {
    Tensor doubled = x * 2.0;
    Tensor positive = gt(x, zeros_like(x));
    ctx->mark_non_differentiable({positive});
    return {doubled, positive};
  }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) {
    // The non-differentiable output's gradient arrives as zeros of its shape.
    REQUIRE(g.size() == 2);
    REQUIRE(g[1].defined());
    CHECK(g[1].shape() == Shape{3});
    CHECK(g[1].abs().sum().item() == 0.0);
    return {g[0] * 2.0};
  }
};
struct MarksAStranger : autograd::Function<MarksAStranger> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->mark_non_differentiable({x});  // an input, not an output
    return x * 2.0;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) { return {g[0]}; }
};
}  // namespace

TEST_CASE("custom Function: mark_non_differentiable outputs need no grad and get zero gradients") {
  Tensor x = tensor({-1.0, 2.0, 3.0}, kFloat64, true);
  auto out = DoubleAndSign::apply(x);
  CHECK(out[0].requires_grad());
  CHECK_FALSE(out[1].requires_grad());
  CHECK(out[1].grad_fn() == nullptr);
  CHECK(out[1].data<double>()(0) == 0.0);
  CHECK(out[1].data<double>()(1) == 1.0);
  // d/dx sum(2x) = 2, times 2 in backward... backward returns 2 g: the gradient is 2.
  out[0].sum().backward();
  CHECK(x.grad().data<double>()(1) == 2.0);
  // Using the marked output in a loss is fine and contributes nothing.
  auto out2 = DoubleAndSign::apply(x);
  CHECK_FALSE((out2[1] * 3.0).requires_grad());
  CHECK_THROWS_WITH_AS(MarksAStranger::apply(x), doctest::Contains("not an output of forward"), Error);
}

// ---- to_dot -----------------------------------------------------------------------------------------

TEST_CASE("to_dot: every node shows its input shapes") {
  Tensor x = ones({2, 3}, kFloat64).requires_grad_();
  Tensor b = ones({3}, kFloat64).requires_grad_();
  Tensor c = ones({2, 3}, kFloat64);  // needs no grad: shown as "-"
  Tensor y = ((x * b).exp() + c).reshape({3, 2}).sum();
  const std::string dot = to_dot(y);
  CAPTURE(dot);
  // DOT writes the label's line break as \n.
  CHECK(dot.find("MulBackward\\n[2, 3], [3]") != std::string::npos);
  CHECK(dot.find("ExpBackward\\n[2, 3]") != std::string::npos);
  CHECK(dot.find("AddBackward\\n[2, 3], -") != std::string::npos);
  CHECK(dot.find("ReshapeBackward\\n[2, 3]") != std::string::npos);
  CHECK(dot.find("SumBackward\\n[3, 2]") != std::string::npos);
  // Leaves and the output keep their labels.
  CHECK(dot.find("AccumulateGrad\\n[3] float64") != std::string::npos);
}

// ---- RMSprop centered -----------------------------------------------------------------------------

namespace {
double at(const Tensor& t, std::size_t i) {
  return t.dtype() == kFloat64 ? t.data<double>().data()[i] : static_cast<double>(t.data<float>().data()[i]);
}
double tol(Dtype d) { return d == kFloat64 ? 1e-12 : 2e-6; }
}  // namespace

TEST_CASE("optim: RMSprop centered, with and without momentum, and its state") {
  CHECK_FALSE(optim::RMSpropOptions{}.centered);
  for (Dtype d : {kFloat64, kFloat32}) {
    CAPTURE(d);
    // lr = 0.01, alpha = 0.99, eps = 1e-8; p0 = [1, -1]; g1 = [0.1, 0.2]; g2 = [0.3, -0.1].
    // centered: m = lerp(m, g, 0.01) from m = 0; avg = sqrt(v - m^2) + eps.
    // step 1: v = 0.01 g1^2 = [1e-4, 4e-4]; m = 0.01 g1 = [1e-3, 2e-3]
    //         v - m^2 = [9.9e-5, 3.96e-4]; sqrt = [0.00994987437107, 0.01989974874214]
    //         p = p - 0.01 g1 / avg = [1 - 0.1005036805, -1 - 0.1005037310] = [0.899496319484, -1.100503731021]
    // step 2: v = 0.99 v + 0.01 g2^2 = [0.000999, 0.000496]; m = m + 0.01 (g2 - m) = [0.00399, 0.00098]
    //         v - m^2 = [0.0009830799, 0.0004950396]; sqrt = [0.0313541050, 0.0222494854]
    //         p = [0.899496319484 - 0.003/0.0313541150, -1.100503731021 + 0.001/0.0222494954]
    //           = [0.803815098677, -1.055558891482]
    Tensor p = tensor({1.0, -1.0}, d, true);
    optim::RMSprop rms({p}, {.centered = true});
    // momentum 0.9: buf1 = g1/avg1 = [10.0503680516, 10.0503731021] (p as above after step 1);
    //   buf2 = 0.9 buf1 + g2/avg2 = [9.04533124643 + 9.56812208, 9.04533579188 - 4.49447395]
    //        = [18.613453327173, 4.550851838009]; p2 = p1 - 0.01 buf2 = [0.713361786212, -1.146012249401]
    Tensor q = tensor({1.0, -1.0}, d, true);
    optim::RMSprop rms_mom({q}, {.momentum = 0.9, .centered = true});
    const std::vector<std::vector<double>> grads = {{0.1, 0.2}, {0.3, -0.1}};
    for (const auto& g : grads) {
      p.set_grad(tensor({g[0], g[1]}, d));
      q.set_grad(tensor({g[0], g[1]}, d));
      rms.step();
      rms_mom.step();
    }
    CHECK(at(p, 0) == doctest::Approx(0.8038150986766788).epsilon(tol(d)));
    CHECK(at(p, 1) == doctest::Approx(-1.0555588914821767).epsilon(tol(d)));
    CHECK(at(q, 0) == doctest::Approx(0.7133617862123494).epsilon(tol(d)));
    CHECK(at(q, 1) == doctest::Approx(-1.1460122494009832).epsilon(tol(d)));
    // The state carries grad_avg (PyTorch's name) and the flag; it round-trips.
    const auto sd = rms_mom.state_dict();
    bool has_grad_avg = false, has_flag = false;
    for (const auto& [name, t] : sd) {
      if (name == "state.0.grad_avg") {
        has_grad_avg = true;
        CHECK(at(t, 0) == doctest::Approx(0.00399).epsilon(tol(d)));
        CHECK(at(t, 1) == doctest::Approx(0.00098).epsilon(tol(d)));
      }
      if (name.find("centered") != std::string::npos) {
        has_flag = true;
        CHECK(t.item() == 1.0);
      }
    }
    CHECK(has_grad_avg);
    CHECK(has_flag);
    Tensor q2 = q.detach().clone().requires_grad_();
    optim::RMSprop restored({q2}, {});
    restored.load_state_dict(sd);
    CHECK(restored.options().centered);
    CHECK(restored.options().momentum == 0.9);
    q.set_grad(tensor({0.05, 0.05}, d));
    q2.set_grad(tensor({0.05, 0.05}, d));
    rms_mom.step();
    restored.step();
    CHECK(at(q, 0) == at(q2, 0));
    CHECK(at(q, 1) == at(q2, 1));
  }
}

// ---- Schedulers: state_dict round trips -------------------------------------------------------------

TEST_CASE("lr_scheduler: every scheduler resumes bitwise from its state_dict") {
  using Make = std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&)>;
  const std::vector<std::pair<const char*, Make>> kinds = {
      {"StepLR", [](optim::Optimizer& o) { return std::make_unique<optim::StepLR>(o, 2, 0.5); }},
      {"ExponentialLR", [](optim::Optimizer& o) { return std::make_unique<optim::ExponentialLR>(o, 0.9); }},
      {"CosineAnnealingLR", [](optim::Optimizer& o) { return std::make_unique<optim::CosineAnnealingLR>(o, 4, 0.001); }},
  };
  for (const auto& kind : kinds) {
    const char* name = kind.first;
    CAPTURE(name);
    Tensor w = zeros({1}).requires_grad_();
    optim::SGD a({w}, {.lr = 0.1}), b({w}, {.lr = 0.3});
    auto sa = kind.second(a);
    auto sb = kind.second(b);
    for (int i = 0; i < 3; ++i) sa->step();
    const auto sd = sa->state_dict();
    auto has = [&sd](const std::string& key) {
      for (const auto& entry : sd)
        if (entry.first == key) return true;
      return false;
    };
    CHECK(has("last_epoch"));
    CHECK(has("base_lr"));
    CHECK(has("last_lr"));
    sb->load_state_dict(sd);
    b.load_state_dict(a.state_dict());
    CHECK(sb->last_epoch() == 3);
    CHECK(sb->base_lr() == sa->base_lr());
    CHECK(sb->get_last_lr() == sa->get_last_lr());
    for (int i = 0; i < 6; ++i) {
      sa->step();
      sb->step();
      CHECK(a.lr() == b.lr());
      CHECK(sa->get_last_lr() == sb->get_last_lr());
    }
  }
}
