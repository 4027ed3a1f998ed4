// What the performance work must not change, and the few structural promises it makes:
//   - without create_graph, backward formulas run as fused loops, in place over the incoming gradient
//     when nothing else can see it; they must give bitwise the gradients of the Tensor-op formulas
//     (which create_graph runs; op by op, test_op_table.cpp checks it for every op), also when chained,
//     and never overwrite a tensor the user, a hook or a saved copy holds;
//   - the engine keeps its per-run marks outside the graph and clears them even when a run throws;
//   - a node keeps up to two edges inside itself and stays small (W6 keeps millions alive);
//   - set_num_threads / get_num_threads, and the process-wide malloc settings;
//   - convolution's column buffers are per-thread scratch, allocated once, oversized ones given back.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <xgrad.hpp>

#include "sanitizer.hpp"

#include "autograd/detail/malloc_tuning.hpp"
#include "autograd/detail/packed_gemm.hpp"
#include "autograd/detail/scratch.hpp"
#include "autograd/node.hpp"

using namespace xgrad;

namespace {

// Bitwise equality of two tensors' shapes and values.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const std::size_t bytes = a.numel() * itemsize(a.dtype());
  const void* pa = a.dtype() == kFloat32 ? static_cast<const void*>(a.data<float>().data()) : a.data<double>().data();
  const void* pb = b.dtype() == kFloat32 ? static_cast<const void*>(b.data<float>().data()) : b.data<double>().data();
  return std::memcmp(pa, pb, bytes) == 0;
}

Tensor copy_of(const Tensor& t) { return t.detach().clone(); }

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// The gradients of sum(w ⊙ f(inputs)) twice: by backward() (fused loops; the product with w gives the
// op an exclusively owned incoming gradient, so the in-place path runs) and by autograd::grad with
// create_graph (the Tensor-op formulas). Both must agree bit for bit, for every input.
void check_fused_matches_formula(const char* what, const Fn& f, std::vector<Tensor> inputs) {
  INFO(std::string(what));
  for (Tensor& t : inputs) t.requires_grad_(true);
  Tensor probe = f(inputs);
  Tensor w = rand_like(probe) + 0.5;
  Tensor loss = (f(inputs) * w).sum();
  loss.backward();
  std::vector<Tensor> fused;
  for (Tensor& t : inputs) {
    fused.push_back(t.grad());
    t.zero_grad();
  }
  Tensor loss2 = (f(inputs) * w).sum();
  std::vector<Tensor> formula = autograd::grad({loss2}, inputs, {}, true, /*create_graph=*/true);
  REQUIRE(formula.size() == fused.size());
  for (std::size_t i = 0; i < fused.size(); ++i) {
    INFO("input " << i);
    REQUIRE(fused[i].defined());
    CHECK(same_bits(fused[i], formula[i].detach()));
  }
}

}  // namespace

// Each op's fused kernel against its formula, op by op and for every sample of the op table, is
// test_op_table.cpp's "fused backward kernels" check. Here: graphs in which several fused kernels meet
// (a chain, a gradient summed from two uses, an op fed by a reduction broadcast back), where one
// kernel's in-place write could reach another's input.
TEST_CASE("perf invariants: fused backward kernels chained in one graph give the formulas' gradients bit for bit") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    INFO(std::string(dtype_name(dt)));
    manual_seed(7);
    Tensor x = randn({4, 5}, dt), y = randn({4, 5}, dt);
    Tensor W = randn({3, 5}, dt), b = randn({3}, dt);
    check_fused_matches_formula("chain", [](const auto& v) { return tanh(sigmoid(v[0] * 1.5 + 0.1) * v[1]); },
                                {copy_of(x), copy_of(y)});
    check_fused_matches_formula("sum, then broadcast back", [](const auto& v) { return v[0] * sum(tanh(v[0])); },
                                {copy_of(x)});
    check_fused_matches_formula("mean, then broadcast back", [](const auto& v) { return v[0] * mean(v[0] * v[0]); },
                                {copy_of(x)});
    check_fused_matches_formula("linear + relu", [](const auto& v) { return relu(linear(v[0], v[1], v[2])); },
                                {copy_of(x), copy_of(W), copy_of(b)});
    check_fused_matches_formula("one input through two branches", [](const auto& v) { return tanh(v[0]) + sigmoid(v[0]) * v[0]; },
                                {copy_of(x)});
  }
}

