// autograd::checkpoint: nothing inside fn is kept, backward re-runs it (same random draws) and the
// gradients are bit-identical to the plain run; also through autograd::grad, create_graph, nesting,
// and the measured memory bound of issue 10 on a 32-block MLP.
#include <doctest/doctest.h>

#include <any>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <xgrad.hpp>

#include "autograd/checkpoint.hpp"
#include "autograd/forward_ad.hpp"
#include "autograd/saved_tensors_hooks.hpp"

using namespace xgrad;
using autograd::checkpoint;

namespace {

bool bit_equal(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  if (a.dtype() == kFloat64)
    return std::memcmp(a.data<double>().data(), b.data<double>().data(), a.numel() * sizeof(double)) == 0;
  return std::memcmp(a.data<float>().data(), b.data<float>().data(), a.numel() * sizeof(float)) == 0;
}

// Counts the tensors saved for backward while a forward runs, by storage (a tensor saved by two ops
// counts once), leaving out the given parameters: the bytes of saved activations.
class SavedBytesCounter {
 public:
  explicit SavedBytesCounter(const std::vector<Tensor>& parameters) {
    for (const Tensor& p : parameters) excluded_.insert(data_of(p));
  }
  autograd::SavedTensorsHooks hooks() {
    return autograd::SavedTensorsHooks(
        [this](const Tensor& t) -> std::any {
          ++packs_;
          const void* d = data_of(t);
          if (!excluded_.count(d)) seen_.emplace(d, t.numel() * (t.dtype() == kFloat64 ? 8 : 4));
          return t;
        },
        [](const std::any& p) -> Tensor { return std::any_cast<Tensor>(p); });
  }
  std::size_t bytes() const {
    std::size_t b = 0;
    for (const auto& [d, n] : seen_) b += n;
    return b;
  }
  int packs() const { return packs_; }

 private:
  static const void* data_of(const Tensor& t) {
    return t.dtype() == kFloat64 ? static_cast<const void*>(t.data<double>().data())
                                 : static_cast<const void*>(t.data<float>().data());
  }
  std::set<const void*> excluded_;
  std::map<const void*, std::size_t> seen_;
  int packs_ = 0;
};

}  // namespace

TEST_CASE("activation checkpoint: gradients bit-identical to the plain run, parameters closed over by fn") {
  manual_seed(11);
  Tensor x = randn({6, 5}, kFloat32).requires_grad_();
  Tensor w1 = randn({5, 7}, kFloat32).requires_grad_();
  Tensor w2 = randn({7, 3}, kFloat32).requires_grad_();
  auto fn = [&](const std::vector<Tensor>& in) { return tanh(relu(matmul(in[0], w1)).matmul(w2)).exp(); };
  Tensor plain = fn({x}).sum();
  auto g_plain = autograd::grad({plain}, {x, w1, w2});

  int packs = 0;
  Tensor y;
  {
    // An outer hook sees what the checkpoint keeps: its input only.
    autograd::SavedTensorsHooks count([&](const Tensor& t) -> std::any { ++packs; return t; },
                                      [](const std::any& p) { return std::any_cast<Tensor>(p); });
    y = checkpoint(fn, {x});
  }
  CHECK(packs == 1);
  CHECK(y.requires_grad());
  auto g_ckpt = autograd::grad({y.sum()}, {x, w1, w2});
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(bit_equal(g_plain[i], g_ckpt[i]));
  }
  // backward() accumulates into .grad as well.
  Tensor y2 = checkpoint(fn, {x});
  y2.sum().backward();
  CHECK(bit_equal(w1.grad(), g_plain[1]));
  CHECK(bit_equal(x.grad(), g_plain[0]));
}

TEST_CASE("activation checkpoint: dropout masks repeat, and the generator is left as the plain run leaves it") {
  Tensor x = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}, kFloat64, true);
  auto fn = [](const std::vector<Tensor>& in) { return nn::functional::dropout(in[0] * in[0], 0.5, true); };
  manual_seed(42);
  Tensor plain = fn({x});
  plain.sum().backward();
  const Tensor g_plain = x.grad().clone();
  const Tensor next_plain = rand({4}, kFloat64);
  x.zero_grad();

  manual_seed(42);
  Tensor y = checkpoint(fn, {x});
  CHECK(bit_equal(y, plain));
  const Tensor next_ckpt = rand({4}, kFloat64);  // forward drew what the plain forward drew
  CHECK(bit_equal(next_ckpt, next_plain));
  y.sum().backward();  // the re-run draws the same mask and leaves the generator where it was
  CHECK(bit_equal(x.grad(), g_plain));
  // Some elements were dropped (p = 0.5 on 8 elements), so matching masks are not a triviality.
  int dropped = 0;
  for (std::size_t i = 0; i < 8; ++i) dropped += plain.data<double>()(i) == 0.0;
  CHECK(dropped > 0);
  CHECK(dropped < 8);
  const Tensor after = rand({1}, kFloat64);
  manual_seed(42);
  (void)rand({8}, kFloat64);  // dropout's 8 draws ...
  (void)rand({4}, kFloat64);  // ... and ours
  CHECK(bit_equal(after, rand({1}, kFloat64)));
}

