// The CNN modules: Conv1d/Conv2d (shapes, PyTorch's init bounds, padding modes), pooling modules,
// BatchNorm/LayerNorm/GroupNorm, Embedding, the activation modules, Dropout2d, Unflatten; state-dict
// names as PyTorch's; nn::summary; Fashion-MNIST as N×1×28×28.
#include <doctest/doctest.h>

#include <cmath>

#include <xgrad.hpp>

#include "helpers.hpp"
#include "error_checks.hpp"

using namespace xgrad;
using test::check_error;
using test::check_values;

namespace {
std::vector<std::string> keys(const nn::StateDict& d) {
  std::vector<std::string> k;
  for (const auto& [name, t] : d) k.push_back(name);
  return k;
}
double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.data<float>()) m = std::max(m, static_cast<double>(std::abs(v)));
  return m;
}
}  // namespace

TEST_CASE("Conv2d and Conv1d: shapes, PyTorch's default init bounds, options") {
  manual_seed(0);
  nn::Conv2d conv(4, 8, 3, {.padding = 1});
  CHECK(conv.weight.shape() == Shape{8, 4, 3, 3});
  CHECK(conv.bias.shape() == Shape{8});
  // kaiming_uniform(a = √5) gives U(±1/√fan_in), fan_in = 4·3·3 = 36: bound 1/6; the bias the same bound.
  CHECK(max_abs(conv.weight) <= 1.0 / 6.0);
  CHECK(max_abs(conv.weight) > 0.9 / 6.0);
  CHECK(max_abs(conv.bias) <= 1.0 / 6.0);
  CHECK(conv(zeros({2, 4, 5, 5})).shape() == Shape{2, 8, 5, 5});
  CHECK(conv(zeros({4, 5, 5})).shape() == Shape{8, 5, 5});
  nn::Conv2d dw(6, 6, {3, 1}, {.stride = {2, 1}, .groups = 6, .bias = false});
  CHECK(dw.weight.shape() == Shape{6, 1, 3, 1});
  CHECK_FALSE(dw.bias.defined());
  CHECK(dw(zeros({1, 6, 7, 4})).shape() == Shape{1, 6, 3, 4});
  nn::Conv1d c1(2, 3, 5, {.padding = nn::same, .dilation = 2});
  CHECK(c1(zeros({4, 2, 9})).shape() == Shape{4, 3, 9});
  // padding_mode reflect pads the input, then convolves without padding: a ones kernel of 3 over reflect-padded
  // [1, 2, 3] = [2, 1, 2, 3, 2] gives [5, 6, 7].
  nn::Conv1d r(1, 1, 3, {.padding = 1, .bias = false, .padding_mode = nn::functional::PadMode::Reflect});
  nn::init::ones_(r.weight);
  check_values(r(tensor({1.0, 2.0, 3.0}).reshape({1, 1, 3})), {1, 1, 3}, {5, 6, 7}, 1e-6);
  // padding same with reflect: PyTorch pads d·(k-1) in total, the odd element after. k = 3: (1, 1), reflect of
  // [1, 2, 3, 4] is [2, 1, 2, 3, 4, 3], window sums [5, 6, 9, 10]; k = 2: (0, 1), [1, 2, 3, 4, 3] -> [3, 5, 7, 7].
  Tensor x4 = tensor({1.0, 2.0, 3.0, 4.0}).reshape({1, 1, 4});
  nn::Conv1d s3(1, 1, 3, {.padding = nn::same, .bias = false, .padding_mode = nn::functional::PadMode::Reflect});
  nn::init::ones_(s3.weight);
  check_values(s3(x4), {1, 1, 4}, {5, 6, 9, 10}, 1e-6);
  nn::Conv2d s2(1, 1, {1, 2}, {.padding = nn::same, .bias = false, .padding_mode = nn::functional::PadMode::Reflect});
  nn::init::ones_(s2.weight);
  check_values(s2(x4.reshape({1, 1, 1, 4})), {1, 1, 1, 4}, {3, 5, 7, 7}, 1e-6);
  check_error([] { nn::Conv2d(3, 4, 3, {.groups = 2}); }, {"Conv2d", "groups=2"});
  check_error([] { nn::Conv2d(4, 4, 3, {.stride = 2, .padding = nn::same}); }, {"Conv2d", "'same'"});
  check_error([&] { conv(zeros({2, 3, 5, 5})); }, {"conv2d", "input channels 3", "weight channels 4"});
}

