// Optimizer state: state_dict / load_state_dict / save / load, bit-identical resumption, and
// validation that leaves the optimizer untouched when it refuses a state.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

using Factory = std::function<std::unique_ptr<optim::Optimizer>(const std::vector<Tensor>&)>;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("xgrad_test_optim_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// Two float32 parameters with fixed random values.
std::vector<Tensor> make_params() {
  manual_seed(1234);
  return {randn({3, 5}).requires_grad_(), randn({7}).requires_grad_()};
}

// Fills the gradients for step `s` through backward: loss = sum(sin(a * k) * a) with k = 1 + s/10 for
// the first parameter, and the same for the second parameter from step 2 on (before that it has no
// gradient, so the two parameters' step counts differ).
void compute_grads(const std::vector<Tensor>& params, int s) {
  const double k = 1 + s / 10.0;
  Tensor loss = (sin(params[0] * k) * params[0]).sum();
  if (s >= 2) loss = loss + (sin(params[1] * k) * params[1]).sum();
  loss.backward();
}

void run(optim::Optimizer& opt, const std::vector<Tensor>& params, int from, int to) {
  for (int s = from; s < to; ++s) {
    opt.zero_grad();
    compute_grads(params, s);
    opt.step();
  }
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const std::size_t bytes = a.numel() * itemsize(a.dtype());
  const void* pa = a.dtype() == kFloat32 ? static_cast<const void*>(a.data<float>().data()) : a.data<double>().data();
  const void* pb = b.dtype() == kFloat32 ? static_cast<const void*>(b.data<float>().data()) : b.data<double>().data();
  return std::memcmp(pa, pb, bytes) == 0;
}

bool bitwise_equal(const optim::StateDict& a, const optim::StateDict& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || !bitwise_equal(a[i].second, b[i].second)) return false;
  return true;
}

// 10 steps straight versus 5 steps, save (file or memory), a fresh optimizer (with another lr, which
// the load must restore), load, 5 steps: parameters and state must agree bit for bit.
void check_resume(const Factory& make, bool through_file) {
  std::vector<Tensor> straight = make_params();
  auto opt_a = make(straight);
  run(*opt_a, straight, 0, 10);

  std::vector<Tensor> resumed = make_params();
  optim::StateDict saved;
  const std::string path = temp_path(opt_a->name() + ".safetensors");
  {
    auto opt_b = make(resumed);
    run(*opt_b, resumed, 0, 5);
    if (through_file) {
      opt_b->save(path);
    } else {
      saved = opt_b->state_dict();
    }
  }
  auto opt_c = make(resumed);
  opt_c->set_lr(12.5);
  if (through_file) {
    opt_c->load(path);
    std::filesystem::remove(path);
  } else {
    opt_c->load_state_dict(saved);
  }
  CHECK(opt_c->lr() == opt_a->lr());
  run(*opt_c, resumed, 5, 10);

  for (std::size_t i = 0; i < straight.size(); ++i) {
    CAPTURE(i);
    CHECK(bitwise_equal(straight[i], resumed[i]));
  }
  CHECK(bitwise_equal(opt_a->state_dict(), opt_c->state_dict()));
  // And the trajectory really moved (a resume test on a frozen parameter proves nothing).
  const std::vector<Tensor> initial = make_params();
  CHECK_FALSE(bitwise_equal(initial[0], straight[0]));
  CHECK_FALSE(bitwise_equal(initial[1], straight[1]));
}

std::vector<std::pair<std::string, Factory>> resumable_configs() {
  return {
      {"SGD momentum", [](const auto& p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 1e-3}); }},
      {"SGD nesterov", [](const auto& p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true}); }},
      {"Adam amsgrad", [](const auto& p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions{.lr = 0.01, .weight_decay = 1e-2, .amsgrad = true}); }},
      {"AdamW", [](const auto& p) { return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{.lr = 0.01}); }},
      {"RMSprop momentum", [](const auto& p) { return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions{.lr = 0.01, .weight_decay = 1e-3, .momentum = 0.5}); }},
  };
}

optim::StateDict without(const optim::StateDict& sd, const std::string& key) {
  optim::StateDict out;
  for (const auto& e : sd)
    if (e.first != key) out.push_back(e);
  return out;
}

optim::StateDict replaced(const optim::StateDict& sd, const std::string& key, const Tensor& t) {
  optim::StateDict out = sd;
  for (auto& e : out)
    if (e.first == key) e.second = t;
  return out;
}

}  // namespace

TEST_CASE("optim: 10 steps equal 5 steps + save + load into a fresh optimizer + 5 steps, bitwise") {
  for (const auto& [name, make] : resumable_configs()) {
    const auto& label = name;  // CAPTURE cannot capture a structured binding before clang 16
    CAPTURE(label);
    check_resume(make, /*through_file=*/true);
    check_resume(make, /*through_file=*/false);
  }
}