TEST_CASE("activation checkpoint: create_graph and double backward through a checkpoint") {
  manual_seed(5);
  Tensor x = randn({4, 3}, kFloat64).requires_grad_();
  Tensor w = randn({3, 3}, kFloat64).requires_grad_();
  auto fn = [&](const std::vector<Tensor>& in) { return sigmoid(matmul(in[0], w)) * in[0]; };
  auto second = [&](const Tensor& y) {
    auto g = autograd::grad({y.sum()}, {x, w}, {}, std::nullopt, /*create_graph=*/true);
    return autograd::grad({(g[0] * g[0]).sum() + g[1].sum()}, {x, w});
  };
  auto plain = second(fn({x}));
  auto ckpt = second(checkpoint(fn, {x}));
  CHECK(bit_equal(plain[0], ckpt[0]));
  CHECK(bit_equal(plain[1], ckpt[1]));
  // And against finite differences: gradgradcheck of the checkpointed function.
  CHECK(gradgradcheck([&](const std::vector<Tensor>& in) { return checkpoint(fn, in); }, {x}));
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return checkpoint(fn, in); }, {x}));
}

TEST_CASE("activation checkpoint: several outputs, nested checkpoints, an input that needs no grad") {
  manual_seed(8);
  Tensor a = randn({3, 4}, kFloat64).requires_grad_();
  Tensor c = randn({3, 4}, kFloat64);  // a constant input
  auto inner = [](const std::vector<Tensor>& in) { return exp(in[0]) * in[1]; };
  auto outer = [&](const std::vector<Tensor>& in) -> std::vector<Tensor> {
    Tensor h = checkpoint(inner, {in[0], in[1]});
    return {h.tanh(), (h * in[0]).sum({1})};
  };
  auto loss_of = [](const std::vector<Tensor>& outs) { return outs[0].sum() + (outs[1] * outs[1]).sum(); };
  Tensor plain = loss_of(outer({a, c}));
  auto g_plain = autograd::grad({plain}, {a});
  std::vector<Tensor> outs = checkpoint(outer, {a, c});
  REQUIRE(outs.size() == 2);
  CHECK(outs[1].shape() == Shape{3});
  auto g_ckpt = autograd::grad({loss_of(outs)}, {a});
  CHECK(bit_equal(g_plain[0], g_ckpt[0]));
}

TEST_CASE("activation checkpoint: with grad mode off it just runs fn, and errors are clear") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  {
    NoGradGuard no_grad;
    Tensor y = checkpoint([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {x});
    CHECK_FALSE(y.requires_grad());
    CHECK(y.data<double>()(1) == 4.0);
  }
  // fn that runs different ops the second time: backward names the mismatch.
  int calls = 0;
  auto unstable = [&calls](const std::vector<Tensor>& in) {
    ++calls;
    return calls == 1 ? in[0].exp().exp() : in[0] * 3.0;
  };
  Tensor y = checkpoint(unstable, {x});
  CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains("checkpoint: re-running fn saved"), Error);
}

TEST_CASE("activation checkpoint: a 32-block MLP checkpointed every 4 blocks keeps <= 30% of the saved activations") {
  // Issue 10's measured bound: width 1024, batch 256, float32, 32 blocks of Linear + ReLU. Saved
  // activations are counted through saved-tensor hooks (bytes of distinct storages saved for backward
  // and alive at the end of forward, the parameters left out); gradients are compared bitwise.
  const std::size_t width = 1024, batch = 256, blocks = 32, per_segment = 4;
  manual_seed(2024);
  std::vector<std::shared_ptr<nn::Linear>> layers;
  std::vector<Tensor> params;
  for (std::size_t i = 0; i < blocks; ++i) {
    layers.push_back(std::make_shared<nn::Linear>(width, width));
    params.push_back(layers.back()->weight);
    params.push_back(layers.back()->bias);
  }
  Tensor x = randn({batch, width}, kFloat32).requires_grad_();
  auto run_blocks = [&layers](std::size_t from, std::size_t to, Tensor h) {
    for (std::size_t i = from; i < to; ++i) h = layers[i]->forward(h).relu();
    return h;
  };
  auto loss_of = [](const Tensor& out) { return (out * out).mean(); };
  std::vector<Tensor> wrt = params;
  wrt.push_back(x);

  const auto t0 = std::chrono::steady_clock::now();
  SavedBytesCounter plain_count(params);
  Tensor plain_loss;
  {
    auto hooks = plain_count.hooks();
    plain_loss = loss_of(run_blocks(0, blocks, x));
  }
  const auto g_plain = autograd::grad({plain_loss}, wrt);
  const auto t1 = std::chrono::steady_clock::now();

  SavedBytesCounter ckpt_count(params);
  Tensor ckpt_loss;
  {
    auto hooks = ckpt_count.hooks();
    Tensor h = x;
    for (std::size_t s = 0; s < blocks; s += per_segment)
      h = checkpoint([&run_blocks, s](const std::vector<Tensor>& in) {  // per_segment: a constant, not captured
            return run_blocks(s, s + per_segment, in[0]);
          }, {h});
    ckpt_loss = loss_of(h);
  }
  const auto g_ckpt = autograd::grad({ckpt_loss}, wrt);
  const auto t2 = std::chrono::steady_clock::now();

  const double ratio = static_cast<double>(ckpt_count.bytes()) / static_cast<double>(plain_count.bytes());
  std::printf("checkpoint MLP 32x1024, batch 256: saved activations %zu bytes plain, %zu checkpointed (%.1f %%); "
              "plain %.2f s, checkpointed %.2f s\n",
              plain_count.bytes(), ckpt_count.bytes(), 100.0 * ratio,
              std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count());
  // Plain: the input and each block's ReLU output, 33 MiB at least; checkpointed: the 8 segment inputs
  // and the loss's saved output, 9 MiB.
  CHECK(plain_count.bytes() >= 33 * batch * width * 4);
  CHECK(ratio <= 0.30);
  CHECK(bit_equal(plain_loss, ckpt_loss));
  REQUIRE(g_plain.size() == g_ckpt.size());
  for (std::size_t i = 0; i < g_plain.size(); ++i) {
    CAPTURE(i);
    CHECK(bit_equal(g_plain[i], g_ckpt[i]));
  }
}

