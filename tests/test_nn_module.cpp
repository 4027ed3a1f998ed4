#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include <xgrad.hpp>

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

// fc1 -> relu -> fc2, times a buffer.
struct Net : nn::Module {
  Net() {
    scale = register_buffer("scale", full({2}, 2.0));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 3));
    act = register_module("act", std::make_shared<nn::ReLU>());
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(3, 2));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)((*act)((*fc1)(x))) * scale; }
  Tensor scale;
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::ReLU> act;
};

// Exposes the protected registration calls for error tests.
struct Open : nn::Module {
  Tensor forward(const Tensor& x) override { return x; }
  using nn::Module::register_buffer;
  using nn::Module::register_module;
  using nn::Module::register_parameter;
};

std::vector<std::string> names_of(const nn::NamedTensorList& list) {
  std::vector<std::string> out;
  for (const auto& [name, t] : list) out.push_back(name);
  return out;
}

template <class T>
bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.data<T>().data(), b.data<T>().data(), a.numel() * sizeof(T)) == 0;
}

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() / ("xgrad_nn_" + std::to_string(::getpid()) + "_" + name)).string();
}

}  // namespace

TEST_CASE("nn::Module: parameters, buffers and children in registration order with dotted names") {
  Net net;
  CHECK(names_of(net.named_parameters()) ==
        std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(net.parameters(false).empty());
  CHECK(names_of(net.fc1->named_parameters(false)) == std::vector<std::string>{"weight", "bias"});
  CHECK(names_of(net.named_buffers()) == std::vector<std::string>{"scale"});
  // The handles are the modules' own tensors, not copies.
  CHECK(net.parameters()[0].is_same(net.fc1->weight));
  CHECK(net.parameters()[3].is_same(net.fc2->bias));
  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
  CHECK_FALSE(net.scale.requires_grad());

  REQUIRE(net.named_children().size() == 3);
  CHECK(net.named_children()[0].first == "fc1");
  CHECK(net.named_children()[1].first == "act");
  CHECK(net.named_children()[2].first == "fc2");
  CHECK(net.children()[1].get() == net.act.get());
  CHECK(net.type_name() == "Net");
  CHECK(net.fc1->type_name() == "Linear");

  // A module registered twice contributes its parameters once.
  Open shared;
  auto lin = std::make_shared<nn::Linear>(2, 2);
  shared.register_module("a", lin);
  shared.register_module("b", lin);
  CHECK(names_of(shared.named_parameters()) == std::vector<std::string>{"a.weight", "a.bias"});
  CHECK(shared.state_dict().size() == 4);  // the state dict lists every name, as PyTorch's does
}

TEST_CASE("nn::Module: bad registrations throw and register nothing") {
  Open m;
  m.register_parameter("w", zeros({2}));
  CHECK_THROWS_WITH_AS(m.register_parameter("w", zeros({2})), doctest::Contains("already taken by a parameter"), Error);
  CHECK_THROWS_WITH_AS(m.register_buffer("w", zeros({2})), doctest::Contains("register_buffer(\"w\")"), Error);
  CHECK_THROWS_WITH_AS(m.register_module("w", std::make_shared<nn::ReLU>()), doctest::Contains("already taken"), Error);
  CHECK_THROWS_WITH_AS(m.register_parameter("a.b", zeros({2})), doctest::Contains("must not contain '.'"), Error);
  CHECK_THROWS_WITH_AS(m.register_module("x.y", std::make_shared<nn::ReLU>()), doctest::Contains("'.'"), Error);
  CHECK_THROWS_WITH_AS(m.register_parameter("", zeros({2})), doctest::Contains("must not be empty"), Error);
  CHECK_THROWS_WITH_AS(m.register_module("n", std::shared_ptr<nn::ReLU>()), doctest::Contains("null"), Error);
  CHECK_THROWS_WITH_AS(m.register_parameter("u", Tensor()), doctest::Contains("undefined"), Error);
  Tensor leaf = ones({2}, kFloat32);
  leaf.requires_grad_();
  CHECK_THROWS_WITH_AS(m.register_parameter("nonleaf", leaf * 2.0), doctest::Contains("leaf"), Error);
  m.register_buffer("b", zeros({1}));
  CHECK_THROWS_WITH_AS(m.register_parameter("b", zeros({2})), doctest::Contains("already taken by a buffer"), Error);
  CHECK(m.parameters().size() == 1);
  CHECK(m.buffers().size() == 1);
  CHECK(m.named_children().empty());
}

TEST_CASE("nn::Module: train/eval propagate, zero_grad drops gradients") {
  auto inner = std::make_shared<nn::Sequential>(std::make_shared<nn::Dropout>(0.5), std::make_shared<nn::ReLU>());
  nn::Sequential outer{std::make_shared<nn::Linear>(2, 2), inner};
  CHECK(outer.is_training());
  outer.eval();
  CHECK_FALSE(outer.is_training());
  CHECK_FALSE(inner->is_training());
  CHECK_FALSE((*inner)[0]->is_training());
  outer.train();
  CHECK((*inner)[0]->is_training());

  Net net;
  net(ones({5, 4})).sum().backward();
  for (const Tensor& p : net.parameters()) CHECK(p.grad().defined());
  net.zero_grad();
  for (const Tensor& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("nn::Module: to(Float64) converts in place, seen through earlier handles") {
  Net net;
  std::vector<Tensor> params = net.parameters();  // e.g. held by an optimizer
  Tensor weight_before = net.fc1->weight.clone();
  net(ones({1, 4})).sum().backward();
  net.to(kFloat64);
  for (const Tensor& p : params) {
    CHECK(p.dtype() == kFloat64);
    CHECK(p.requires_grad());
    CHECK_FALSE(p.grad().defined());  // the float32 gradient is dropped
  }
  CHECK(net.fc1->weight.dtype() == kFloat64);
  CHECK(net.scale.dtype() == kFloat64);  // buffers too
  CHECK(params[0].is_same(net.fc1->weight));
  for (std::size_t i = 0; i < weight_before.numel(); ++i)  // float -> double is exact
    CHECK(net.fc1->weight.data<double>().data()[i] == static_cast<double>(weight_before.data<float>().data()[i]));
  // The model now runs (and trains) in float64.
  Tensor y = net(ones({3, 4}, kFloat64));
  CHECK(y.dtype() == kFloat64);
  y.sum().backward();
  CHECK(params[0].grad().dtype() == kFloat64);
  CHECK_THROWS_AS(net(ones({3, 4})), Error);  // float32 input into a float64 model
  net.to(kFloat32);
  CHECK(params[2].dtype() == kFloat32);
}

TEST_CASE("nn::Module: state_dict order, StateDict access, and a bit-identical save/load") {
  manual_seed(1);
  Net a;
  nn::StateDict sd = a.state_dict();
  // Per module: parameters, then buffers, then the children.
  CHECK(sd.keys() == std::vector<std::string>{"scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(sd.size() == 5);
  CHECK(sd.contains("fc2.bias"));
  CHECK_FALSE(sd.contains("fc3.bias"));
  CHECK_THROWS_WITH_AS(sd.at("fc3.bias"), doctest::Contains("'fc3.bias'"), Error);
  CHECK_THROWS_WITH_AS(sd.insert("scale", ones({1})), doctest::Contains("duplicate key 'scale'"), Error);
  CHECK_FALSE(sd.at("fc1.weight").requires_grad());
  std::size_t numel = 0;
  for (const auto& [name, t] : sd) numel += t.numel();
  CHECK(numel == 2 + (4 * 3 + 3) + (3 * 2 + 2));

  const std::string path = temp_file("net.safetensors");
  a.save(path);
  manual_seed(2);
  Net b;
  CHECK_FALSE(bit_identical<float>(a.fc1->weight, b.fc1->weight));
  b.load(path);
  for (const auto& [name, t] : a.state_dict()) {
    const auto& label = name;  // CAPTURE cannot capture a structured binding before clang 16
    CAPTURE(label);
    CHECK(bit_identical<float>(t, b.state_dict().at(name)));
  }
  // b's member handles were updated in place.
  CHECK(bit_identical<float>(a.fc2->bias, b.fc2->bias));
  // And the file holds exactly the state dict.
  NamedTensors file = load_safetensors(path);
  REQUIRE(file.size() == 5);
  CHECK(file[1].first == "fc1.weight");
  CHECK(bit_identical<float>(file[1].second, a.fc1->weight));
  fs::remove(path);

  // Same outputs after loading.
  Tensor x = randn({2, 4});
  CHECK(bit_identical<float>(a(x), b(x)));
}

TEST_CASE("nn::Module: a strict load names every bad key and changes nothing") {
  Net net;
  std::vector<Tensor> originals;
  for (const Tensor& p : net.parameters()) originals.push_back(p.clone());

  nn::StateDict bad;
  bad.insert("scale", full({2}, 5.0));          // fine, would be copied
  bad.insert("fc1.weight", zeros({4, 3}));      // transposed shape
  bad.insert("fc1.bias", zeros({3}));           // fine
  bad.insert("fc2.weight", zeros({2, 3}));      // fine
  bad.insert("extra.weight", zeros({1}));       // unexpected; fc2.bias is missing
  try {
    net.load_state_dict(bad);
    FAIL("load_state_dict accepted a bad state dict");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.find("missing keys: \"fc2.bias\"") != std::string::npos);
    CHECK(msg.find("unexpected keys: \"extra.weight\"") != std::string::npos);
    CHECK(msg.find("\"fc1.weight\" has shape [4, 3] in the state dict but [3, 4] in the model") != std::string::npos);
  }
  const auto params = net.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) CHECK(bit_identical<float>(params[i], originals[i]));
  CHECK(net.scale.data<float>()(0) == 2.0f);  // the valid entries were not applied either

  // Non-strict: missing and unexpected keys are reported, the rest is loaded.
  nn::StateDict partial;
  partial.insert("fc1.bias", full({3}, 0.25));
  partial.insert("other", zeros({1}));
  nn::LoadStateDictResult r = net.load_state_dict(partial, false);
  CHECK(r.missing_keys == std::vector<std::string>{"scale", "fc1.weight", "fc2.weight", "fc2.bias"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"other"});
  CHECK(net.fc1->bias.data<float>()(2) == 0.25f);
  // A shape mismatch is an error even when not strict.
  nn::StateDict mismatched;
  mismatched.insert("fc1.bias", zeros({4}));
  CHECK_THROWS_WITH_AS(net.load_state_dict(mismatched, false), doctest::Contains("\"fc1.bias\" has shape [4]"), Error);
  CHECK(net.fc1->bias.data<float>()(2) == 0.25f);

  // Values of another dtype are converted into the model's dtype.
  nn::StateDict f64 = Net().state_dict();
  nn::StateDict converted;
  for (const auto& [name, t] : f64) converted.insert(name, full(t.shape(), 0.5, kFloat64));
  net.load_state_dict(converted);
  CHECK(net.fc2->weight.dtype() == kFloat32);
  CHECK(net.fc2->weight.data<float>()(1, 2) == 0.5f);

  // load(path) of a file for another architecture names the file and the keys.
  const std::string path = temp_file("other.safetensors");
  nn::Linear(3, 3).save(path);
  CHECK_THROWS_WITH_AS(net.load(path), doctest::Contains("missing keys"), Error);
  CHECK_THROWS_WITH_AS(net.load(path), doctest::Contains(path.c_str()), Error);
  fs::remove(path);
}

TEST_CASE("nn::Module: printing the tree like PyTorch") {
  nn::Sequential seq{std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
                     std::make_shared<nn::Dropout>(0.25), std::make_shared<nn::Linear>(256, 10, false)};
  std::ostringstream os;
  os << seq;
  CHECK(os.str() ==
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=256, bias=true)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.25)\n"
        "  (3): Linear(in_features=256, out_features=10, bias=false)\n"
        ")");

  // Nested modules are indented by two more spaces per level.
  auto block = std::make_shared<nn::Sequential>(std::make_shared<nn::LeakyReLU>(0.2), std::make_shared<nn::Softmax>(1));
  nn::Sequential outer{std::make_shared<nn::Flatten>(), block, std::make_shared<nn::Identity>()};
  CHECK(nn::to_string(outer) ==
        "Sequential(\n"
        "  (0): Flatten(start_dim=1, end_dim=-1)\n"
        "  (1): Sequential(\n"
        "    (0): LeakyReLU(negative_slope=0.2)\n"
        "    (1): Softmax(dim=1)\n"
        "  )\n"
        "  (2): Identity()\n"
        ")");
  CHECK(nn::to_string(Net()) ==
        "Net(\n"
        "  (fc1): Linear(in_features=4, out_features=3, bias=true)\n"
        "  (act): ReLU()\n"
        "  (fc2): Linear(in_features=3, out_features=2, bias=true)\n"
        ")");
  CHECK(nn::to_string(nn::MSELoss()) == "MSELoss()");
  CHECK(nn::to_string(nn::CrossEntropyLoss(nn::Reduction::Sum)) == "CrossEntropyLoss(reduction=sum)");
}

TEST_CASE("nn::Sequential: construction, indexing, forward") {
  auto seq = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::Tanh>());
  CHECK(seq->size() == 2);
  seq->push_back(std::make_shared<nn::Linear>(4, 1));
  CHECK(seq->size() == 3);
  CHECK(seq->named_children()[2].first == "2");
  CHECK(names_of(seq->named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(seq->at<nn::Linear>(2)->in_features == 4);
  CHECK((*seq)[1]->type_name() == "Tanh");
  CHECK_THROWS_WITH_AS((*seq)[3], doctest::Contains("Sequential[3]: index out of range for a Sequential of 3"), Error);
  CHECK_THROWS_WITH_AS(seq->at<nn::Linear>(1), doctest::Contains("is a Tanh"), Error);
  CHECK_THROWS_WITH_AS(seq->push_back(nullptr), doctest::Contains("null"), Error);
  CHECK_THROWS_AS((nn::Sequential{std::make_shared<nn::ReLU>(), nullptr}), Error);

  // forward = the modules composed in order.
  Tensor x = randn({5, 3});
  auto l0 = seq->at<nn::Linear>(0), l2 = seq->at<nn::Linear>(2);
  Tensor expected = linear(tanh(linear(x, l0->weight, l0->bias)), l2->weight, l2->bias);
  Tensor y = (*seq)(x);
  CHECK(y.shape() == Shape{5, 1});
  CHECK(bit_identical<float>(y, expected));

  nn::Sequential empty;
  CHECK(empty(x).is_same(x));
}

TEST_CASE("nn::Sequential: modules given by value, no make_shared") {
  // Each module is moved into a shared_ptr of its own type: the same children, names and state_dict
  // keys as the make_shared form, and the moved-in parameters are the ones the Sequential trains.
  nn::Linear first(3, 4);
  Tensor w0 = first.weight;
  nn::Sequential seq(std::move(first), nn::ReLU(), nn::Linear(4, 2));
  nn::Sequential old{std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(4, 2)};
  CHECK(seq.size() == 3);
  CHECK(seq[1]->type_name() == "ReLU");
  CHECK(seq.at<nn::Linear>(2)->out_features == 2);
  CHECK(seq.at<nn::Linear>(0)->weight.is_same(w0));
  CHECK(names_of(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(seq.state_dict().keys() == old.state_dict().keys());
  CHECK(seq.state_dict().keys() == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});

  // Values and shared pointers mixed; a shared_ptr is kept as given (not copied).
  auto shared_tanh = std::make_shared<nn::Tanh>();
  nn::Sequential mixed(nn::Linear(2, 2), shared_tanh);
  CHECK(mixed[1] == shared_tanh);
  CHECK(mixed[0]->type_name() == "Linear");

  Tensor x = randn({5, 3});
  auto l0 = seq.at<nn::Linear>(0), l2 = seq.at<nn::Linear>(2);
  CHECK(bit_identical<float>(seq(x), linear(relu(linear(x, l0->weight, l0->bias)), l2->weight, l2->bias)));
}
