// Custom ops through autograd::Function, and to_dot.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <xgrad.hpp>

using namespace xgrad;
using autograd::AutogradContext;
using autograd::Function;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor d = t.to(kFloat64);
  const auto& a = d.data<double>();
  return {a.data(), a.data() + a.size()};
}

void check_values(const Tensor& t, const std::vector<double>& expected, double tol) {
  std::vector<double> v = values(t);
  REQUIRE(v.size() == expected.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (tol == 0)
      CHECK(v[i] == expected[i]);
    else
      CHECK(v[i] == doctest::Approx(expected[i]).epsilon(tol));
  }
}

// y = x³, backward 3x²·g written in Tensor ops from the saved input. No name(): the node is named after
// the type.
struct Cube : Function<Cube> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> grad_outputs) {
    Tensor x = ctx->saved()[0];
    return {grad_outputs[0] * (x * x * 3.0)};
  }
};

// swish(x) = x·σ(βx) with β a plain double. Backward recomputes σ(βx) from the saved input so that it is
// differentiable again: d/dx = σ(βx) + βx·σ(βx)(1 − σ(βx)).
struct Swish : Function<Swish> {
  static const char* name() { return "Swish"; }
  static Tensor forward(AutogradContext* ctx, const Tensor& x, double beta) {
    ctx->saved_data["beta"] = beta;
    ctx->save_for_backward({x});
    return x * sigmoid(x * beta);
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> grad_outputs) {
    const double beta = std::any_cast<double>(ctx->saved_data.at("beta"));
    Tensor x = ctx->saved()[0];
    Tensor s = sigmoid(x * beta);
    Tensor d = s + x * beta * s * (1.0 - s);
    return {grad_outputs[0] * d};
  }
};

// y = eˣ, saving its own output: the saved tensor must not keep the node alive (no cycle), and under
// create_graph differentiating through it must reach this node again.
struct MyExp : Function<MyExp> {
  static std::string name() { return "MyExp"; }
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    Tensor y = exp(x);
    ctx->save_for_backward({y});
    return y;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> grad_outputs) {
    return {grad_outputs[0] * ctx->saved()[0]};
  }
};

// out = a·k + b with a non-Tensor between the Tensors, keeping non-tensor values of several types.
struct AffineK : Function<AffineK> {
  static const char* name() { return "AffineK"; }
  static Tensor forward(AutogradContext* ctx, const Tensor& a, double k, const Tensor& b) {
    ctx->saved_data["k"] = k;
    ctx->saved_data["label"] = std::string("affine");
    ctx->saved_data["dims"] = std::vector<int>{2, 3};
    return a * k + b;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> grad_outputs) {
    const double k = std::any_cast<double>(ctx->saved_data.at("k"));
    CHECK(std::any_cast<std::string>(ctx->saved_data.at("label")) == "affine");
    CHECK(std::any_cast<std::vector<int>>(ctx->saved_data.at("dims")) == std::vector<int>{2, 3});
    Tensor ga = ctx->needs_input_grad(0) ? grad_outputs[0] * k : Tensor();
    Tensor gb = ctx->needs_input_grad(1) ? grad_outputs[0] : Tensor();
    return {ga, gb};
  }
};

// The same op returning LibTorch's form: one entry per forward argument, undefined for the double.
struct AffineKTorchStyle : Function<AffineKTorchStyle> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, double k, const Tensor& b) {
    ctx->saved_data["k"] = k;
    return a * k + b;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    return {g[0] * std::any_cast<double>(ctx->saved_data.at("k")), Tensor(), g[0]};
  }
};

// Broken backwards, one per error.
struct TooManyGrads : Function<TooManyGrads> {
  static const char* name() { return "TooManyGrads"; }
  static Tensor forward(AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) { return {g[0] * 2.0, g[0]}; }
};
struct WrongShapeGrad : Function<WrongShapeGrad> {
  static const char* name() { return "WrongShapeGrad"; }
  static Tensor forward(AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) {
    return {ones({2}, g[0].dtype())};
  }
};
struct WrongDtypeGrad : Function<WrongDtypeGrad> {
  static const char* name() { return "WrongDtypeGrad"; }
  static Tensor forward(AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) {
    return {(g[0] * 2.0).to(kFloat32)};
  }
};
struct GradForDouble : Function<GradForDouble> {
  static const char* name() { return "GradForDouble"; }
  static Tensor forward(AutogradContext*, const Tensor& x, double k) { return x * k; }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) { return {g[0], g[0]}; }
};
// Returns a gradient of the broadcast shape; PyTorch sums it down to the input's shape.
struct BroadcastGrad : Function<BroadcastGrad> {
  static Tensor forward(AutogradContext*, const Tensor& x) { return x.clone(); }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) {
    return {ones({2, 3}, g[0].dtype())};
  }
};

