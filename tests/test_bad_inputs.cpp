// The bad-input catalogue: every public entry point of autograd/, nn/, optim/ and data/ called with
// invalid arguments. Each case asserts
//   - an xgrad::Error (never a crash, never std::bad_alloc from a bogus size, never another type),
//   - a message naming the function and the bad value (the fragments listed with the case),
//   - the objects involved left exactly as they were (tensors, models, optimizers compared bitwise).
// Each TEST_CASE reports how many cases it ran; the total is the catalogue's size.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

int g_cases = 0;

// Runs `call`, which must throw an xgrad::Error whose message contains every fragment.
template <class F>
void expect_error(const char* label, F&& call, std::initializer_list<const char*> fragments) {
  ++g_cases;
  const std::string label_text = label;
  INFO("case: " << label_text);
  try {
    call();
    FAIL_CHECK("no exception was thrown");
  } catch (const Error& e) {
    const std::string what = e.what();
    INFO("message: " << what);
    for (const char* f : fragments) {
      const std::string fragment = f;
      CHECK_MESSAGE(what.find(fragment) != std::string::npos, "the message lacks '" << fragment << "'");
    }
  } catch (const std::bad_alloc&) {
    FAIL_CHECK("std::bad_alloc instead of xgrad::Error");
  } catch (const std::exception& e) {
    const std::string what = e.what();
    FAIL_CHECK("not an xgrad::Error: " << what);
  }
}
#define BAD(call, ...) expect_error(#call, [&] { (void)(call); }, {__VA_ARGS__})

// Everything observable about tensors, as bytes: dtype, shape, values, requires_grad, grad.
std::string fingerprint(const std::vector<Tensor>& tensors) {
  std::string out;
  auto add_tensor = [&](const Tensor& t) {
    if (!t.defined()) {
      out += "undef;";
      return;
    }
    out += std::string(dtype_name(t.dtype())) + shape_str(t.shape()) + (t.requires_grad() ? "g" : "n");
    const char* p = t.dtype() == kFloat32 ? reinterpret_cast<const char*>(t.data<float>().data())
                                          : reinterpret_cast<const char*>(t.data<double>().data());
    out.append(p, t.numel() * itemsize(t.dtype()));
    out += ';';
  };
  for (const Tensor& t : tensors) {
    add_tensor(t);
    out += "grad:";
    if (t.defined()) add_tensor(t.grad());
  }
  return out;
}
std::string fingerprint(const Tensor& t) { return fingerprint(std::vector<Tensor>{t}); }
std::string fingerprint(const nn::Module& m) {
  std::vector<Tensor> all = m.parameters();
  for (const Tensor& b : m.buffers()) all.push_back(b);
  std::string names;
  for (const auto& [name, t] : m.named_parameters()) names += name + ",";
  return names + fingerprint(all);
}
std::string fingerprint(const optim::Optimizer& opt) {
  std::string out = std::to_string(opt.lr()) + "|";
  for (const auto& [name, t] : opt.state_dict()) out += name + "=" + fingerprint(t);
  return out + "|params:" + fingerprint(opt.parameters());
}

// Asserts that `obj` is bitwise the same after every case run inside `body`.
#define UNCHANGED(obj, body)                                       \
  do {                                                             \
    const std::string before_ = fingerprint(obj);                  \
    body;                                                          \
    CHECK_MESSAGE(fingerprint(obj) == before_, #obj " changed"); \
  } while (0)

std::shared_ptr<nn::Sequential> small_mlp() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, 3), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(3, 2)});
}

// A module exposing the protected registry calls.
struct Probe : nn::Module {
  Tensor forward(const Tensor& x) override { return x; }
  using nn::Module::register_buffer;
  using nn::Module::register_module;
  using nn::Module::register_parameter;
};

// A scratch directory for file cases, removed at the end of the test case.
struct Scratch {
  fs::path dir;
  Scratch() {
    dir = fs::temp_directory_path() / ("xgrad_bad_inputs_" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name, const std::string& content) const {
    const fs::path p = dir / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

constexpr std::size_t kHuge = std::size_t{1} << 62;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct WrongCount : autograd::Function<WrongCount> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) { return {g[0], g[0]}; }
};
struct WrongShape : autograd::Function<WrongShape> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor>) { return {ones({7})}; }
};

}  // namespace

// ---- autograd: factories ------------------------------------------------------------------------

TEST_CASE("bad inputs: factories refuse bogus sizes before allocating") {
  g_cases = 0;
  BAD(zeros({kHuge}), "zeros", "4611686018427387904");
  BAD(zeros({kHuge}, kFloat64), "zeros", "4611686018427387904");
  BAD(ones({std::size_t{1} << 40, std::size_t{1} << 40}), "ones", "1099511627776");  // numel overflows 64 bits
  BAD(full({kHuge}, 1.0), "full", "4611686018427387904");
  BAD(empty({kHuge}), "empty", "4611686018427387904");
  BAD(rand({kHuge}), "rand", "4611686018427387904");
  BAD(randn({kHuge}), "randn", "4611686018427387904");
  BAD(randint(0, 10, {kHuge}), "randint", "4611686018427387904");
  BAD(randint(5, 5, {3}), "randint", "[5, 5)");
  BAD(randint(5, 2, {3}), "randint", "[5, 2)");
  BAD(randperm(kHuge), "randperm", "4611686018427387904");
  BAD(eye(std::size_t{1} << 40), "eye", "1099511627776");
  BAD(eye(3, kHuge), "eye", "4611686018427387904");
  BAD(arange(-1), "arange", "-1");
  BAD(arange(0.0, 1.0, 0.0), "arange", "step", "0");
  BAD(arange(0.0, 1.0, kNaN), "arange", "nan");
  BAD(arange(1.0, 0.0, 1.0), "arange", "inconsistent");
  BAD(arange(0.0, 1e30, 1.0), "arange", "1e+30");
  BAD(arange(kNaN, 1.0, 1.0), "arange", "nan");
  BAD(arange(0.0, std::numeric_limits<double>::infinity(), 1.0), "arange", "inf");
  BAD(tensor({{1.0, 2.0}, {3.0}}), "tensor", "ragged");
  BAD(zeros_like(Tensor()), "undefined");
  BAD(set_num_threads(0), "set_num_threads", "0");
  MESSAGE(g_cases, " cases");
}