TEST_CASE("perf invariants: in-place backward never overwrites a gradient someone else holds") {
  SUBCASE("the gradient the user passes to backward") {
    Tensor x = tensor({0.5, -1.0, 2.0}, kFloat64, true);
    Tensor g = tensor({1.0, 2.0, 3.0}, kFloat64);
    Tensor kept = copy_of(g);
    tanh(x * 2.0).backward(g);
    CHECK(same_bits(g, kept));
    // d tanh(2x)/dx = 2 (1 - tanh²(2x)), times g
    for (int i = 0; i < 3; ++i) {
      const double xi = x.data<double>()(i), t = std::tanh(2 * xi);
      CHECK(x.grad().data<double>()(i) == doctest::Approx(2 * (1 - t * t) * g.data<double>()(i)));
    }
  }
  SUBCASE("a gradient a hook keeps") {
    Tensor x = tensor({0.3, -0.7}, kFloat64, true);
    Tensor h = x * 2.0;
    Tensor seen;
    h.register_hook([&](const Tensor& g) {
      seen = g;
      return Tensor();
    });
    tanh(h).sum().backward();
    // seen = d tanh(h)/dh = 1 - tanh²(h); x.grad = 2·seen, computed after the hook ran (MulBackward must
    // not have scaled `seen` in place).
    for (int i = 0; i < 2; ++i) {
      const double t = std::tanh(h.data<double>()(i));
      CHECK(seen.data<double>()(i) == doctest::Approx(1 - t * t));
      CHECK(x.grad().data<double>()(i) == doctest::Approx(2 * (1 - t * t)));
    }
  }
  SUBCASE("one gradient handed to two branches") {
    // z = tanh(x) + sigmoid(x): AddBackward gives both branches the same tensor; neither may scale it.
    Tensor x = tensor({0.2, -1.5, 0.9}, kFloat64, true);
    (tanh(x) + sigmoid(x)).sum().backward();
    for (int i = 0; i < 3; ++i) {
      const double v = x.data<double>()(i), t = std::tanh(v), s = 1 / (1 + std::exp(-v));
      CHECK(x.grad().data<double>()(i) == doctest::Approx((1 - t * t) + s * (1 - s)));
    }
  }
  SUBCASE("retain_grad on an intermediate") {
    Tensor x = tensor({0.4, -0.6}, kFloat64, true);
    Tensor y = x * 3.0;
    y.retain_grad();
    (tanh(y) * 5.0).sum().backward();
    for (int i = 0; i < 2; ++i) {
      const double t = std::tanh(y.data<double>()(i));
      CHECK(y.grad().data<double>()(i) == doctest::Approx(5 * (1 - t * t)));   // d/dy 5 tanh(y)
      CHECK(x.grad().data<double>()(i) == doctest::Approx(15 * (1 - t * t)));  // times dy/dx = 3
    }
  }
  SUBCASE("both factors of a product need the one incoming gradient") {
    // d(sum(w ⊙ y·y))/dy = 2 w y: MulBackward makes g·y fresh first and only then scales g itself by y;
    // the engine then sums the two into y's slot. With y = x·1: x.grad = 2 w x.
    Tensor x = tensor({1.5, -2.0}, kFloat64, true);
    Tensor y = x * 1.0;
    Tensor w = tensor({3.0, 0.5}, kFloat64);
    ((y * y) * w).sum().backward();
    CHECK(x.grad().data<double>()(0) == doctest::Approx(2 * 3.0 * 1.5));
    CHECK(x.grad().data<double>()(1) == doctest::Approx(2 * 0.5 * -2.0));
  }
  SUBCASE("autograd::grad returns what reached an intermediate, untouched by later nodes") {
    Tensor x = tensor({0.8, 0.1}, kFloat64, true);
    Tensor y = x * 4.0;
    Tensor z = tanh(y).sum();
    std::vector<Tensor> g = autograd::grad({z}, {y, x});
    for (int i = 0; i < 2; ++i) {
      const double t = std::tanh(y.data<double>()(i));
      CHECK(g[0].data<double>()(i) == doctest::Approx(1 - t * t));
      CHECK(g[1].data<double>()(i) == doctest::Approx(4 * (1 - t * t)));
    }
  }
}

TEST_CASE("perf invariants: summed gradients are accumulated, in place only where unobservable") {
  // x feeds three ops; the engine sums their gradients for x's accumulator: 2 + 3 + cos-free constant 1.
  Tensor x = tensor({1.0, 2.0}, kFloat32, true);
  ((x * 2.0) + (x * 3.0) + x).sum().backward();
  CHECK(x.grad().data<float>()(0) == 6.0f);
  CHECK(x.grad().data<float>()(1) == 6.0f);
  // A second backward accumulates into .grad (PyTorch semantics): 6 + 6.
  ((x * 2.0) + (x * 3.0) + x).sum().backward();
  CHECK(x.grad().data<float>()(0) == 12.0f);
}

