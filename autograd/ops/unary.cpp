// Elementwise math functions: forward kernels (xsimd-vectorised through xtensor where transcendental)
// and their derivatives, side by side.
#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "../detail/elementwise.hpp"
#include "../detail/record_binary.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

// A node whose backward needs one saved tensor (the op's input or its output).
struct SavedOneNode : OpNode {
  using OpNode::OpNode;
  SavedTensor saved;
  void release_variables() override { saved.reset(); }
};

// No fused kernel: the formula always runs.
struct NoFused {};

// `formula(grad, saved)` in Tensor ops (differentiable again, for create_graph); `fused(g, s)` the
// same per element, operation for operation, run over the gradient's memory when no backward graph is
// recorded (one pass, in place when possible, instead of a tensor per step of the formula).
template <class Formula, class Fused>
struct UnaryBackward : SavedOneNode {
  UnaryBackward(const char* name, Formula f, Fused fu) : SavedOneNode(name), formula(std::move(f)), fused(std::move(fu)) {}
  Formula formula;
  [[no_unique_address]] Fused fused;
  TensorList apply(TensorList&& g) override {
    if constexpr (!std::is_same_v<Fused, NoFused>) {
      if (fused_backward())
        if (Tensor r = grad_map(g[0], saved.storage(this), fused); r.defined()) return {std::move(r)};
    }
    return {formula(g[0], saved.unpack(this))};
  }
};

// Records a node whose gradient is formula(grad, saved), saving the op's input or output.
enum class Save { Input, Output };
template <class Formula, class Fused = NoFused>
void record_unary(const Tensor& out, const Tensor& in, const char* name, Save what, Formula f, Fused fused = {}) {
  if (auto node = record<UnaryBackward<Formula, Fused>>(out, {&in}, name, std::move(f), std::move(fused))) {
    if (what == Save::Input)
      node->saved.save_input(in);
    else
      node->saved.save_output(out);
  }
}

// The JVP of an elementwise function: the tangent times the derivative. `rule(t)` gets the input's
// tangent, batched or not: the derivative has the primal's shape and broadcasts over a batch dim.
template <class Rule>
void jvp_unary(const char* op, const Tensor& out, const Tensor& in, Rule rule) {
  record_jvp(op, out, {&in}, [&](Tangents t) { return rule(t[0]); }, JvpBatching::Aware);
}

}  // namespace

Tensor exp(const Tensor& t) {
  Tensor out = array_map("exp", t, [](const auto& x, auto& o) { xt::noalias(o) = xt::exp(x); });
  // d exp(x) = exp(x)
  record_unary(out, t, "ExpBackward", Save::Output, [](const Tensor& g, const Tensor& y) { return mul(g, y); },
               [](auto g, auto y) { return g * y; });
  // JVP: ṫ·exp(x)
  jvp_unary("exp", out, t, [&](const Tensor& dt) { return mul(dt, output_alias(out)); });
  return out;
}

Tensor log(const Tensor& t) {
  Tensor out = array_map("log", t, [](const auto& x, auto& o) { xt::noalias(o) = xt::log(x); });
  // d log(x) = 1/x
  record_unary(out, t, "LogBackward", Save::Input, [](const Tensor& g, const Tensor& x) { return div(g, x); },
               [](auto g, auto x) { return g / x; });
  jvp_unary("log", out, t, [&](const Tensor& dt) { return div(dt, t); });
  return out;
}

Tensor sqrt(const Tensor& t) {
  Tensor out = array_map("sqrt", t, [](const auto& x, auto& o) { xt::noalias(o) = xt::sqrt(x); });
  // d sqrt(x) = 1 / (2 sqrt(x))
  record_unary(out, t, "SqrtBackward", Save::Output,
               [](const Tensor& g, const Tensor& y) { return div(g, mul(y, 2.0)); },
               [](auto g, auto y) { return g / (y * decltype(y)(2)); });
  jvp_unary("sqrt", out, t, [&](const Tensor& dt) { return div(dt, mul(output_alias(out), 2.0)); });
  return out;
}