// ---- autograd: Tensor methods -------------------------------------------------------------------

TEST_CASE("bad inputs: Tensor methods") {
  g_cases = 0;
  Tensor undef;
  BAD(undef.shape(), "shape", "undefined");
  BAD(undef.numel(), "numel", "undefined");
  BAD(undef.dtype(), "dtype", "undefined");
  BAD(undef.item(), "item", "undefined");
  BAD(undef.backward(), "backward", "undefined");
  BAD(undef.clone(), "clone", "undefined");
  BAD(undef.detach(), "detach", "undefined");
  BAD(undef.to(kFloat64), "to", "undefined");

  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat32, true);
  UNCHANGED(x, {
    BAD(x.item(), "item", "3 elements");
    BAD(x.data<double>(), "data<float64>", "float32");
    BAD(x.size(1), "size", "1");
    BAD(x.size(-2), "size", "-2");
    BAD(x.set_grad(ones({2})), "set_grad", "[2]", "[3]");
    BAD(x.set_grad(ones({3}, kFloat64)), "set_grad", "float64");
    BAD(x.backward(), "backward", "[3]");
    BAD(x.backward(ones({4})), "backward", "[4]", "[3]");
    BAD(x.backward(ones({3}, kFloat64)), "backward", "float64");
  });
  Tensor y = x * 2.0;
  UNCHANGED(y, BAD(y.requires_grad_(false), "requires_grad_(false)", "MulBackward"));
  Tensor c = tensor({1.0});
  UNCHANGED(c, {
    BAD(c.backward(), "backward", "does not require grad");
    BAD(c.retain_grad(), "retain_grad", "does not require grad");
    BAD(c.register_hook([](const Tensor& g) { return g; }), "register_hook", "doesn't require gradient");
  });

  // A second backward through a released graph.
  Tensor z = (x * x).sum();
  z.backward();
  const std::string grad_after_first = fingerprint(x);
  BAD(z.backward(), "MulBackward", "second time");
  CHECK(fingerprint(x) == grad_after_first);
  MESSAGE(g_cases, " cases");
}

// ---- autograd: ops --------------------------------------------------------------------------------