TEST_CASE("perf invariants: the engine clears its marks even when a run throws") {
  Tensor x = tensor({0.5, 1.5}, kFloat64, true);
  Tensor y = tanh(x * 2.0);
  const std::size_t h = y.register_hook([](const Tensor&) -> Tensor { throw Error("hook failed on purpose"); });
  CHECK_THROWS_WITH_AS(y.sum().backward(Tensor(), /*retain_graph=*/true), doctest::Contains("on purpose"), Error);
  y.remove_hook(h);
  // The same graph again: every node must be found and run (none left marked from the failed run).
  y.sum().backward();
  for (int i = 0; i < 2; ++i) {
    const double t = std::tanh(2 * x.data<double>()(i));
    CHECK(x.grad().data<double>()(i) == doctest::Approx(2 * (1 - t * t)));
  }
}

namespace {
struct ProbeNode final : autograd::Node {
  std::string name() const override { return "ProbeNode"; }
  autograd::TensorList apply(autograd::TensorList&&) override { return {}; }
};
}  // namespace

TEST_CASE("perf invariants: node edges, inline and spilled to the heap") {
  CHECK(sizeof(autograd::Node) <= 96);  // W6: 2M live nodes; see the field order in node.hpp
  auto leaf = std::make_shared<ProbeNode>();
  ProbeNode node;
  for (std::uint32_t i = 0; i < 5; ++i) node.add_next_edge(autograd::Edge{i % 2 ? leaf : nullptr, i});
  REQUIRE(node.num_inputs() == 5);
  for (std::uint32_t i = 0; i < 5; ++i) {
    CHECK(node.next_edge(i).input_nr == i);
    CHECK(node.needs_input_grad(i) == (i % 2 == 1));
  }
  CHECK(leaf.use_count() == 3);  // edges 1 and 3
  std::size_t seen = 0;
  for (const autograd::Edge& e : node.next_edges()) seen += e.valid();
  CHECK(seen == 2);
  node.set_next_edges({autograd::Edge{leaf, 7}});
  CHECK(node.num_inputs() == 1);
  CHECK(node.next_edge(0).input_nr == 7);
  CHECK(leaf.use_count() == 2);
  CHECK_FALSE(node.has_pre_hooks());
  node.set_next_edges({});
  CHECK(node.num_inputs() == 0);
  CHECK(leaf.use_count() == 1);
}

TEST_CASE("perf invariants: ops with more than two inputs keep all their edges") {
  // linear records three inputs (x, W, b): the spilled edge list must route each gradient right.
  Tensor x = tensor({{1.0, 2.0}}, kFloat64, true);
  Tensor W = tensor({{3.0, 4.0}}, kFloat64, true);
  Tensor b = tensor({0.5}, kFloat64, true);
  linear(x, W, b).sum().backward();
  // y = x·Wᵀ + b: dy/dx = W, dy/dW = x, dy/db = 1
  CHECK(x.grad().data<double>()(0, 0) == 3.0);
  CHECK(x.grad().data<double>()(0, 1) == 4.0);
  CHECK(W.grad().data<double>()(0, 0) == 1.0);
  CHECK(W.grad().data<double>()(0, 1) == 2.0);
  CHECK(b.grad().data<double>()(0) == 1.0);
}

namespace {
// Whether every element of a float tensor equals v.
bool all_equal(const Tensor& t, float v) {
  const float* p = t.data<float>().data();
  for (std::size_t i = 0; i < t.numel(); ++i)
    if (p[i] != v) return false;
  return true;
}
}  // namespace

TEST_CASE("perf invariants: recycled arrays never alias a live tensor") {
  // Tensors of many sizes (from 1 element to past the pool's 8 MiB limit) die and are made again;
  // a new tensor may get a dead one's array, never a live one's. Sizes repeat across rounds so the
  // pool is exercised at its count and byte limits.
  const std::size_t sizes[] = {1, 7, 320, 4096, 70000, std::size_t{1} << 20, std::size_t{3} << 20};
  for (int round = 0; round < 3; ++round) {
    std::vector<Tensor> live;
    std::vector<float> value;
    for (std::size_t n : sizes) {
      for (int k = 0; k < 3; ++k) {
        const float v = static_cast<float>(round * 100 + k);
        live.push_back(full({n}, v));
        value.push_back(v);
        { Tensor dead = ones({n}) * 3.0; }  // its array goes back to the pool
        Tensor fresh = ones({n}) * 5.0;     // and may come back here
        CHECK(all_equal(fresh, 5.0f));
      }
    }
    for (std::size_t i = 0; i < live.size(); ++i) CHECK(all_equal(live[i], value[i]));
  }
  // Arrays made on one thread and freed on another go to the freeing thread's pool.
  Tensor made_here = full({4096}, 2.0);
  std::thread([t = std::move(made_here)]() mutable {
    Tensor keep = ones({4096}) * 7.0;
    t = Tensor();  // freed on this thread
    Tensor again = ones({4096}) * 9.0;
    CHECK(all_equal(keep, 7.0f));
    CHECK(all_equal(again, 9.0f));
  }).join();
}