TEST_CASE("activation checkpoint: Sequential::checkpoint_segments gives the plain gradients and keeps less") {
  manual_seed(77);
  auto model = std::make_shared<nn::Sequential>(nn::Linear(6, 16), nn::ReLU(), nn::Dropout(0.3), nn::Linear(16, 16),
                                                nn::Tanh(), nn::Linear(16, 16), nn::ReLU(), nn::Linear(16, 2));
  Tensor x = randn({5, 6}, kFloat32);
  auto params = model->parameters();
  auto run = [&](std::size_t segments, std::size_t& saved_bytes) {
    model->checkpoint_segments(segments);
    SavedBytesCounter count(params);
    Tensor loss;
    manual_seed(99);  // the same dropout draws in both runs
    {
      auto hooks = count.hooks();
      loss = (*model)(x).pow(2.0).mean();
    }
    saved_bytes = count.bytes();
    return autograd::grad({loss}, params);
  };
  std::size_t plain_bytes = 0, ckpt_bytes = 0;
  const auto g_plain = run(0, plain_bytes);
  const auto g_ckpt = run(3, ckpt_bytes);
  CHECK(model->checkpoint_segments() == 3);
  CHECK(ckpt_bytes < plain_bytes);
  REQUIRE(g_plain.size() == g_ckpt.size());
  for (std::size_t i = 0; i < g_plain.size(); ++i) {
    CAPTURE(i);
    CHECK(bit_equal(g_plain[i], g_ckpt[i]));
  }
}

TEST_CASE("activation checkpoint: forward mode through a checkpoint, and forward over reverse") {
  namespace fwAD = autograd::forward_ad;
  manual_seed(21);
  Tensor x = randn({4, 3}, kFloat64);
  Tensor v = randn({4, 3}, kFloat64);
  Tensor w = randn({3, 3}, kFloat64).requires_grad_();
  auto fn = [&](const std::vector<Tensor>& in) { return tanh(matmul(in[0], w)) * in[0]; };
  // The tangent of fn's output: fn runs as usual in forward, so tangents flow through its ops.
  Tensor t_plain, t_ckpt;
  {
    fwAD::DualLevel level;
    t_plain = fwAD::unpack_dual(fn({fwAD::make_dual(x, v)})).tangent;
  }
  {
    fwAD::DualLevel level;
    Tensor y = checkpoint(fn, {fwAD::make_dual(x, v)});
    t_ckpt = fwAD::unpack_dual(y).tangent;
    CHECK(y.requires_grad());  // and still differentiable in reverse mode (w)
  }
  REQUIRE(t_plain.defined());
  CHECK(bit_equal(t_plain, t_ckpt));
  // Forward over reverse: the tangent of d/dx sum(fn(x)) along v is the Hessian-vector product H v;
  // inside the checkpoint the saved tensors come back through the unpack hook with their tangents.
  auto hvp = [&](bool use_checkpoint) {
    fwAD::DualLevel level;
    Tensor xd = fwAD::make_dual(x.detach().requires_grad_(), v);
    Tensor y = use_checkpoint ? checkpoint(fn, {xd}) : fn({xd});
    Tensor g = autograd::grad({y.sum()}, {xd}, {}, std::nullopt, /*create_graph=*/true)[0];
    return fwAD::unpack_dual(g).tangent;
  };
  const Tensor hv_plain = hvp(false), hv_ckpt = hvp(true);
  REQUIRE(hv_plain.defined());
  REQUIRE(hv_ckpt.defined());
  CHECK(bit_equal(hv_plain, hv_ckpt));
}