TEST_CASE("bad inputs: elementwise ops") {
  g_cases = 0;
  Tensor a = ones({2, 3}).requires_grad_();
  Tensor b = ones({4});
  Tensor d = ones({2, 3}, kFloat64);
  Tensor undef;
  UNCHANGED(a, {
    BAD(add(a, b), "add", "[2, 3]", "[4]");
    BAD(a + b, "add", "[2, 3]", "[4]");
    BAD(sub(a, b), "sub", "[2, 3]", "[4]");
    BAD(mul(a, b), "mul", "[2, 3]", "[4]");
    BAD(div(a, b), "div", "[2, 3]", "[4]");
    BAD(add(a, d), "add", "float32", "float64");
    BAD(mul(a, d), "mul", "float32", "float64");
    BAD(add(a, undef), "add", "undefined");
    BAD(exp(undef), "exp", "undefined");
    BAD(log(undef), "log", "undefined");
    BAD(relu(undef), "relu", "undefined");
    BAD(pow(a, b), "pow", "[2, 3]", "[4]");
    BAD(pow(a, d), "pow", "float32", "float64");
    BAD(maximum(a, b), "maximum", "[2, 3]", "[4]");
    BAD(minimum(a, d), "minimum", "float32", "float64");
    BAD(where(ones({5}), a, a), "where", "[5]");
    BAD(where(ones({2, 3}), a, d), "where", "float");
    BAD(eq(a, b), "eq", "[2, 3]", "[4]");
    BAD(lt(a, d), "lt", "float32", "float64");
    BAD(clamp(undef, 0, 1), "clamp", "undefined");
  });
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: reductions") {
  g_cases = 0;
  Tensor a = ones({2, 3}).requires_grad_();
  Tensor empty_t = zeros({0});
  UNCHANGED(a, {
    BAD(sum(a, {2}), "sum", "2");
    BAD(sum(a, {-3}), "sum", "-3");
    BAD(sum(a, {0, 0}), "sum", "0");
    BAD(mean(a, {5}), "mean", "5");
    BAD(max(a, 2), "max", "2");
    BAD(min(a, -3), "min", "-3");
    BAD(argmax(a, 2), "argmax", "2");
    BAD(argmin(a, 7), "argmin", "7");
    BAD(logsumexp(a, 2), "logsumexp", "2");
    BAD(var(a, {3}), "var", "3");
    BAD(sum_to(a, {4}), "sum_to", "[4]");
    BAD(max(empty_t), "max", "[0]");
    BAD(min(empty_t), "min", "[0]");
    BAD(argmax(empty_t), "argmax", "[0]");
    BAD(max(zeros({2, 0}), 1), "max", "[2, 0]");
  });
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: linear algebra") {
  g_cases = 0;
  Tensor a = ones({2, 3}).requires_grad_();
  Tensor w = ones({4, 5});
  UNCHANGED(a, {
    BAD(matmul(a, w), "matmul", "[2, 3]", "[4, 5]");
    BAD(matmul(a, tensor(1.0)), "matmul", "[]");
    BAD(matmul(a, ones({3, 2}, kFloat64)), "matmul", "float64");
    BAD(matmul(ones({2, 2, 3}), ones({3, 3, 2})), "matmul", "[2]", "[3]");  // the batch dimensions
    BAD(mm(ones({3}), ones({3, 2})), "mm", "[3]");
    BAD(linear(a, ones({4, 5})), "linear", "[2, 3]", "[4, 5]");
    BAD(linear(a, ones({4, 3}), ones({5})), "linear", "[5]");
    BAD(linear(a, ones({4, 3}, kFloat64)), "linear", "float64");
    BAD(t(ones({2, 2, 2})), "t", "[2, 2, 2]");
  });
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: shape ops") {
  g_cases = 0;
  Tensor a = ones({2, 3}).requires_grad_();
  UNCHANGED(a, {
    BAD(reshape(a, {4, 2}), "reshape", "[4, 2]", "6");
    BAD(reshape(a, {-1, -1}), "reshape", "-1");
    BAD(reshape(a, {-2, 3}), "reshape", "-2");
    BAD(reshape(a, {static_cast<std::int64_t>(kHuge), 4}), "reshape", "4611686018427387904");
    BAD(flatten(a, 2), "flatten", "2");
    BAD(flatten(a, 1, 0), "flatten", "1", "0");
    BAD(transpose(a, 0, 2), "transpose", "2");
    BAD(permute(a, {0, 0}), "permute", "[0, 0]");
    BAD(permute(a, {0}), "permute", "[0]");
    BAD(permute(a, {0, 5}), "permute", "5");
    BAD(squeeze(a, 2), "squeeze", "2");
    BAD(unsqueeze(a, 4), "unsqueeze", "4");
    BAD(unsqueeze(a, -4), "unsqueeze", "-4");
    BAD(expand(a, {2, 4}), "expand", "[2, 4]");
    BAD(expand(a, {3}), "expand", "(1)", "[2, 3]");
    BAD(expand(a, {-1, 2, 3}), "expand", "-1");
    BAD(expand(ones({1}), {static_cast<std::int64_t>(kHuge)}), "expand", "4611686018427387904");
    BAD(expand(a, {2, -2}), "expand", "-2");
    BAD(slice(a, 1, 0, 2, 0), "slice", "step", "0");
    BAD(slice(a, 1, 0, 2, -1), "slice", "step", "-1");
    BAD(slice(a, 2, 0, 1), "slice", "2");
    BAD(index_select(a, 1, tensor({0.0, 3.0})), "index_select", "3");
    BAD(index_select(a, 1, tensor({-1.0})), "index_select", "-1");
    BAD(index_select(a, 1, tensor({0.5})), "index_select", "0.5");
    BAD(index_select(a, 1, ones({1, 1})), "index_select", "[1, 1]");
    BAD(index_select(a, 2, tensor({0.0})), "index_select", "2");
    BAD(index_select(a, 0, tensor({kNaN})), "index_select", "nan");
    BAD(cat({}, 0), "cat", "empty");
    BAD(cat({a, ones({2, 3, 1})}, 0), "cat", "[2, 3, 1]");
    BAD(cat({a, ones({3, 4})}, 0), "cat", "[3, 4]");
    BAD(cat({a, ones({2, 3}, kFloat64)}, 0), "cat", "float64");
    BAD(cat({a, a}, 2), "cat", "2");
    BAD(stack({}, 0), "stack", "empty");
    BAD(stack({a, ones({3, 2})}, 0), "stack", "[3, 2]");
    BAD(stack({a, a}, 3), "stack", "3");
    BAD(softmax(a, 2), "softmax", "2");
    BAD(log_softmax(a, -3), "log_softmax", "-3");
  });
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: fused losses") {
  g_cases = 0;
  Tensor logits = zeros({3, 4}).requires_grad_();
  UNCHANGED(logits, {
    BAD(cross_entropy_op(logits, tensor({0.0, 1.0, 4.0})), "cross_entropy", "4");
    BAD(cross_entropy_op(logits, tensor({0.0, 1.0, -1.0})), "cross_entropy", "-1");
    BAD(cross_entropy_op(logits, tensor({0.0, 1.5, 2.0})), "cross_entropy", "1.5");
    BAD(cross_entropy_op(logits, tensor({0.0, 1.0})), "cross_entropy", "[2]");
    BAD(cross_entropy_op(logits, tensor({0.0, 1.0, 2.0}, kFloat64)), "cross_entropy", "float64");
    BAD(cross_entropy_op(zeros({2, 3, 4}), tensor({0.0, 1.0})), "cross_entropy", "[2, 3, 4]");
    BAD(nll_loss_op(logits, tensor({0.0, 9.0, 2.0})), "nll_loss", "9");
    BAD(nll_loss_op(logits, tensor({0.0, 1.0, kNaN})), "nll_loss", "nan");
    BAD(bce_op(full({3}, 0.5), full({2}, 0.5)), "binary_cross_entropy", "[3]", "[2]");
    BAD(bce_op(full({3}, 1.5), full({3}, 0.5)), "binary_cross_entropy", "1.5");
    BAD(bce_with_logits_op(zeros({3}), zeros({4})), "binary_cross_entropy_with_logits", "[3]", "[4]");
  });
  MESSAGE(g_cases, " cases");
}

// ---- autograd: engine, grad, gradcheck, Function, safetensors ----------------------------------