Tensor sign(const Tensor& t) {
  // No gradient: sign is piecewise constant.
  return scalar_map("sign", t, [](auto x) { return static_cast<decltype(x)>((x > 0) - (x < 0)); });
}

Tensor abs(const Tensor& t) {
  Tensor out = scalar_map("abs", t, [](auto x) { return x < 0 ? -x : x; });
  // d|x| = sign(x), with sign(0) = 0 as in PyTorch
  record_unary(out, t, "AbsBackward", Save::Input, [](const Tensor& g, const Tensor& x) { return mul(g, sign(x)); });
  jvp_unary("abs", out, t, [&](const Tensor& dt) { return mul(dt, sign(t)); });
  return out;
}

Tensor tanh(const Tensor& t) {
  Tensor out = array_map("tanh", t, [](const auto& x, auto& o) { xt::noalias(o) = xt::tanh(x); });
  // d tanh(x) = 1 - tanh(x)²
  record_unary(out, t, "TanhBackward", Save::Output,
               [](const Tensor& g, const Tensor& y) { return mul(g, rsub(mul(y, y), 1.0)); },
               // y² through fma(y, y, 0), i.e. rounded on its own: otherwise the compiler contracts
               // 1 - y·y into one fused multiply-add and the result differs from the formula's.
               [](auto g, auto y) { return g * (decltype(y)(1) - std::fma(y, y, decltype(y)(0))); });
  jvp_unary("tanh", out, t, [&](const Tensor& dt) {
    Tensor y = output_alias(out);
    return mul(dt, rsub(mul(y, y), 1.0));
  });
  return out;
}

Tensor sigmoid(const Tensor& t) {
  Tensor out = array_map("sigmoid", t, [](const auto& x, auto& o) {
    using T = typename std::decay_t<decltype(x)>::value_type;
    // 1/(1+e^-x) saturates cleanly at both ends: e^-x = inf gives 0, e^-x = 0 gives 1.
    xt::noalias(o) = T(1) / (T(1) + xt::exp(-x));
  });
  // d σ(x) = σ(x)(1 - σ(x))
  record_unary(out, t, "SigmoidBackward", Save::Output,
               [](const Tensor& g, const Tensor& y) { return mul(g, mul(y, rsub(y, 1.0))); },
               [](auto g, auto y) { return g * (y * (decltype(y)(1) - y)); });
  jvp_unary("sigmoid", out, t, [&](const Tensor& dt) {
    Tensor y = output_alias(out);
    return mul(dt, mul(y, rsub(y, 1.0)));
  });
  return out;
}

Tensor relu(const Tensor& t) {
  Tensor out = scalar_map("relu", t, [](auto x) { return x > 0 ? x : decltype(x)(0); });
  // d relu(x) = 1 where relu(x) > 0, else 0 (the subgradient at 0 is 0, as in PyTorch)
  record_unary(out, t, "ReluBackward", Save::Output, [](const Tensor& g, const Tensor& y) { return mul(g, gt(y, 0.0)); },
               [](auto g, auto y) { return g * indicator<decltype(y)>(y > 0); });
  jvp_unary("relu", out, t, [&](const Tensor& dt) { return mul(dt, gt(t, 0.0)); });
  return out;
}

Tensor leaky_relu(const Tensor& t, double slope) {
  Tensor out = dispatch(checked(t, "leaky_relu").dtype, [&](auto tag) {
    using T = decltype(tag);
    const T s = static_cast<T>(slope);
    return scalar_map("leaky_relu", t, [s](T x) { return x > 0 ? x : x * s; });
  });
  // d = 1 where x > 0, else slope (PyTorch's choice at 0: slope)
  record_unary(out, t, "LeakyReluBackward", Save::Input, [slope](const Tensor& g, const Tensor& x) {
    Tensor pos = gt(x, 0.0);
    return mul(g, add(mul(pos, 1.0 - slope), slope));
  });
  jvp_unary("leaky_relu", out, t, [&](const Tensor& dt) { return mul(dt, add(mul(gt(t, 0.0), 1.0 - slope), slope)); });
  return out;
}

