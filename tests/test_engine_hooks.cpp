// The engine's public hooks for data-parallel training: a leaf's post-accumulate-grad hook and the
// end-of-backward callback.
#include <string>
#include <vector>

#include "helpers.hpp"

using namespace xgrad;

TEST_CASE("post-accumulate-grad hook: runs once per backward with the final .grad") {
  Tensor w = tensor({1.0, 2.0}, kFloat64, true);
  std::vector<double> seen;
  const std::size_t h = w.register_post_accumulate_grad_hook([&](Tensor& leaf) {
    CHECK(leaf.is_same(w));
    seen.push_back(leaf.grad().data<double>()(0));
  });
  // w is used twice: the engine sums both contributions, d/dw0 of (3 w0 + w0^2) = 3 + 2 w0 = 5, then
  // the hook sees that sum once.
  ((w * 3.0).sum() + (w * w).sum()).backward();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == 5.0);
  // A second backward accumulates: .grad = 5 + 3 = 8 when the hook runs.
  (w * 3.0).sum().backward();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1] == 8.0);
  w.remove_hook(h);
  (w * 3.0).sum().backward();
  CHECK(seen.size() == 2);
}

TEST_CASE("post-accumulate-grad hook: not run by autograd::grad, and refused on non-leaves") {
  Tensor w = tensor({1.0}, kFloat64, true);
  int calls = 0;
  w.register_post_accumulate_grad_hook([&](Tensor&) { ++calls; });
  autograd::grad({(w * 2.0).sum()}, {w});
  CHECK(calls == 0);
  Tensor y = w * 2.0;
  CHECK_THROWS_WITH_AS(y.register_post_accumulate_grad_hook([](Tensor&) {}), doctest::Contains("leaf"), Error);
  Tensor c = tensor({1.0}, kFloat64);
  CHECK_THROWS_WITH_AS(c.register_post_accumulate_grad_hook([](Tensor&) {}), doctest::Contains("require"), Error);
}

TEST_CASE("queue_callback: runs after every gradient is accumulated, in order, once") {
  Tensor a = tensor({1.0}, kFloat64, true);
  Tensor b = tensor({2.0}, kFloat64, true);
  std::vector<std::string> events;
  bool queued = false;
  auto on_leaf = [&](const char* name) {
    return [&, name](Tensor&) {
      events.push_back(name);
      if (!queued) {
        queued = true;
        autograd::queue_callback([&] {
          // Both leaves are final by now.
          events.push_back("end a=" + std::to_string(int(a.grad().item())) + " b=" + std::to_string(int(b.grad().item())));
          autograd::queue_callback([&] { events.push_back("second"); });
        });
      }
    };
  };
  a.register_post_accumulate_grad_hook(on_leaf("a"));
  b.register_post_accumulate_grad_hook(on_leaf("b"));
  (a * 3.0 + b * 4.0).sum().backward();
  REQUIRE(events.size() == 4);
  CHECK(events[2] == "end a=3 b=4");
  CHECK(events[3] == "second");
  // Callbacks belong to one run: the next backward starts with none.
  events.clear();
  queued = true;
  (a * 3.0).sum().backward();
  CHECK(events == std::vector<std::string>{"a"});
}

TEST_CASE("queue_callback: outside backward is an error, and a throwing callback makes backward throw") {
  CHECK_THROWS_WITH_AS(autograd::queue_callback([] {}), doctest::Contains("outside a backward"), Error);
  Tensor w = tensor({1.0}, kFloat64, true);
  w.register_post_accumulate_grad_hook(
      [](Tensor&) { autograd::queue_callback([] { throw Error("callback failed"); }); });
  CHECK_THROWS_WITH_AS((w * 2.0).sum().backward(), doctest::Contains("callback failed"), Error);
  // The failed run left no callback behind.
  CHECK_THROWS_WITH_AS(autograd::queue_callback([] {}), doctest::Contains("outside a backward"), Error);
}