// Two outputs; the second one may get no gradient at all.
struct SinCos : Function<SinCos> {
  static const char* name() { return "SinCos"; }
  static std::vector<Tensor> forward(AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return {sin(x), cos(x)};
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->saved()[0];
    REQUIRE(g.size() == 2);
    REQUIRE(g[1].defined());  // materialised as zeros when the output was unused
    return {g[0] * cos(x) - g[1] * sin(x)};
  }
};

// w·Σ x_k (+ bias): a list of Tensors and an optional one count as Tensor arguments, one per element.
struct WeightedSum : Function<WeightedSum> {
  static const char* name() { return "WeightedSum"; }
  static Tensor forward(AutogradContext* ctx, const std::vector<Tensor>& xs, double w,
                        const std::optional<Tensor>& bias) {
    ctx->saved_data["w"] = w;
    ctx->saved_data["n"] = xs.size();
    Tensor out = xs[0] * w;
    for (std::size_t k = 1; k < xs.size(); ++k) out = out + xs[k] * w;
    return bias ? out + *bias : out;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    const double w = std::any_cast<double>(ctx->saved_data.at("w"));
    std::vector<Tensor> grads(std::any_cast<std::size_t>(ctx->saved_data.at("n")), g[0] * w);
    grads.push_back(g[0]);  // for the bias (dropped by the engine when there is none)
    return grads;
  }
};

// Returns its input unchanged: the output must still be a new tensor with its own history.
struct Identity : Function<Identity> {
  static Tensor forward(AutogradContext*, const Tensor& x) { return x; }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) { return {g[0]}; }
};

}  // namespace

TEST_CASE("Function: cube forward and backward values in both dtypes") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    Tensor x = tensor({1.0, -2.0, 0.5}, dt, true);
    Tensor y = Cube::apply(x);
    // x³ = 1, -8, 0.125 (exact in both dtypes)
    CHECK(y.dtype() == dt);
    check_values(y, {1.0, -8.0, 0.125}, 1e-7);
    CHECK(y.grad_fn_name().find("Cube") != std::string::npos);  // demangled type name
    CHECK_FALSE(y.is_leaf());
    y.sum().backward();
    // d(x³)/dx = 3x² = 3, 12, 0.75
    check_values(x.grad(), {3.0, 12.0, 0.75}, 1e-7);
  }
}

TEST_CASE("Function: gradcheck and gradgradcheck of user ops in float64") {
  Tensor x = tensor({0.7, -1.3, 0.2, 2.1}, kFloat64, true);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return Cube::apply(in[0]); }, {x}));
  CHECK(gradgradcheck([](const std::vector<Tensor>& in) { return Cube::apply(in[0]); }, {x}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return Swish::apply(in[0], 1.7); }, {x}));
  CHECK(gradgradcheck([](const std::vector<Tensor>& in) { return Swish::apply(in[0], 1.7); }, {x}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return MyExp::apply(in[0]); }, {x}));
  CHECK(gradgradcheck([](const std::vector<Tensor>& in) { return MyExp::apply(in[0]); }, {x}));
  Tensor a = tensor({{0.5, -1.0, 2.0}, {1.5, 0.25, -0.75}}, kFloat64, true);
  Tensor b = tensor({0.3, -0.2, 0.9}, kFloat64, true);
  auto affine = [](const std::vector<Tensor>& in) { return AffineK::apply(in[0], -2.5, in[1]); };
  CHECK(gradcheck(affine, {a, b}));  // b's gradient comes back broadcast: summed by the engine's check
  CHECK(gradgradcheck(affine, {a, b}));
  auto sincos = [](const std::vector<Tensor>& in) { return SinCos::apply(in[0]); };
  CHECK(gradcheck(sincos, {x}));
  CHECK(gradgradcheck(sincos, {x}));
}