Tensor sin(const Tensor& t) {
  Tensor out = array_map("sin", t, [](const auto& x, auto& o) { xt::noalias(o) = xt::sin(x); });
  record_unary(out, t, "SinBackward", Save::Input, [](const Tensor& g, const Tensor& x) { return mul(g, cos(x)); });
  jvp_unary("sin", out, t, [&](const Tensor& dt) { return mul(dt, cos(t)); });
  return out;
}

Tensor cos(const Tensor& t) {
  Tensor out = array_map("cos", t, [](const auto& x, auto& o) { xt::noalias(o) = xt::cos(x); });
  record_unary(out, t, "CosBackward", Save::Input, [](const Tensor& g, const Tensor& x) { return neg(mul(g, sin(x))); });
  jvp_unary("cos", out, t, [&](const Tensor& dt) { return neg(mul(dt, sin(t))); });
  return out;
}

Tensor pow(const Tensor& base, double exponent) {
  Tensor out;
  if (exponent == 2.0) {
    out = scalar_map("pow", base, [](auto x) { return x * x; });
  } else {
    out = array_map("pow", base, [exponent](const auto& x, auto& o) {
      using T = typename std::decay_t<decltype(x)>::value_type;
      xt::noalias(o) = xt::pow(x, static_cast<T>(exponent));
    });
  }
  // d xᵉ = e·xᵉ⁻¹ (and 0 for e = 0, as in PyTorch)
  record_unary(out, base, "PowBackward", Save::Input, [exponent](const Tensor& g, const Tensor& x) {
    if (exponent == 0.0) return zeros_like(x);
    if (exponent == 1.0) return g;
    if (exponent == 2.0) return mul(g, mul(x, 2.0));
    return mul(g, mul(pow(x, exponent - 1.0), exponent));
  });
  jvp_unary("pow", out, base, [&](const Tensor& dt) {
    if (exponent == 0.0) return mul(dt, 0.0);
    if (exponent == 1.0) return dt;
    if (exponent == 2.0) return mul(dt, mul(base, 2.0));
    return mul(dt, mul(pow(base, exponent - 1.0), exponent));
  });
  return out;
}