TEST_CASE("bad inputs: autograd::grad and gradcheck and custom Functions") {
  g_cases = 0;
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor unused = tensor({1.0}, kFloat64, true);
  Tensor plain = tensor({1.0}, kFloat64);
  Tensor y = (x * x).sum();
  UNCHANGED(x, {
    BAD(autograd::grad({}, {x}), "autograd::grad", "no outputs");
    BAD(autograd::grad({y}, {}), "autograd::grad", "no inputs");
    BAD(autograd::grad({y}, {plain}), "autograd::grad", "input 0", "does not require grad");
    BAD(autograd::grad({y}, {x, unused}, {}, true), "autograd::grad", "input 1", "allow_unused");
    BAD(autograd::grad({y}, {x}, {ones({}), ones({})}, true), "backward", "2 gradients");
    BAD(autograd::grad({y}, {Tensor()}, {}, true), "autograd::grad", "undefined");
    BAD(autograd::backward({y}, {ones({3}, kFloat64)}, true), "backward", "[3]");
    BAD(gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {ones({2}).requires_grad_()}),
        "gradcheck", "float64");
    BAD(WrongCount::apply(x).sum().backward(), "WrongCount", "2");
    BAD(WrongShape::apply(x).sum().backward(), "WrongShape", "[7]");
  });
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: safetensors files") {
  g_cases = 0;
  Scratch s;
  const std::string good = s.path("good.safetensors");
  save_safetensors(good, {{"w", ones({2})}});
  BAD(save_safetensors(s.path("x"), {{"", ones({1})}}), "save_safetensors", "empty name");
  BAD(save_safetensors(s.path("x"), {{"a", ones({1})}, {"a", ones({1})}}), "save_safetensors", "duplicate", "'a'");
  BAD(save_safetensors(s.path("x"), {{"__metadata__", ones({1})}}), "save_safetensors", "__metadata__");
  BAD(save_safetensors(s.path("x"), {{"u", Tensor()}}), "save_safetensors", "'u'", "undefined");
  BAD(save_safetensors("/nonexistent-dir/x.safetensors", {{"a", ones({1})}}), "save_safetensors",
      "/nonexistent-dir/x.safetensors");
  BAD(load_safetensors(s.path("missing")), "load_safetensors", "missing", "cannot open");
  BAD(load_safetensors(s.dir.string()), "load_safetensors", "not a regular file");
  BAD(load_safetensors(s.file("short", "abc")), "load_safetensors", "3 bytes");
  BAD(load_safetensors(s.file("len", bytes({0xff, 0xff, 0, 0, 0, 0, 0, 0}) + "{}")), "load_safetensors",
      "header length 65535", "bytes 0-7");
  BAD(load_safetensors(s.file("json", bytes({4, 0, 0, 0, 0, 0, 0, 0}) + "{\"a\"")), "load_safetensors",
      "not valid JSON");
  // I32 loads since issue 9 §3 (converted); a dtype xgrad does not know is an error naming the tensor.
  const std::string header = R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})";
  BAD(load_safetensors(s.file("dtype", bytes({static_cast<int>(header.size()), 0, 0, 0, 0, 0, 0, 0}) + header + "12345678")),
      "load_safetensors", "'a'", "C64");
  const std::string past = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  BAD(load_safetensors(s.file("past", bytes({static_cast<int>(past.size()), 0, 0, 0, 0, 0, 0, 0}) + past + "1234")),
      "load_safetensors", "'a'", "past the end");
  const std::string huge = R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}})";
  BAD(load_safetensors(s.file("huge", bytes({static_cast<int>(huge.size()), 0, 0, 0, 0, 0, 0, 0}) + huge + "1234")),
      "load_safetensors", "overflows");
  MESSAGE(g_cases, " cases");
}

// ---- nn -------------------------------------------------------------------------------------------