TEST_CASE("Function: swish forward and backward values, named by its static name()") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const double beta = 2.0;
    Tensor x = tensor({0.0, 1.0, -1.5}, dt, true);
    Tensor y = Swish::apply(x, beta);
    CHECK(y.grad_fn_name() == "Swish");
    auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
    // swish(x) = x·σ(2x): 0·σ(0) = 0, 1·σ(2), -1.5·σ(-3)
    check_values(y, {0.0, sig(2.0), -1.5 * sig(-3.0)}, 1e-6);
    y.sum().backward();
    // σ(2x) + 2x·σ(2x)(1-σ(2x)): at 0 it is σ(0) = 0.5
    auto d = [&](double v) { return sig(beta * v) + beta * v * sig(beta * v) * (1 - sig(beta * v)); };
    check_values(x.grad(), {0.5, d(1.0), d(-1.5)}, 1e-6);
  }
}

TEST_CASE("Function: create_graph records the user backward (second derivative of x³ is 6x)") {
  Tensor x = tensor({1.5, -0.5}, kFloat64, true);
  Tensor y = Cube::apply(x).sum();
  std::vector<Tensor> g = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true);
  REQUIRE(g[0].requires_grad());
  check_values(g[0], {3 * 1.5 * 1.5, 3 * 0.25}, 1e-12);  // 3x²
  std::vector<Tensor> h = autograd::grad({g[0].sum()}, {x});
  check_values(h[0], {6 * 1.5, 6 * -0.5}, 1e-12);  // 6x
}

TEST_CASE("Function: a saved output does not keep its node alive, and still supports double backward") {
  std::weak_ptr<autograd::Node> node;
  {
    Tensor x = tensor({0.5, 1.0}, kFloat64, true);
    Tensor y = MyExp::apply(x);
    node = y.grad_fn();
    REQUIRE_FALSE(node.expired());
    // d²(eˣ)/dx² = eˣ: the second pass goes through the saved output back into MyExp.
    std::vector<Tensor> g = autograd::grad({y.sum()}, {x}, {}, std::nullopt, true);
    std::vector<Tensor> h = autograd::grad({g[0].sum()}, {x});
    check_values(h[0], {std::exp(0.5), std::exp(1.0)}, 1e-12);
  }
  CHECK(node.expired());  // no node -> saved output -> node cycle
}

TEST_CASE("Function: no_grad and inputs without grad record nothing, forward runs with grad mode off") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor c = tensor({3.0, 4.0}, kFloat64);
  {
    NoGradGuard guard;
    Tensor y = Cube::apply(x);
    CHECK(y.is_leaf());
    CHECK_FALSE(y.requires_grad());
    check_values(y, {1.0, 8.0}, 1e-12);
  }
  Tensor y = Cube::apply(c);
  CHECK(y.grad_fn() == nullptr);
  CHECK_FALSE(y.requires_grad());

  Tensor z = AffineK::apply(x, 2.0, c);
  REQUIRE(z.grad_fn());
  z.sum().backward();  // d(2x + c)/dx = 2; c needs no gradient and gets none
  check_values(x.grad(), {2.0, 2.0}, 0);
  CHECK(c.grad().defined() == false);
}

TEST_CASE("Function: needs_input_grad and saved_data with non-tensor values") {
  Tensor a = tensor({1.0, 2.0}, kFloat64, true);
  Tensor b = tensor({0.5, 0.5}, kFloat64);  // needs no gradient
  // Records what needs_input_grad answered, in forward (grad mode off there) and in backward.
  struct Probe : Function<Probe> {
    static std::vector<bool>& seen() {
      static std::vector<bool> v;
      return v;
    }
    static Tensor forward(AutogradContext* ctx, const Tensor& p, int tag, const Tensor& q) {
      CHECK(tag == 7);
      CHECK_FALSE(is_grad_enabled());
      seen() = {ctx->needs_input_grad(0), ctx->needs_input_grad(1)};
      CHECK_THROWS_WITH_AS(ctx->needs_input_grad(2), doctest::Contains("2 Tensor argument"), Error);
      ctx->saved_data["tag"] = tag;
      return p + q;
    }
    static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
      CHECK(std::any_cast<int>(ctx->saved_data.at("tag")) == 7);
      seen() = {ctx->needs_input_grad(0), ctx->needs_input_grad(1)};
      return {ctx->needs_input_grad(0) ? g[0] : Tensor(), ctx->needs_input_grad(1) ? g[0] : Tensor()};
    }
  };
  Tensor y = Probe::apply(a, 7, b);
  CHECK(Probe::seen() == std::vector<bool>{true, false});
  Probe::seen() = {};
  y.sum().backward();
  CHECK(Probe::seen() == std::vector<bool>{true, false});
  check_values(a.grad(), {1.0, 1.0}, 0);

  Tensor y2 = Probe::apply(b, 7, a);
  CHECK(Probe::seen() == std::vector<bool>{false, true});
  {
    NoGradGuard guard;
    Probe::apply(a, 7, b);
    CHECK(Probe::seen() == std::vector<bool>{false, false});
  }
}