namespace {

// PyTorch's pow_backward_self: g·e·bᵉ⁻¹, and 0 where e == 0 (where bᵉ⁻¹ may be inf or NaN).
Tensor pow_grad_base(const Tensor& g, const Tensor& b, const Tensor& e) {
  Tensor zero = scalar_tensor(0.0, g.dtype());
  return where(eq(e, 0.0), zero, mul(g, mul(e, pow(b, sub(e, 1.0)))));
}

// PyTorch's pow_backward_exponent: g·bᵉ·log(b), and 0 where b == 0 and e >= 0 (0ᵉ is flat there, and
// 0·log(0) would be NaN).
Tensor pow_grad_exponent(const Tensor& g, const Tensor& b, const Tensor& e, const Tensor& result) {
  Tensor zero = scalar_tensor(0.0, g.dtype());
  Tensor flat = mul(eq(b, 0.0), ge(e, 0.0));
  return mul(g, where(flat, zero, mul(result, log(b))));
}

// What pow(tensor, tensor)'s backward reads.
struct PowSaved {
  SavedTensor base, exponent, result;
  void reset() noexcept {
    base.reset();
    exponent.reset();
    result.reset();
  }
};

struct PowScalarBaseBackward : OpNode {  // s^e
  explicit PowScalarBaseBackward(double s) : OpNode("PowBackward"), base(s) {}
  double base;
  SavedTensor exponent, result;
  TensorList apply(TensorList&& g) override {
    Tensor y = result.unpack(this);
    // d sᵉ/de = sᵉ·log(s); for s == 0 the same rule as above (0 where e >= 0)
    if (base == 0.0) {
      // 0ᵉ is piecewise constant in e, so this gradient is too: y is detached, else create_graph would
      // differentiate y·log(0) = y·(-inf) in the branch `where` drops, and 0·inf makes the second
      // derivative NaN where it is 0.
      Tensor zero = scalar_tensor(0.0, g[0].dtype());
      return {mul(g[0], where(ge(exponent.unpack(this), 0.0), zero, mul(y.detach(), std::log(base))))};
    }
    return {mul(g[0], mul(y, std::log(base)))};
  }
  void release_variables() override {
    exponent.reset();
    result.reset();
  }
};

}  // namespace

Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = binary_map("pow", base, exponent, [](auto x, auto y) { return std::pow(x, y); });
  // d bᵉ/db = e·bᵉ⁻¹, d bᵉ/de = bᵉ·log(b), with PyTorch's rules at the edges (above)
  auto node = record_binary<PowSaved>(out, base, exponent, "PowBackward", [](auto& n, Tensor& g) -> TensorList {
    Tensor b = n.saved.base.unpack(&n), e = n.saved.exponent.unpack(&n);
    return {n.needs_input_grad(0) ? n.to_a(pow_grad_base(g, b, e)) : Tensor(),
            n.needs_input_grad(1) ? n.to_b(pow_grad_exponent(g, b, e, n.saved.result.unpack(&n))) : Tensor()};
  });
  if (node) {
    node->saved.base.save_input(base);
    node->saved.exponent.save_input(exponent);
    if (node->needs_input_grad(1)) node->saved.result.save_output(out);
  }
  // JVP: the two partial derivatives of the backward, times the tangents (broadcast to the output).
  record_jvp("pow", out, {&base, &exponent}, [&](Tangents t) {
    const std::size_t rank = out.dim();
    Tensor r;
    if (t[0].defined()) r = pow_grad_base(align_tangent(t[0], rank), base, exponent);
    if (t[1].defined())
      r = add_tangents(r, pow_grad_exponent(align_tangent(t[1], rank), base, exponent, output_alias(out)));
    return expand_tangent(r, out.shape());
  }, JvpBatching::Aware);
  return out;
}

Tensor pow(double base, const Tensor& exponent) {
  Tensor out = dispatch(checked(exponent, "pow").dtype, [&](auto tag) {
    using T = decltype(tag);
    const T b = static_cast<T>(base);
    return scalar_map("pow", exponent, [b](T x) { return std::pow(b, x); });
  });
  if (auto node = record<PowScalarBaseBackward>(out, {&exponent}, base)) {
    node->result.save_output(out);
    if (base == 0.0) node->exponent.save_input(exponent);
  }
  jvp_unary("pow", out, exponent, [&](const Tensor& dt) {
    if (base == 0.0) {
      Tensor zero = scalar_tensor(0.0, out.dtype());
      return mul(dt, where(ge(exponent, 0.0), zero, mul(output_alias(out).detach(), std::log(base))));
    }
    return mul(dt, mul(output_alias(out), std::log(base)));
  });
  return out;
}

// ---- Methods --------------------------------------------------------------------------------------
Tensor Tensor::neg() const { return xgrad::neg(*this); }
Tensor Tensor::exp() const { return xgrad::exp(*this); }
Tensor Tensor::log() const { return xgrad::log(*this); }
Tensor Tensor::sqrt() const { return xgrad::sqrt(*this); }
Tensor Tensor::abs() const { return xgrad::abs(*this); }
Tensor Tensor::tanh() const { return xgrad::tanh(*this); }
Tensor Tensor::sigmoid() const { return xgrad::sigmoid(*this); }
Tensor Tensor::relu() const { return xgrad::relu(*this); }
Tensor Tensor::leaky_relu(double slope) const { return xgrad::leaky_relu(*this, slope); }
Tensor Tensor::sin() const { return xgrad::sin(*this); }
Tensor Tensor::cos() const { return xgrad::cos(*this); }
Tensor Tensor::pow(double exponent) const { return xgrad::pow(*this, exponent); }
Tensor Tensor::pow(const Tensor& exponent) const { return xgrad::pow(*this, exponent); }

}  // namespace xgrad