TEST_CASE("optim: state_dict names, dtypes and shapes") {
  std::vector<Tensor> params = make_params();
  optim::Adam adam(params, {.lr = 0.01, .amsgrad = true});
  // Before any step: only the hyper-parameters.
  optim::StateDict sd = adam.state_dict();
  std::vector<std::string> names;
  for (const auto& [name, t] : sd) names.push_back(name);
  CHECK(names == std::vector<std::string>{"param_groups.0.lr", "param_groups.0.betas", "param_groups.0.eps",
                                          "param_groups.0.weight_decay", "param_groups.0.amsgrad",
                                          "param_groups.0.decoupled_weight_decay", "param_groups.0.params"});
  CHECK(sd[0].second.item() == 0.01);
  CHECK(sd[1].second.shape() == Shape{2});
  CHECK(sd[6].second.shape() == Shape{2});  // two parameters

  run(adam, params, 0, 1);  // only parameter 0 has a gradient at step 0
  sd = adam.state_dict();
  CHECK(sd[0].first == "state.0.step");
  CHECK(sd[0].second.dtype() == kFloat64);
  CHECK(sd[0].second.dim() == 0);
  CHECK(sd[1].first == "state.0.exp_avg");
  CHECK(sd[1].second.dtype() == kFloat32);
  CHECK(sd[1].second.shape() == Shape{3, 5});
  CHECK(sd[2].first == "state.0.exp_avg_sq");
  CHECK(sd[3].first == "state.0.max_exp_avg_sq");
  CHECK(sd[4].first == "param_groups.0.lr");

  // A deep copy: later steps leave it alone; and loading copies too.
  const Tensor snapshot = sd[1].second;
  const Tensor copy = snapshot.clone().detach();
  run(adam, params, 1, 3);
  CHECK(bitwise_equal(snapshot, copy));
  adam.load_state_dict(sd);
  snapshot.detach().data<float>().fill(7.0f);
  CHECK(adam.state_dict()[1].second.data<float>()(0) != 7.0f);
}

TEST_CASE("optim: load_state_dict casts buffers to the parameter's dtype") {
  // SGD momentum state from a float64 run, loaded for the same values held in float32.
  Tensor p64 = tensor({1.0, 2.0}, kFloat64, true);
  optim::SGD sgd64({p64}, {.lr = 0.1, .momentum = 0.9});
  p64.set_grad(tensor({0.5, -0.25}, kFloat64));
  sgd64.step();
  Tensor p32 = tensor({1.0, 2.0}, kFloat32, true);
  optim::SGD sgd32({p32}, {.lr = 0.1, .momentum = 0.9});
  sgd32.load_state_dict(sgd64.state_dict());
  const auto sd = sgd32.state_dict();
  CHECK(sd[0].first == "state.0.momentum_buffer");
  CHECK(sd[0].second.dtype() == kFloat32);
  CHECK(sd[0].second.data<float>()(0) == 0.5f);
  CHECK(sd[0].second.data<float>()(1) == -0.25f);
}

TEST_CASE("optim: a refused state leaves the optimizer untouched") {
  std::vector<Tensor> params = make_params();
  optim::Adam adam(params, {.lr = 0.01, .amsgrad = true});
  run(adam, params, 0, 4);
  const optim::StateDict good = adam.state_dict();
  const double lr = adam.lr();
  // Something to load that differs from the current state everywhere, so a partial load would show.
  std::vector<Tensor> other_params = make_params();
  optim::Adam other(other_params, {.lr = 0.5, .amsgrad = true});
  run(other, other_params, 0, 7);
  const optim::StateDict base = other.state_dict();

  auto check_refused = [&](const optim::StateDict& bad, const std::string& fragment) {
    CAPTURE(fragment);
    CHECK_THROWS_WITH_AS(adam.load_state_dict(bad), doctest::Contains(fragment.c_str()), Error);
    CHECK(adam.lr() == lr);
    CHECK(bitwise_equal(adam.state_dict(), good));
  };

  check_refused(without(base, "param_groups.0.eps"), "Missing: param_groups.0.eps");
  optim::StateDict extra = base;
  extra.emplace_back("state.0.foo", zeros({3, 5}));
  check_refused(extra, "Unexpected: state.0.foo");
  optim::StateDict out_of_range = base;
  out_of_range.emplace_back("state.2.exp_avg", zeros({7}));
  check_refused(out_of_range, "Unexpected: state.2.exp_avg");
  check_refused(replaced(base, "state.1.exp_avg", zeros({3, 5})), "Shape mismatch: state.1.exp_avg (shape [3, 5], parameter 1 has shape [7])");
  check_refused(replaced(base, "param_groups.0.betas", tensor(0.9, kFloat64)), "param_groups.0.betas (shape [], expected [2])");
  check_refused(replaced(base, "param_groups.0.params", arange(3, kFloat64)), "the state dict is for 3 parameters");
  check_refused(replaced(base, "param_groups.0.lr", tensor(-1.0, kFloat64)), "invalid learning rate -1");
  check_refused(replaced(base, "param_groups.0.betas", tensor({0.9, 1.5}, kFloat64)), "Adam.load_state_dict: Adam: invalid beta parameter at index 1 1.5");
  check_refused(replaced(base, "param_groups.0.amsgrad", tensor(0.5, kFloat64)), "invalid amsgrad flag 0.5");
  check_refused(replaced(base, "state.0.step", tensor(2.5, kFloat64)), "state.0.step is 2.5");
  check_refused(without(base, "state.1.exp_avg_sq"), "state.1.exp_avg_sq is missing");
  check_refused(without(base, "state.0.step"), "state.0.step is missing");
  optim::StateDict duplicated = base;
  duplicated.push_back(base[0]);
  check_refused(duplicated, "appears more than once");

  // The whole state of another kind of optimizer.
  std::vector<Tensor> sgd_params = make_params();
  optim::SGD sgd(sgd_params, {.momentum = 0.9});
  run(sgd, sgd_params, 0, 3);
  check_refused(sgd.state_dict(), "Missing: param_groups.0.betas");
  check_refused(sgd.state_dict(), "Unexpected: state.0.momentum_buffer");
  optim::AdamW adamw(make_params());
  check_refused(adamw.state_dict(), "the state is from AdamW");

  // Finally the good state loads.
  adam.load_state_dict(base);
  CHECK(adam.lr() == 0.5);
  CHECK(bitwise_equal(adam.state_dict(), base));
}