TEST_CASE("Function: backward with LibTorch's one-entry-per-argument convention") {
  Tensor a = tensor({1.0, -1.0}, kFloat64, true);
  Tensor b = tensor({2.0, 3.0}, kFloat64, true);
  AffineKTorchStyle::apply(a, 4.0, b).sum().backward();
  check_values(a.grad(), {4.0, 4.0}, 0);
  check_values(b.grad(), {1.0, 1.0}, 0);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return AffineKTorchStyle::apply(in[0], 4.0, in[1]); },
                  {a, b}));
}

TEST_CASE("Function: a backward returning wrong gradients is an error naming the Function") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64, true);
  CHECK_THROWS_WITH_AS(TooManyGrads::apply(x).sum().backward(),
                       doctest::Contains("TooManyGrads: backward returned 2 gradient(s), expected 1"), Error);
  CHECK_THROWS_WITH_AS(WrongShapeGrad::apply(x).sum().backward(),
                       doctest::Contains("WrongShapeGrad: backward returned a gradient of shape [2] for input 0 of shape [3]"),
                       Error);
  CHECK_THROWS_WITH_AS(WrongDtypeGrad::apply(x).sum().backward(),
                       doctest::Contains("WrongDtypeGrad: backward returned a gradient of dtype float32 for input 0 of dtype float64"),
                       Error);
  CHECK_THROWS_WITH_AS(GradForDouble::apply(x, 2.0).sum().backward(),
                       doctest::Contains("GradForDouble: backward returned a defined gradient at position 1"), Error);
  // Counting every forward argument is accepted too, so the message names both counts.
  CHECK_THROWS_WITH_AS(GradForDouble::apply(x, 2.0).sum().backward(),
                       doctest::Contains("argument 1 of forward is not a Tensor"), Error);
  CHECK_FALSE(x.grad().defined());  // nothing accumulated by the failed runs
}

TEST_CASE("Function: a gradient of a shape the input broadcasts to is summed down, as in PyTorch") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64, true);
  BroadcastGrad::apply(x).sum().backward();
  check_values(x.grad(), {2.0, 2.0, 2.0}, 0);  // ones(2, 3) summed over the leading dim
}

TEST_CASE("Function: second backward after release is an error, retain_graph allows it") {
  Tensor x = tensor({0.0, 1.0}, kFloat64, true);
  Tensor y = MyExp::apply(x);
  y.sum().backward(Tensor(), /*retain_graph=*/true);
  y.sum().backward();  // retained: works, and accumulates (d eˣ = eˣ twice)
  check_values(x.grad(), {2.0, 2.0 * std::exp(1.0)}, 1e-12);
  CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains("MyExp: trying to backward through the graph a second time"),
                       Error);
  check_values(x.grad(), {2.0, 2.0 * std::exp(1.0)}, 1e-12);  // unchanged by the failed call
}

TEST_CASE("Function: multiple outputs, an unused one gets zero gradient") {
  Tensor x = tensor({0.3, -0.8}, kFloat64, true);
  std::vector<Tensor> out = SinCos::apply(x);
  REQUIRE(out.size() == 2);
  CHECK(out[0].grad_fn() == out[1].grad_fn());
  CHECK(out[1].output_nr() == 1);
  out[0].sum().backward();
  check_values(x.grad(), {std::cos(0.3), std::cos(-0.8)}, 1e-12);  // d sin = cos, nothing from cos
}