TEST_CASE("bad inputs: nn layers and the module registry") {
  g_cases = 0;
  BAD(nn::Linear(0, 3), "Linear", "in_features=0");
  BAD(nn::Linear(3, 0), "Linear", "out_features=0");
  BAD(nn::Dropout(-0.1), "Dropout", "-0.1");
  BAD(nn::Dropout(1.0), "Dropout", "1");
  BAD(nn::Dropout(kNaN), "Dropout", "nan");
  BAD(nn::functional::dropout(ones({2}), 1.5, true), "dropout", "1.5");

  auto model = small_mlp();
  UNCHANGED(*model, {
    BAD((*model)(ones({2, 5})), "Linear", "[2, 5]", "4");
    BAD((*model)(tensor(1.0)), "Linear", "[]");
    BAD((*model)(Tensor()), "Linear", "undefined");
    BAD((*model)(ones({2, 4}, kFloat64)), "float64");
    BAD((*model)[3], "Sequential[3]", "3 modules");
    BAD(model->at<nn::ReLU>(0), "Sequential::at(0)", "Linear");
    BAD(model->push_back(nullptr), "Sequential::push_back", "null");
  });

  Probe probe;
  probe.register_parameter("w", ones({2}));
  UNCHANGED(probe, {
    BAD(probe.register_parameter("w", ones({2})), "register_parameter", "\"w\"", "already taken");
    BAD(probe.register_parameter("a.b", ones({2})), "register_parameter", "a.b", "'.'");
    BAD(probe.register_parameter("", ones({2})), "register_parameter", "empty");
    BAD(probe.register_parameter("u", Tensor()), "register_parameter", "\"u\"", "undefined");
    BAD(probe.register_parameter("n", ones({2}).requires_grad_() * 2.0), "register_parameter", "\"n\"", "leaf");
    BAD(probe.register_buffer("w", ones({2})), "register_buffer", "\"w\"", "already taken");
    BAD(probe.register_module("w", std::make_shared<nn::ReLU>()), "register_module", "\"w\"", "already taken");
    BAD(probe.register_module("m", std::shared_ptr<nn::ReLU>()), "register_module", "\"m\"", "null");
  });

  nn::StateDict sd;
  sd.insert("a", ones({1}));
  BAD(sd.insert("a", ones({1})), "StateDict", "'a'");
  BAD(sd.at("zzz"), "StateDict", "zzz");
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: state dicts and model files leave the model unchanged") {
  g_cases = 0;
  Scratch s;
  auto model = small_mlp();
  nn::StateDict good = model->state_dict();

  auto with = [&](const std::string& key, const Tensor& value) {
    nn::StateDict d;
    for (const auto& [name, t] : good) d.insert(name, name == key ? value : t.clone());
    return d;
  };
  auto without = [&](const std::string& key) {
    nn::StateDict d;
    for (const auto& [name, t] : good)
      if (name != key) d.insert(name, t.clone());
    return d;
  };
  nn::StateDict extra = with("0.bias", zeros({3}));
  extra.insert("9.weight", ones({1}));
  nn::StateDict empty_dict;

  UNCHANGED(*model, {
    BAD(model->load_state_dict(without("2.bias")), "load_state_dict", "missing", "\"2.bias\"");
    BAD(model->load_state_dict(extra), "load_state_dict", "unexpected", "\"9.weight\"");
    BAD(model->load_state_dict(with("0.weight", zeros({4, 3}))), "load_state_dict", "\"0.weight\"", "[4, 3]", "[3, 4]");
    BAD(model->load_state_dict(with("0.weight", zeros({4, 3})), false), "load_state_dict", "\"0.weight\"", "[4, 3]");
    BAD(model->load_state_dict(with("2.bias", Tensor())), "load_state_dict", "\"2.bias\"", "undefined");
    BAD(model->load_state_dict(empty_dict), "load_state_dict", "missing", "\"0.weight\"");
    BAD(model->load(s.path("missing.safetensors")), "missing.safetensors", "cannot open");
    BAD(model->load(s.dir.string()), "load_safetensors", "not a regular file");
    BAD(model->load(s.file("garbage.safetensors", "not a safetensors file at all")), "load_safetensors",
        "garbage.safetensors");
  });
  // A file of another architecture.
  nn::Linear other(4, 2);
  other.save(s.path("other.safetensors"));
  UNCHANGED(*model, BAD(model->load(s.path("other.safetensors")), "load('", "other.safetensors", "missing"));
  BAD(model->save("/nonexistent-dir/m.safetensors"), "save_safetensors", "/nonexistent-dir/m.safetensors");
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: losses") {
  g_cases = 0;
  using namespace nn::functional;
  Tensor in = zeros({3, 2}).requires_grad_();
  UNCHANGED(in, {
    BAD(mse_loss(in, zeros({3})), "mse_loss", "[3, 2]", "[3]");
    BAD(mse_loss(in, zeros({3, 2}, kFloat64)), "mse_loss", "float64");
    BAD(mse_loss(in, Tensor()), "mse_loss", "defined");
    BAD(l1_loss(in, zeros({2, 3})), "l1_loss", "[3, 2]", "[2, 3]");
    BAD(binary_cross_entropy(full({3}, 0.5), zeros({3, 1})), "binary_cross_entropy", "[3]", "[3, 1]");
    BAD(binary_cross_entropy(full({2}, -0.5), zeros({2})), "binary_cross_entropy", "-0.5");
    BAD(binary_cross_entropy_with_logits(in, zeros({3})), "binary_cross_entropy_with_logits", "[3, 2]");
    BAD(cross_entropy(in, tensor({0.0, 2.0, 1.0})), "cross_entropy", "2");
    BAD(nll_loss(in, tensor({0.0, 1.0})), "nll_loss", "[2]");
    BAD(nn::MSELoss()(in, zeros({2})), "mse_loss", "[2]");
    BAD(nn::CrossEntropyLoss()(in, tensor({5.0, 0.0, 0.0})), "cross_entropy", "5");
    BAD(nn::MSELoss().forward(in), "MSELoss", "target");
    BAD(mse_loss(in, zeros({3, 2}), static_cast<nn::Reduction>(7)), "7");
  });
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: nn::init and clip_grad_norm_ leave tensors unchanged") {
  g_cases = 0;
  using namespace nn::init;
  Tensor w = ones({3, 2});
  Tensor v = ones({3});
  UNCHANGED(w, {
    BAD(uniform_(w, 1.0, 0.0), "uniform_", "a = 1", "b = 0");
    BAD(uniform_(w, kNaN, 1.0), "uniform_", "nan");
    BAD(normal_(w, 0.0, -1.0), "normal_", "-1");
    BAD(kaiming_uniform_(w, 0.0, "fan_sideways"), "kaiming_uniform_", "fan_sideways");
    BAD(kaiming_normal_(w, 0.0, "fan_in", "bogus"), "calculate_gain", "bogus");
    BAD(calculate_gain("swish"), "calculate_gain", "swish");
  });
  UNCHANGED(v, {
    BAD(xavier_uniform_(v), "fan in and fan out", "[3]");
    BAD(xavier_normal_(v), "fan in and fan out", "[3]");
    BAD(kaiming_uniform_(v), "fan in and fan out", "[3]");
    BAD(kaiming_normal_(v), "fan in and fan out", "[3]");
  });
  BAD(constant_(Tensor(), 1.0), "constant_", "undefined");
  BAD(zeros_(Tensor()), "undefined");

  Tensor p = ones({2}).requires_grad_();
  p.set_grad(full({2}, 10.0));
  UNCHANGED(p, {
    BAD(nn::utils::clip_grad_norm_({p}, 1.0, 0.0), "clip_grad_norm_", "norm_type", "0");
    BAD(nn::utils::clip_grad_norm_({p}, 1.0, -2.0), "clip_grad_norm_", "-2");
    BAD(nn::utils::clip_grad_norm_({p, Tensor()}, 1.0), "clip_grad_norm_", "undefined");
    BAD(nn::utils::clip_grad_norm_({p}, -1.0), "clip_grad_norm_", "max_norm", "-1");
    BAD(nn::utils::clip_grad_norm_({p}, kNaN), "clip_grad_norm_", "max_norm", "nan");
  });
  MESSAGE(g_cases, " cases");
}

