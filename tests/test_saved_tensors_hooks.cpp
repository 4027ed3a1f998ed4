// autograd::SavedTensorsHooks: every tensor an op saves goes through pack, and backward reads what
// unpack returns (built-in ops, fused backward kernels, custom Functions, create_graph, nesting).
#include <doctest/doctest.h>

#include <any>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <xgrad.hpp>

#include "autograd/saved_tensors_hooks.hpp"

using namespace xgrad;
using autograd::SavedTensorsHooks;

namespace {

bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  if (a.dtype() == kFloat64)
    return std::memcmp(a.data<double>().data(), b.data<double>().data(), a.numel() * sizeof(double)) == 0;
  return std::memcmp(a.data<float>().data(), b.data<float>().data(), a.numel() * sizeof(float)) == 0;
}

struct Counts {
  int packed = 0;
  int unpacked = 0;
  std::size_t bytes = 0;
};

// Pack to a copy of the values (so the op's own tensor is not what backward reads), count both ways.
SavedTensorsHooks copying_hooks(Counts& c) {
  return SavedTensorsHooks(
      [&c](const Tensor& t) -> std::any {
        ++c.packed;
        c.bytes += t.numel() * (t.dtype() == kFloat64 ? 8 : 4);
        return t.detach().clone();
      },
      [&c](const std::any& p) -> Tensor {
        ++c.unpacked;
        return std::any_cast<Tensor>(p);
      });
}

// A custom op that saves its input and its output: y = x^3, dy/dx = 3x^2 = 3 y / x.
struct CubeSavingBoth : autograd::Function<CubeSavingBoth> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    Tensor y = x * x * x;
    ctx->save_for_backward({x, y});
    return y;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    auto saved = ctx->saved();
    return {g[0] * 3.0 * saved[0] * saved[0]};
  }
};

}  // namespace

TEST_CASE("saved tensor hooks: pack once per saved tensor, unpack once when backward reads it") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64, true);
  Tensor w = tensor({0.5, -1.0, 2.0}, kFloat64, true);
  Counts c;
  Tensor loss;
  {
    auto hooks = copying_hooks(c);
    // mul saves both operands (x and w, 2 tensors of 3 doubles), exp saves its output (1 tensor),
    // sum saves nothing: 3 packs, 72 bytes.
    loss = exp(x * w).sum();
  }
  CHECK(c.packed == 3);
  CHECK(c.bytes == 72);
  CHECK(c.unpacked == 0);
  // Outside the guard: saving is plain again.
  Tensor plain = (x * w).sum();
  CHECK(c.packed == 3);
  loss.backward();
  CHECK(c.unpacked == 3);
  // d/dx sum(exp(x w)) = w exp(x w); d/dw = x exp(x w)
  const std::vector<double> xv{1, 2, 3}, wv{0.5, -1, 2};
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(x.grad().data<double>()(i) == doctest::Approx(wv[i] * std::exp(xv[i] * wv[i])).epsilon(1e-14));
    CHECK(w.grad().data<double>()(i) == doctest::Approx(xv[i] * std::exp(xv[i] * wv[i])).epsilon(1e-14));
  }
}

TEST_CASE("saved tensor hooks: backward reads the unpacked values, also in fused kernels") {
  // unpack returns 2 * (what was saved): relu's mask is unchanged, but mul's saved operands double, so
  // every gradient through mul doubles — proving the fused kernel reads unpack's result, not the
  // op's own tensor.
  for (Dtype d : {kFloat32, kFloat64}) {
    CAPTURE(d);
    Tensor a = tensor({1.0, -2.0, 3.0}, d, true);
    Tensor b = tensor({4.0, 5.0, -6.0}, d, true);
    Tensor y;
    {
      SavedTensorsHooks hooks([](const Tensor& t) -> std::any { return t.detach(); },
                              [](const std::any& p) -> Tensor { return std::any_cast<Tensor>(p) * 2.0; });
      y = (a * b).sum();
    }
    y.backward();
    // Plain: da = b, db = a. Doubled saved operands: da = 2b, db = 2a.
    CHECK(a.grad().to(kFloat64).data<double>()(0) == 8.0);
    CHECK(a.grad().to(kFloat64).data<double>()(2) == -12.0);
    CHECK(b.grad().to(kFloat64).data<double>()(1) == -4.0);
  }
}