TEST_CASE("perf invariants: set_num_threads") {
  const int before = get_num_threads();
  CHECK(before >= 1);
  set_num_threads(3);
  CHECK(get_num_threads() == 3);
  // A large product with a cap of 3 threads still gives the right result (threads only split the work).
  Tensor a = ones({300, 200}), b = ones({200, 400});
  Tensor c = matmul(a, b);  // every entry is a sum of 200 ones
  CHECK(c.data<float>()(0, 0) == 200.0f);
  CHECK(c.data<float>()(299, 399) == 200.0f);
  set_num_threads(before);
  CHECK(get_num_threads() == before);
  CHECK_THROWS_WITH_AS(set_num_threads(-2), doctest::Contains("-2"), Error);
}

// The opt-out rules of tune_malloc_for_tensors() as this process's environment has them. It returns the
// value cached when the library loaded, so this does not show the load-time hook ran: that is
// checked in a fresh process by "process defaults: the malloc tuning is applied when the library
// loads" (tests/test_process_defaults.cpp), which observes where glibc puts a 1 MiB block.
TEST_CASE("perf invariants: glibc malloc is tuned unless the user configured it") {
#if defined(__GLIBC__)
  const char* opt_out = std::getenv("XGRAD_MALLOC_TUNING");
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const bool user_configured = (opt_out && std::strcmp(opt_out, "0") == 0) ||
                               (tunables && std::strstr(tunables, "glibc.malloc.")) ||
                               std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_");
  const bool applied = detail::tune_malloc_for_tensors();
  if (user_configured) CHECK_FALSE(applied);
#if !XGRAD_UNDER_SANITIZER
  if (!user_configured) CHECK(applied);
#else
  // A sanitizer's own allocator refuses mallopt, and then nothing is applied (nor reported applied).
  if (!user_configured) CHECK_FALSE(applied);
#endif
#else
  CHECK_FALSE(detail::tune_malloc_for_tensors());
#endif
}

TEST_CASE("perf invariants: convolution columns live in per-thread scratch buffers, allocated once") {
  // float32 (the packed GEMM engine where AVX2 is compiled in) and float64 (cblas) lay out their
  // buffers differently; both must reuse them from the second step on.
  for (const Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt == kFloat32);
    manual_seed(3);
    Tensor x = rand({4, 8, 14, 14}, dt), w = rand({16, 8, 3, 3}, dt);
    x.requires_grad_();
    w.requires_grad_();
    const auto step = [&] {
      x.zero_grad();
      w.zero_grad();
      nn::functional::conv2d(x, w, {}, {.padding = 1}).sum().backward();
    };
    step();
    detail::ScratchBuffer* buffers = detail::scratch_buffers();
    const std::size_t elem = dt == kFloat32 ? sizeof(float) : sizeof(double);
    // Slot 0: one sample's columns (8·9 rows × 196 positions) for the forward and the input gradient;
    // slot 3: the zero-padded sample (8 × 16 × 16) that stride-1 im2col and col2im work through.
    CHECK(buffers[0].bytes >= 72 * 196 * elem);
    CHECK(buffers[3].bytes >= 8 * 16 * 16 * elem);
    if (dt == kFloat32 && detail::packed_gemm_native()) {
      // The weight gradient reads G in place and one sample's columns at a time (slot 1).
      CHECK(buffers[1].bytes >= 72 * 196 * elem);
    } else {
      // Slots 1-2: the weight gradient's chunk of columns and of the output gradient (all 4 samples fit
      // in one chunk).
      CHECK(buffers[1].bytes >= 72 * 196 * 4 * elem);
      CHECK(buffers[2].bytes >= 16 * 196 * 4 * elem);
    }
    const void* kept[detail::kScratchSlots];
    for (int i = 0; i < detail::kScratchSlots; ++i) kept[i] = buffers[i].data.get();
    for (int i = 0; i < 3; ++i) step();
    for (int i = 0; i < detail::kScratchSlots; ++i) CHECK(buffers[i].data.get() == kept[i]);  // never reallocated
    // A buffer above the kept size is freed when the kernel is done.
    detail::scratch<float>(detail::kMaxKeptScratchBytes / sizeof(float) + 16, 2);
    CHECK(buffers[2].bytes > detail::kMaxKeptScratchBytes);
    step();
    CHECK(buffers[2].bytes <= detail::kMaxKeptScratchBytes);
    CHECK(buffers[0].data.get() == kept[0]);
  }
}