// ---- optim ----------------------------------------------------------------------------------------

TEST_CASE("bad inputs: optimizer construction and learning rates") {
  g_cases = 0;
  Tensor p = ones({2}).requires_grad_();
  Tensor q = ones({3}).requires_grad_();
  const std::vector<Tensor> none;
  BAD(optim::SGD(none), "SGD", "empty parameter list");
  BAD(optim::Adam(none), "Adam", "empty parameter list");
  BAD(optim::AdamW(none), "AdamW", "empty parameter list");
  BAD(optim::RMSprop(none), "RMSprop", "empty parameter list");
  BAD(optim::SGD({p, p}), "SGD", "parameter 1", "more than once");
  BAD(optim::SGD({p, Tensor()}), "SGD", "parameter 1", "undefined");
  BAD(optim::SGD({p * 2.0}), "SGD", "non-leaf", "MulBackward");
  BAD(optim::SGD({p}, {.lr = -0.1}), "SGD", "learning rate", "-0.1");
  BAD(optim::SGD({p}, {.lr = kNaN}), "SGD", "learning rate", "nan");
  BAD(optim::SGD({p}, {.lr = 0.1, .momentum = -0.5}), "SGD", "momentum", "-0.5");
  BAD(optim::SGD({p}, {.lr = 0.1, .weight_decay = -1}), "SGD", "weight_decay", "-1");
  BAD(optim::SGD({p}, {.lr = 0.1, .nesterov = true}), "SGD", "Nesterov", "momentum = 0");
  BAD(optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .nesterov = true}), "SGD", "Nesterov",
      "dampening");
  BAD(optim::Adam({p}, {.lr = -1e-3}), "Adam", "learning rate", "-0.001");
  BAD(optim::Adam({p}, {.betas = {1.0, 0.999}}), "Adam", "beta parameter at index 0", "1");
  BAD(optim::Adam({p}, {.betas = {0.9, -0.1}}), "Adam", "beta parameter at index 1", "-0.1");
  BAD(optim::Adam({p}, {.eps = -1}), "Adam", "epsilon", "-1");
  BAD(optim::Adam({p}, {.weight_decay = -0.1}), "Adam", "weight_decay", "-0.1");
  BAD(optim::AdamW({p}, {.betas = {0.9, 1.5}}), "AdamW", "beta parameter at index 1", "1.5");
  BAD(optim::AdamW({p}, {.lr = -2}), "AdamW", "learning rate", "-2");
  BAD(optim::RMSprop({p}, {.lr = -1}), "RMSprop", "learning rate", "-1");
  BAD(optim::RMSprop({p}, {.alpha = -0.5}), "RMSprop", "alpha", "-0.5");
  BAD(optim::RMSprop({p}, {.eps = -1e-8}), "RMSprop", "epsilon", "-1e-08");
  BAD(optim::RMSprop({p}, {.momentum = -0.9}), "RMSprop", "momentum", "-0.9");
  BAD(optim::RMSprop({p}, {.weight_decay = -3}), "RMSprop", "weight_decay", "-3");

  optim::Adam adam({p, q}, {.lr = 0.01});
  p.set_grad(ones({2}));
  adam.step();
  UNCHANGED(adam, {
    BAD(adam.set_lr(-1), "set_lr", "-1");
    BAD(adam.set_lr(kNaN), "set_lr", "nan");
    BAD(optim::StepLR(adam, 0), "StepLR", "step_size 0");
    BAD(optim::StepLR(adam, 2, -0.5), "StepLR", "gamma -0.5");
    BAD(optim::ExponentialLR(adam, -1.0), "ExponentialLR", "gamma -1");
    BAD(optim::CosineAnnealingLR(adam, 0), "CosineAnnealingLR", "T_max 0");
    BAD(optim::CosineAnnealingLR(adam, 10, -1.0), "CosineAnnealingLR", "eta_min -1");
  });
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: optimizer state dicts and files leave the optimizer unchanged") {
  g_cases = 0;
  Scratch s;
  Tensor p = ones({2, 2}).requires_grad_();
  Tensor q = ones({3}).requires_grad_();
  optim::Adam adam({p, q}, {.lr = 0.01, .amsgrad = true});
  p.set_grad(full({2, 2}, 0.5));
  q.set_grad(full({3}, -0.5));
  adam.step();
  adam.step();
  const optim::StateDict good = adam.state_dict();

  auto replaced = [&](const std::string& key, const Tensor& value) {
    optim::StateDict d;
    for (const auto& [name, t] : good) d.emplace_back(name, name == key ? value : t.clone());
    return d;
  };
  auto dropped = [&](const std::string& key) {
    optim::StateDict d;
    for (const auto& [name, t] : good)
      if (name != key) d.emplace_back(name, t.clone());
    return d;
  };
  optim::StateDict extra = good;
  extra.emplace_back("state.0.momentum_buffer", zeros({2, 2}));
  optim::StateDict duplicated = good;
  duplicated.push_back(good.front());

  UNCHANGED(adam, {
    BAD(adam.load_state_dict(dropped("param_groups.0.lr")), "Adam.load_state_dict", "Missing", "param_groups.0.lr");
    BAD(adam.load_state_dict(dropped("param_groups.0.params")), "Adam.load_state_dict", "param_groups.0.params");
    BAD(adam.load_state_dict(extra), "Adam.load_state_dict", "Unexpected", "state.0.momentum_buffer");
    BAD(adam.load_state_dict(duplicated), "Adam.load_state_dict", "more than once");
    BAD(adam.load_state_dict(replaced("state.0.exp_avg", zeros({4}))), "Adam.load_state_dict", "state.0.exp_avg",
        "[4]", "[2, 2]");
    BAD(adam.load_state_dict(replaced("param_groups.0.lr", tensor(-1.0, kFloat64))), "Adam.load_state_dict",
        "learning rate -1");
    BAD(adam.load_state_dict(replaced("param_groups.0.betas", tensor({0.9, 1.0}, kFloat64))), "Adam.load_state_dict",
        "beta parameter at index 1");
    BAD(adam.load_state_dict(replaced("param_groups.0.betas", tensor(0.9, kFloat64))), "Adam.load_state_dict",
        "param_groups.0.betas");
    BAD(adam.load_state_dict(replaced("param_groups.0.params", tensor({0.0}, kFloat64))), "Adam.load_state_dict",
        "1 parameters");
    BAD(adam.load_state_dict(replaced("state.1.step", tensor(-3.0, kFloat64))), "Adam.load_state_dict",
        "state.1.step", "-3");
    BAD(adam.load_state_dict(replaced("state.1.step", tensor(1.5, kFloat64))), "Adam.load_state_dict", "1.5");
    BAD(adam.load_state_dict(dropped("state.0.step")), "Adam.load_state_dict", "state.0.step is missing");
    BAD(adam.load_state_dict(dropped("state.0.max_exp_avg_sq")), "Adam.load_state_dict", "state.0.max_exp_avg_sq");
    BAD(adam.load_state_dict(replaced("param_groups.0.amsgrad", tensor(0.5, kFloat64))), "Adam.load_state_dict",
        "amsgrad", "0.5");
    BAD(adam.load_state_dict(replaced("state.0.exp_avg", Tensor())), "Adam.load_state_dict", "state.0.exp_avg",
        "undefined");
    BAD(adam.load_state_dict({}), "Adam.load_state_dict", "Missing");
    BAD(adam.load(s.path("missing.state")), "load_safetensors", "missing.state");
    BAD(adam.load(s.file("junk.state", "12345678junk")), "load_safetensors", "junk.state");
  });
  // Another optimizer's file.
  optim::SGD sgd({p, q}, {.lr = 0.1, .momentum = 0.9});
  sgd.step();
  sgd.save(s.path("sgd.state"));
  UNCHANGED(adam, BAD(adam.load(s.path("sgd.state")), "Adam.load", "SGD"));
  BAD(adam.save("/nonexistent-dir/a.state"), "save_safetensors", "/nonexistent-dir/a.state");

  // A state that no longer fits the parameters: step() refuses before changing anything.
  Tensor r = ones({2}).requires_grad_();
  optim::SGD moving({r}, {.lr = 0.1, .momentum = 0.9});
  r.set_grad(ones({2}));
  moving.step();
  {
    // The parameter's dtype is changed in place behind the optimizer's back (Module::to does this).
    auto m = std::make_shared<Probe>();
    m->register_parameter("r", r);
    m->to(kFloat64);
  }
  r.set_grad(ones({2}, kFloat64));
  UNCHANGED(moving, BAD(moving.step(), "SGD.step", "float32", "float64"));
  MESSAGE(g_cases, " cases");
}