TEST_CASE("saved tensor hooks: gradients through hooks are bit-identical to the plain run") {
  manual_seed(3);
  Tensor x = randn({8, 16}, kFloat32).requires_grad_();
  Tensor w1 = randn({16, 32}, kFloat32).requires_grad_();
  Tensor w2 = randn({32, 4}, kFloat32).requires_grad_();
  auto run = [&] { return (sigmoid(relu(matmul(x, w1)).matmul(w2)) * tanh(x.sum({1}, true))).sum(); };
  Tensor plain = run();
  auto g_plain = autograd::grad({plain}, {x, w1, w2});
  Counts c;
  Tensor hooked;
  {
    auto hooks = copying_hooks(c);
    hooked = run();
  }
  auto g_hooked = autograd::grad({hooked}, {x, w1, w2});
  CHECK(c.packed > 0);
  CHECK(c.unpacked == c.packed);
  for (std::size_t i = 0; i < 3; ++i) CHECK(bit_equal(g_plain[i], g_hooked[i]));
}

TEST_CASE("saved tensor hooks: nested guards, the innermost packs and its own unpack unpacks") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  std::vector<std::string> log;
  auto make = [&log](std::string tag) {
    return SavedTensorsHooks(
        [&log, tag](const Tensor& t) -> std::any {
          log.push_back("pack " + tag);
          return t;
        },
        [&log, tag](const std::any& p) -> Tensor {
          log.push_back("unpack " + tag);
          return std::any_cast<Tensor>(p);
        });
  };
  Tensor y;
  {
    auto outer = make("outer");
    Tensor a = x.exp();  // saves its output: outer
    {
      auto inner = make("inner");
      y = a.log();  // saves its input: inner
    }
    y = y.sum();  // saves nothing
  }
  CHECK(log == std::vector<std::string>{"pack outer", "pack inner"});
  y.backward();
  // log backward reads its input first (inner), then exp backward its output (outer).
  CHECK(log == std::vector<std::string>{"pack outer", "pack inner", "unpack inner", "unpack outer"});
  // d/dx log(exp(x)) = 1
  CHECK(x.grad().data<double>()(0) == doctest::Approx(1.0).epsilon(1e-15));
}

TEST_CASE("saved tensor hooks: an exception in pack propagates, and the guard stays usable") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  bool fail_next = true;
  Tensor ok;
  {
    SavedTensorsHooks hooks(
        [&](const Tensor& t) -> std::any {
          if (fail_next) {
            fail_next = false;
            throw std::runtime_error("pack hook refused a tensor of shape " + shape_str(t.shape()));
          }
          return t;
        },
        [](const std::any& p) -> Tensor { return std::any_cast<Tensor>(p); });
    CHECK_THROWS_WITH_AS(x.exp(), doctest::Contains("pack hook refused a tensor of shape [2]"), std::runtime_error);
    ok = x.exp().sum();  // the next save succeeds
  }
  ok.backward();
  CHECK(x.grad().data<double>()(1) == doctest::Approx(std::exp(2.0)).epsilon(1e-15));
}