TEST_CASE("CNN modules: state-dict names as PyTorch's, to(Float64), summary shows shapes and parameter counts") {
  manual_seed(0);
  nn::Sequential model;
  model.push_back(std::make_shared<nn::Conv2d>(1, 4, 3, nn::Conv2dOptions{.padding = 1}));
  model.push_back(std::make_shared<nn::BatchNorm2d>(4));
  model.push_back(std::make_shared<nn::ReLU>());
  model.push_back(std::make_shared<nn::MaxPool2d>(2));
  model.push_back(std::make_shared<nn::Dropout2d>(0.1));
  model.push_back(std::make_shared<nn::AvgPool2d>(2, nn::functional::AvgPool2dArgs{.stride = 1}));
  model.push_back(std::make_shared<nn::AdaptiveAvgPool2d>(2));
  model.push_back(std::make_shared<nn::Flatten>());
  model.push_back(std::make_shared<nn::Linear>(16, 6));
  model.push_back(std::make_shared<nn::LayerNorm>(std::vector<std::size_t>{6}));
  model.push_back(std::make_shared<nn::GELU>());
  model.push_back(std::make_shared<nn::Unflatten>(1, std::vector<std::int64_t>{2, 3}));
  model.push_back(std::make_shared<nn::GroupNorm>(1, 2));
  model.push_back(std::make_shared<nn::SiLU>());
  model.push_back(std::make_shared<nn::ELU>());
  model.push_back(std::make_shared<nn::Softplus>());
  CHECK(keys(model.state_dict()) ==
        std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                 "1.num_batches_tracked", "8.weight", "8.bias", "9.weight", "9.bias", "12.weight",
                                 "12.bias"});
  Tensor y = model(randn({3, 1, 8, 8}));
  CHECK(y.shape() == Shape{3, 2, 3});
  const std::string s = nn::summary(model);
  CAPTURE(s);
  CHECK(s.find("0 (Conv2d)") != std::string::npos);
  CHECK(s.find("[3, 4, 8, 8]") != std::string::npos);
  CHECK(s.find("3 (MaxPool2d)") != std::string::npos);
  CHECK(s.find("[3, 4, 4, 4]") != std::string::npos);
  CHECK(s.find("1 (BatchNorm2d)") != std::string::npos);
  CHECK(s.find("12 (GroupNorm)") != std::string::npos);
  // Conv 4·1·9 + 4 = 40, BatchNorm 8, Linear 16·6 + 6 = 102, LayerNorm 12, GroupNorm 4: 166.
  CHECK(s.find("Total params: 166") != std::string::npos);
  model.to(kFloat64);
  CHECK(model(randn({2, 1, 8, 8}, kFloat64)).dtype() == kFloat64);
  CHECK(model.state_dict().at("1.num_batches_tracked").dtype() == kFloat64);
}

TEST_CASE("Dropout2d zeroes whole channels in training and is the identity in eval") {
  manual_seed(1);
  nn::Dropout2d d(0.5);
  Tensor x = ones({4, 8, 3, 3});
  Tensor y = d(x);
  const auto& v = y.data<float>();
  std::size_t dropped = 0;
  for (std::size_t n = 0; n < 4; ++n)
    for (std::size_t c = 0; c < 8; ++c) {
      const float first = v(n, c, 0, 0);
      CHECK((first == 0.f || first == 2.f));  // kept channels are scaled by 1/(1-p)
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j) CHECK(v(n, c, i, j) == first);
      dropped += first == 0.f;
    }
  CHECK(dropped > 0);
  CHECK(dropped < 32);
  d.eval();
  CHECK(d(x).is_same(x));
  check_error([] { nn::Dropout2d(1.0); }, {"Dropout2d", "p"});
  check_error([&] { d.train(); d(ones({3, 3})); }, {"Dropout2d", "[3, 3]"});
}

TEST_CASE("Embedding module: N(0,1) init with the padding row zeroed, lookup, padding_idx") {
  manual_seed(0);
  nn::Embedding e(5, 3, {.padding_idx = 1});
  check_values(e.weight.slice(0, 1, 2), {1, 3}, {0, 0, 0}, 0);
  Tensor y = e(tensor({{1.0, 4.0}}));
  CHECK(y.shape() == Shape{1, 2, 3});
  y.sum().backward();
  check_values(e.weight.grad().slice(0, 1, 2), {1, 3}, {0, 0, 0}, 0);
  check_values(e.weight.grad().slice(0, 4, 5), {1, 3}, {1, 1, 1}, 0);
  CHECK(keys(e.state_dict()) == std::vector<std::string>{"weight"});
}

TEST_CASE("Unflatten: expands one dim, -1 inferred, errors name the sizes") {
  CHECK(nn::Unflatten(1, {2, -1})(zeros({3, 12})).shape() == Shape{3, 2, 6});
  CHECK(nn::Unflatten(-1, {1, 28, 28})(zeros({5, 784})).shape() == Shape{5, 1, 28, 28});
  check_error([] { nn::Unflatten(1, {5, 5})(zeros({3, 12})); }, {"Unflatten", "[5, 5]", "12"});
}

TEST_CASE("data: load_fashion_mnist with flatten = false gives N x 1 x 28 x 28") {
  const data::Split split = data::load_fashion_mnist("/usr/share/datasets/fashion-mnist", {.flatten = false});
  CHECK(split.train.inputs().shape() == Shape{60000, 1, 28, 28});
  CHECK(split.test.inputs().shape() == Shape{10000, 1, 28, 28});
  // The same pixels as the flattened form, in the same order.
  const data::Split flat = data::load_fashion_mnist();
  const auto& a = split.test.inputs().data<float>();
  const auto& b = flat.test.inputs().data<float>();
  bool same = a.size() == b.size();
  for (std::size_t i = 0; same && i < a.size(); i += 101) same = a.data()[i] == b.data()[i];
  CHECK(same);
}
