// The layer ops against PyTorch's own values (tests/data/torch_ops_reference.safetensors, written by
// tests/data/make_torch_ops_reference.py with PyTorch 1.13, committed): for each case the output, the
// gradients of <output, w> and the second derivatives d<gradients, v>/d inputs, in float64.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include <xgrad.hpp>

using namespace xgrad;
namespace F = xgrad::nn::functional;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// tests/data: XGRAD_TEST_DATA_DIR from tests/CMakeLists.txt (an absolute path, whatever the working directory).
std::filesystem::path data_dir() {
#ifdef XGRAD_TEST_DATA_DIR
  return std::filesystem::path(XGRAD_TEST_DATA_DIR);
#else
  return std::filesystem::path(__FILE__).parent_path() / "data";
#endif
}

// The C++ side of each case of make_torch_ops_reference.py, same names and arguments.
std::map<std::string, Fn> cases() {
  const Tensor emb_idx = tensor({{0.0, 3.0, 1.0}, {3.0, 2.0, 2.0}}, kFloat64);
  return {
      {"conv2d", [](auto& in) { return F::conv2d(in[0], in[1], in[2], {.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}, .groups = 2}); }},
      {"conv2d_same", [](auto& in) { return F::conv2d(in[0], in[1], {}, {.padding = nn::same}); }},
      {"conv2d_depthwise", [](auto& in) { return F::conv2d(in[0], in[1], in[2], {.stride = 2, .padding = 1, .groups = 3}); }},
      {"conv1d", [](auto& in) { return F::conv1d(in[0], in[1], in[2], {.stride = 2, .padding = 2, .dilation = 2}); }},
      {"max_pool2d", [](auto& in) { return F::max_pool2d(in[0], {3, 2}, {.stride = Size2{2, 1}, .padding = 1, .dilation = {1, 2}, .ceil_mode = true}); }},
      {"avg_pool2d", [](auto& in) { return F::avg_pool2d(in[0], 3, {.stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false}); }},
      {"avg_pool2d_include", [](auto& in) { return F::avg_pool2d(in[0], {2, 3}, {.stride = 2, .padding = 1, .ceil_mode = true}); }},
      {"adaptive_avg_pool2d", [](auto& in) { return F::adaptive_avg_pool2d(in[0], {3, 4}); }},
      {"batch_norm_train", [](auto& in) { return F::batch_norm(in[0], {}, {}, in[1], in[2], true); }},
      {"layer_norm", [](auto& in) { return F::layer_norm(in[0], {2, 4}, in[1], in[2]); }},
      {"group_norm", [](auto& in) { return F::group_norm(in[0], 3, in[1], in[2]); }},
      {"gelu", [](auto& in) { return F::gelu(in[0]); }},
      {"gelu_tanh", [](auto& in) { return F::gelu(in[0], F::GeluApproximate::Tanh); }},
      {"silu", [](auto& in) { return F::silu(in[0]); }},
      {"elu", [](auto& in) { return F::elu(in[0], 1.3); }},
      {"softplus", [](auto& in) { return F::softplus(in[0], 2.0, 3.0); }},
      {"erf", [](auto& in) { return xgrad::erf(in[0]); }},
      {"log1p", [](auto& in) { return xgrad::log1p(in[0]); }},
      {"expm1", [](auto& in) { return xgrad::expm1(in[0]); }},
      {"pad_reflect", [](auto& in) { return F::pad(in[0], {2, 1, 1, 2}, F::PadMode::Reflect); }},
      {"pad_replicate", [](auto& in) { return F::pad(in[0], {1, 2, 2, 0}, F::PadMode::Replicate); }},
      {"pad_circular", [](auto& in) { return F::pad(in[0], {1, 2, 2, 1}, F::PadMode::Circular); }},
      {"pad_constant", [](auto& in) { return F::pad(in[0], {1, -1, 0, 2}, F::PadMode::Constant, 0.5); }},
      {"unfold", [](auto& in) { return F::unfold(in[0], {2, 3}, {.dilation = {2, 1}, .padding = 1, .stride = {1, 2}}); }},
      {"fold", [](auto& in) { return F::fold(in[0], {4, 5}, 2, {.padding = 1, .stride = 2}); }},
      {"embedding", [emb_idx](auto& in) { return F::embedding(emb_idx, in[0], 3); }},
  };
}

void check_close(const std::string& what, const Tensor& got, const Tensor& expected) {
  CAPTURE(what);
  REQUIRE(got.defined());
  REQUIRE(got.shape() == expected.shape());
  const auto& a = got.to(kFloat64).data<double>();
  const auto& b = expected.data<double>();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]) / (1.0 + std::abs(b.data()[i])));
  CAPTURE(worst);
  CHECK(worst <= 1e-10);
}

}  // namespace

TEST_CASE("layer ops match PyTorch: outputs, gradients and second derivatives in float64") {
  const auto path = data_dir() / "torch_ops_reference.safetensors";
  std::map<std::string, Tensor> ref;
  for (auto& [name, t] : load_safetensors(path.string())) ref[name] = t;
  const auto table = cases();
  CHECK(table.size() == 26);
  for (const auto& entry : table) {
    const auto& name = entry.first;  // not a structured binding: clang 14 cannot capture one in CAPTURE
    const auto& fn = entry.second;
    CAPTURE(name);
    std::vector<Tensor> inputs;
    for (std::size_t i = 0; ref.count(name + ".in" + std::to_string(i)); ++i) {
      Tensor t = ref.at(name + ".in" + std::to_string(i)).clone().detach();
      t.requires_grad_();
      inputs.push_back(t);
    }
    REQUIRE(!inputs.empty());
    Tensor y = fn(inputs);
    check_close(name + " output", y, ref.at(name + ".out"));
    const auto grads = autograd::grad({y}, inputs, {ref.at(name + ".w")}, std::nullopt, true, true);
    Tensor total;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::string k = std::to_string(i);
      Tensor g = grads[i].defined() ? grads[i] : zeros_like(inputs[i]);
      check_close(name + " grad " + k, g, ref.at(name + ".grad" + k));
      if (g.requires_grad()) {
        Tensor term = (g * ref.at(name + ".v" + k)).sum();
        total = total.defined() ? total + term : term;
      }
    }
    // Second derivatives; none at all (every gradient constant) means zeros, as PyTorch's are.
    const auto ggs = total.defined() ? autograd::grad({total}, inputs, {}, std::nullopt, false, true) : std::vector<Tensor>(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::string k = std::to_string(i);
      check_close(name + " second derivative " + k, ggs[i].defined() ? ggs[i] : zeros_like(inputs[i]), ref.at(name + ".gg" + k));
    }
  }
}

TEST_CASE("batch_norm's running statistics match PyTorch's after a training step") {
  const auto path = data_dir() / "torch_ops_reference.safetensors";
  std::map<std::string, Tensor> ref;
  for (auto& [name, t] : load_safetensors(path.string())) ref[name] = t;
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  F::batch_norm(ref.at("bn_running.x"), rm, rv, {}, {}, true, 0.3);
  check_close("running_mean", rm, ref.at("bn_running.mean"));
  check_close("running_var", rv, ref.at("bn_running.var"));
}