// ---- data and train -------------------------------------------------------------------------------

TEST_CASE("bad inputs: datasets and loaders") {
  g_cases = 0;
  BAD(data::TensorDataset(ones({3, 2}), ones({4})), "TensorDataset", "3 samples", "4");
  BAD(data::TensorDataset(Tensor(), ones({4})), "TensorDataset", "defined");
  BAD(data::TensorDataset(tensor(1.0), tensor(1.0)), "TensorDataset", "[]");
  data::TensorDataset ds(ones({5, 2}), zeros({5}));
  BAD(ds.get(5), "TensorDataset::get", "5");
  BAD(data::DataLoader(ds, {.batch_size = 0}), "DataLoader", "batch_size", "0");
  data::DataLoader loader(ds, {.batch_size = 2});
  BAD(loader.batch(3), "DataLoader::batch", "3");
  // Not an error: a batch larger than the dataset is one short batch, even at the largest size_t
  // (whose rounding-up division used to overflow to 0 batches).
  data::DataLoader whole(ds, {.batch_size = std::numeric_limits<std::size_t>::max()});
  CHECK(whole.size() == 1);
  CHECK(whole.batch(0).input.shape() == Shape{5, 2});
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: read_idx and read_csv and load_fashion_mnist files") {
  g_cases = 0;
  Scratch s;
  BAD(data::read_idx(s.path("missing.idx")), "read_idx", "missing.idx");
  BAD(data::read_idx(s.dir.string()), "read_idx", "directory");
  BAD(data::read_idx(s.file("empty.idx", "")), "read_idx", "byte offset 0");
  BAD(data::read_idx(s.file("magic.idx", bytes({1, 0, 8, 1, 0, 0, 0, 1, 5}))), "read_idx", "bad magic", "byte offset 0");
  BAD(data::read_idx(s.file("type.idx", bytes({0, 0, 7, 1, 0, 0, 0, 1, 5}))), "read_idx", "0x7", "byte offset 2");
  BAD(data::read_idx(s.file("ndim0.idx", bytes({0, 0, 8, 0}))), "read_idx", "0 dimensions", "byte offset 3");
  BAD(data::read_idx(s.file("ndim9.idx", bytes({0, 0, 8, 9}))), "read_idx", "9 dimensions");
  BAD(data::read_idx(s.file("hdr.idx", bytes({0, 0, 8, 2, 0, 0, 0, 1}))), "read_idx", "byte offset 8", "header");
  BAD(data::read_idx(s.file("short.idx", bytes({0, 0, 8, 1, 0, 0, 0, 4, 1, 2}))), "read_idx", "truncated",
      "byte offset 10");
  BAD(data::read_idx(s.file("long.idx", bytes({0, 0, 8, 1, 0, 0, 0, 1, 1, 2}))), "read_idx", "trailing",
      "byte offset 9");
  BAD(data::read_idx(s.file("huge.idx", bytes({0, 0, 0x0E, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                0xff, 0xff, 0xff}))),
      "read_idx", "overflow");
  BAD(data::read_idx(s.file("gz.idx", bytes({0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3}))), "read_idx", "gzip");

  BAD(data::read_csv(s.path("missing.csv")), "read_csv", "missing.csv");
  BAD(data::read_csv(s.file("ragged.csv", "1,2\n3\n")), "read_csv", "line 2", "1 columns", "expected 2");
  BAD(data::read_csv(s.file("word.csv", "1,2\n3,abc\n")), "read_csv", "line 2", "column 2", "'abc'");
  BAD(data::read_csv(s.file("emptycell.csv", "1,,2\n")), "read_csv", "line 1", "column 2", "empty cell");
  BAD(data::read_csv(s.file("nodata.csv", "a,b\n"), {.skip_rows = 1}), "read_csv", "no data rows");
  BAD(data::read_csv(s.file("blank.csv", "\n\n")), "read_csv", "no data rows");
  BAD(data::read_csv(s.file("semi.csv", "1;2\n"), {.delimiter = ','}), "read_csv", "line 1", "'1;2'");

  BAD(data::load_fashion_mnist(s.path("nowhere")), "load_fashion_mnist", "nowhere", "train-images-idx3-ubyte");
  MESSAGE(g_cases, " cases");
}