TEST_CASE("saved tensor hooks: a wrong unpack result is an error naming the op") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64, true);
  Tensor y;
  {
    SavedTensorsHooks hooks([](const Tensor&) -> std::any { return 0; },
                            [](const std::any&) -> Tensor { return zeros({2}, kFloat64); });
    y = x.exp().sum();
  }
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("ExpBackward"), Error);
  Tensor z;
  {
    SavedTensorsHooks hooks([](const Tensor&) -> std::any { return 0; },
                            [](const std::any&) -> Tensor { return Tensor(); });
    z = x.exp().sum();
  }
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("undefined tensor"), Error);
  CHECK_THROWS_WITH_AS(SavedTensorsHooks(nullptr, [](const std::any&) { return Tensor(); }),
                       doctest::Contains("SavedTensorsHooks"), Error);
}

TEST_CASE("saved tensor hooks: create_graph and double backward go through the original history") {
  // y = sum(x^3) through a saved input (mul of x by x*x): dy/dx = 3x^2, d2y/dx2 = 6x.
  Tensor x = tensor({1.0, -2.0, 0.5}, kFloat64, true);
  Counts c;
  Tensor y;
  {
    auto hooks = copying_hooks(c);
    y = (x * x * x).sum();
  }
  auto g = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true);
  CHECK(g[0].data<double>()(1) == doctest::Approx(12.0).epsilon(1e-15));
  auto h = autograd::grad({g[0].sum()}, {x});
  CHECK(h[0].data<double>()(0) == doctest::Approx(6.0).epsilon(1e-15));
  CHECK(h[0].data<double>()(1) == doctest::Approx(-12.0).epsilon(1e-15));
  CHECK(h[0].data<double>()(2) == doctest::Approx(3.0).epsilon(1e-15));
  CHECK(c.unpacked == c.packed);  // each saved tensor unpacked once although read in two backwards
}

TEST_CASE("saved tensor hooks: custom Function save_for_backward goes through the hooks") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Counts c;
  Tensor y;
  {
    auto hooks = copying_hooks(c);
    y = CubeSavingBoth::apply(x).sum();
  }
  // Inside forward (grad mode off) the mul's save nothing; the Function saves x and y: 2 packs.
  CHECK(c.packed == 2);
  y.backward();
  CHECK(c.unpacked == 2);
  CHECK(x.grad().data<double>()(1) == doctest::Approx(12.0).epsilon(1e-15));
  // Double backward through a saved input of a custom Function: d/dx sum(3 x^2) = 6x.
  Tensor x2 = tensor({1.0, 2.0}, kFloat64, true);
  Tensor y2;
  {
    auto hooks = copying_hooks(c);
    y2 = CubeSavingBoth::apply(x2).sum();
  }
  auto g = autograd::grad({y2}, {x2}, {}, std::nullopt, true);
  auto h = autograd::grad({g[0].sum()}, {x2});
  CHECK(h[0].data<double>()(1) == doctest::Approx(12.0).epsilon(1e-15));
}

TEST_CASE("saved tensor hooks: after a plain backward the packed values are released") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  std::weak_ptr<int> alive;
  Tensor y;
  {
    SavedTensorsHooks hooks(
        [&](const Tensor& t) -> std::any {
          auto token = std::make_shared<int>(1);
          alive = token;
          return std::make_pair(token, t);
        },
        [](const std::any& p) -> Tensor { return std::any_cast<std::pair<std::shared_ptr<int>, Tensor>>(p).second; });
    y = x.exp().sum();
  }
  CHECK_FALSE(alive.expired());
  y.backward();
  CHECK(alive.expired());
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("second time"), Error);
}

TEST_CASE("saved tensor hooks: SuspendSavedTensorsHooks saves plainly") {
  int packs = 0;
  Tensor x = tensor({1.0}, kFloat64, true);
  SavedTensorsHooks hooks(
      [&](const Tensor& t) -> std::any {
        ++packs;
        return t;
      },
      [](const std::any& p) { return std::any_cast<Tensor>(p); });
  {
    autograd::SuspendSavedTensorsHooks off;
    Tensor y = x.exp();
  }
  CHECK(packs == 0);
  Tensor z = x.exp();
  CHECK(packs == 1);
}