TEST_CASE("Function: std::vector<Tensor> and std::optional<Tensor> arguments") {
  Tensor a = tensor({1.0, 2.0}, kFloat64, true);
  Tensor b = tensor({3.0, 4.0}, kFloat64, true);
  Tensor bias = tensor({0.5, 0.5}, kFloat64, true);
  Tensor y = WeightedSum::apply(std::vector<Tensor>{a, b}, 2.0, std::optional<Tensor>(bias));
  check_values(y, {2 * (1 + 3) + 0.5, 2 * (2 + 4) + 0.5}, 0);
  CHECK(y.grad_fn()->num_inputs() == 3);
  y.sum().backward();
  check_values(a.grad(), {2, 2}, 0);
  check_values(b.grad(), {2, 2}, 0);
  check_values(bias.grad(), {1, 1}, 0);
  // Without the bias the optional still counts as an (undefined) input.
  Tensor z = WeightedSum::apply(std::vector<Tensor>{a, b}, -1.0, std::optional<Tensor>());
  z.sum().backward();
  check_values(a.grad(), {1, 1}, 0);
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    return WeightedSum::apply(std::vector<Tensor>{in[0], in[1]}, 0.5, std::optional<Tensor>(in[2]));
  }, {a, b, bias}));
}

TEST_CASE("Function: returning an input makes a new output and leaves the input a leaf") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor y = Identity::apply(x);
  CHECK_FALSE(y.is_same(x));
  CHECK(x.is_leaf());
  CHECK_FALSE(y.is_leaf());
  (y * y).sum().backward();
  check_values(x.grad(), {2.0, 4.0}, 0);  // d(x²)/dx = 2x
}

TEST_CASE("Function: a user op composes with built-in ops in a diamond") {
  Tensor x = tensor({0.5, -1.0}, kFloat64, true);
  // f = cube(x) + 2x: d/dx = 3x² + 2
  (Cube::apply(x) + x * 2.0).sum().backward();
  check_values(x.grad(), {3 * 0.25 + 2, 3 * 1.0 + 2}, 1e-12);
}

TEST_CASE("to_dot: op names, shapes, leaf marks, the output, deterministic") {
  Tensor x = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, kFloat64, true);
  Tensor w = tensor({0.5, 0.5, 0.5}, kFloat64, true);
  Tensor y = Swish::apply(x * w, 1.0) + x;  // x used twice
  const std::string dot = to_dot(y);
  CAPTURE(dot);
  CHECK(dot.rfind("digraph", 0) == 0);
  CHECK(dot.find("Swish") != std::string::npos);
  CHECK(dot.find("MulBackward") != std::string::npos);
  CHECK(dot.find("AddBackward") != std::string::npos);
  CHECK(dot.find("[2, 3] float64") != std::string::npos);  // leaf x (and Swish's input)
  CHECK(dot.find("[3] float64") != std::string::npos);     // leaf w
  CHECK(dot.find("output\\n[2, 3] float64") != std::string::npos);
  // Two leaves, each drawn once even though x feeds two ops.
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t p = dot.find(what); p != std::string::npos; p = dot.find(what, p + 1)) ++n;
    return n;
  };
  CHECK(count("fillcolor=lightblue") == 2);
  CHECK(count("AccumulateGrad") == 2);
  // 5 nodes (Add, Swish, Mul, 2 leaves): edges Mul->Swish, Swish->Add, x->Add, x->Mul, w->Mul, Add->output.
  CHECK(count("->") == 6);
  CHECK(to_dot(y) == dot);

  // A tensor without history: just the output.
  Tensor c = tensor({1.0}, kFloat32);
  const std::string plain = to_dot(c);
  CHECK(plain.find("does not require grad") != std::string::npos);
  CHECK(plain.find("->") == std::string::npos);
  CHECK_THROWS_WITH_AS(to_dot(Tensor()), doctest::Contains("to_dot"), Error);
}

TEST_CASE("to_dot: a long chain is walked without recursion") {
  Tensor x = tensor({1.0}, kFloat32, true);
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0;
  const std::string dot = to_dot(y);
  CHECK(dot.find("n20000 [label=\"AccumulateGrad") != std::string::npos);
}