TEST_CASE("bad inputs: fit and evaluate") {
  g_cases = 0;
  auto model = small_mlp();
  optim::SGD sgd(model->parameters(), {.lr = 0.1});
  data::TensorDataset ds(ones({3, 4}), zeros({3}));
  data::DataLoader loader(ds, {.batch_size = 2});
  data::DataLoader none(ds, {.batch_size = 5, .drop_last = true});
  nn::CrossEntropyLoss ce;
  nn::CrossEntropyLoss per_sample(nn::Reduction::None);
  UNCHANGED(*model, {
    BAD(fit(*model, sgd, ce, loader, {.epochs = -1, .verbose = false}), "fit", "epochs", "-1");
    BAD(fit(*model, sgd, ce, none, {.epochs = 1, .verbose = false}), "fit", "no batches", "batch_size 5");
    BAD(fit(*model, sgd, ce, loader, {.epochs = 1, .validation = &none, .verbose = false}), "fit", "validation");
    BAD(fit(*model, sgd, per_sample, loader, {.epochs = 1, .verbose = false}), "fit", "single value", "[2]");
    BAD(evaluate(*model, ce, none), "evaluate", "no batches");
  });
  MESSAGE(g_cases, " cases");
}

// ---- Regressions found by the fuzzers (fuzz/) ------------------------------------------------------

TEST_CASE("bad inputs: fuzz regressions") {
  g_cases = 0;
  Scratch s;
  // fuzz_idx: a 0-element IDX file (one size is 0) whose other sizes multiply past 2^63. It used to be
  // accepted, and computing the 0-element tensor's strides overflowed (UBSan: signed overflow in
  // xtensor). Header: uint8, 8 dims [0x07000100, 0, 0x0203006f, 0xff09, 0xffffffff, 0x8d0515,
  // 0x09092b08, 0x2bff3009], no data.
  BAD(data::read_idx(s.file("zero_and_huge.idx", bytes({0x00, 0x00, 0x08, 0x08, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                        0x02, 0x03, 0x00, 0x6f, 0x00, 0x00, 0xff, 0x09, 0xff, 0xff, 0xff, 0xff,
                                                        0x00, 0x8d, 0x05, 0x15, 0x09, 0x09, 0x2b, 0x08, 0x2b, 0xff, 0x30, 0x09}))),
      "read_idx", "overflow", "byte offsets 4 to 35");
  // The same shape through safetensors and the factories.
  const std::string zero_huge = R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})";
  BAD(load_safetensors(s.file("zero_huge", bytes({static_cast<int>(zero_huge.size()), 0, 0, 0, 0, 0, 0, 0}) + zero_huge)),
      "load_safetensors", "'a'", "overflows");
  BAD(zeros({0, kHuge, 4}), "zeros", "[0, 4611686018427387904, 4]", "overflows");
  BAD(empty({std::size_t{1} << 32, std::size_t{1} << 32, 0}), "empty", "overflows");
  // Legitimate 0-element shapes stay fine.
  CHECK(zeros({0, std::size_t{1} << 20, 4}).numel() == 0);
  CHECK(data::read_idx(s.file("zero.idx", bytes({0, 0, 8, 2, 0, 0, 0, 0, 0, 1, 0, 0}))).shape() == Shape{0, 65536});
  MESSAGE(g_cases, " cases");
}