TEST_CASE("optim: a state without AMSGrad's buffer cannot switch AMSGrad on") {
  std::vector<Tensor> params = make_params();
  optim::Adam plain(params, {.lr = 0.01});
  run(plain, params, 0, 3);
  optim::Adam ams(make_params(), {.amsgrad = true});
  const optim::StateDict before = ams.state_dict();
  CHECK_THROWS_WITH_AS(ams.load_state_dict(replaced(plain.state_dict(), "param_groups.0.amsgrad", tensor(1.0, kFloat64))),
                       doctest::Contains("state.0.max_exp_avg_sq is missing"), Error);
  CHECK(bitwise_equal(ams.state_dict(), before));
  // Without the switch the plain state loads, and amsgrad follows the loaded value (off).
  ams.load_state_dict(plain.state_dict());
  CHECK_FALSE(ams.options().amsgrad);
}

TEST_CASE("optim: save/load through files, and the file errors") {
  std::vector<Tensor> params = make_params();
  optim::RMSprop rms(params, {.momentum = 0.9});
  run(rms, params, 0, 3);
  const optim::StateDict before = rms.state_dict();

  // A file written by another optimizer is named as such.
  const std::string sgd_path = temp_path("sgd.safetensors");
  std::vector<Tensor> sgd_params = make_params();
  optim::SGD sgd(sgd_params, {.momentum = 0.9});
  run(sgd, sgd_params, 0, 2);
  sgd.save(sgd_path);
  CHECK_THROWS_WITH_AS(rms.load(sgd_path), doctest::Contains("holds the state of a SGD optimizer"), Error);
  std::filesystem::remove(sgd_path);

  // A missing file and a malformed one.
  CHECK_THROWS_WITH_AS(rms.load(temp_path("does_not_exist.safetensors")), doctest::Contains("does_not_exist"), Error);
  const std::string junk = temp_path("junk.safetensors");
  {
    std::ofstream out(junk, std::ios::binary);
    out << "this is not a safetensors file at all";
  }
  CHECK_THROWS_AS(rms.load(junk), Error);
  std::filesystem::remove(junk);

  // A file whose content does not fit: the error names the path and the offending key.
  const std::string wrong = temp_path("wrong_shape.safetensors");
  save_safetensors(wrong, replaced(before, "state.0.square_avg", zeros({2})), {{"optimizer", "RMSprop"}});
  CHECK_THROWS_WITH_AS(rms.load(wrong), doctest::Contains("state.0.square_avg"), Error);
  CHECK_THROWS_WITH_AS(rms.load(wrong), doctest::Contains("wrong_shape.safetensors"), Error);
  std::filesystem::remove(wrong);
  CHECK(bitwise_equal(rms.state_dict(), before));

  // A good round trip.
  const std::string good = temp_path("rms.safetensors");
  rms.save(good);
  std::vector<Tensor> fresh_params = make_params();
  optim::RMSprop fresh(fresh_params);
  fresh.load(good);
  CHECK(bitwise_equal(fresh.state_dict(), before));
  CHECK(fresh.options().momentum == 0.9);
  std::filesystem::remove(good);
}
