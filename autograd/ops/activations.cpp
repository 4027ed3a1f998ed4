// Smooth activations (gelu, silu, elu, softplus) and the special functions erf, log1p, expm1:
// forward kernels and derivatives side by side. Each backward is a formula in Tensor ops, so it is
// differentiable again (the derivative formulas use only ops with their own derivatives), and each
// JVP is the same formula applied to the tangent (record_elementwise).
#include <cmath>

#include "../detail/elementwise.hpp"
#include "../layer_ops.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kTwoOverSqrtPi = 1.1283791670955126;   // 2/√π
constexpr double kInvSqrt2Pi = 0.3989422804014327;      // 1/√(2π)
constexpr double kSqrt2OverPi = 0.7978845608028654;     // √(2/π)
constexpr double kGeluTanhCoef = 0.044715;

// A node whose gradient is formula(g, saved), saved = the op's input or output.
template <class Formula>
struct ElementwiseBackward : OpNode {
  ElementwiseBackward(const char* name, Formula f) : OpNode(name), formula(std::move(f)) {}
  Formula formula;
  SavedTensor saved;
  TensorList apply(TensorList&& g) override { return {formula(g[0], saved.unpack(this))}; }
  void release_variables() override { saved.reset(); }
};

// Records the backward and the JVP of an elementwise op. Each formula is g·f'(saved), linear in g and
// elementwise, so the JVP is the same formula applied to the tangent: formula(ṫ, saved). A batched
// tangent [B, shape...] broadcasts against the saved tensor, so the rule is batch-aware as it stands.
// The JVP reads the output through output_alias (never `out` itself).
template <class Formula>
void record_elementwise(const char* op, const Tensor& out, const Tensor& in, const char* name, bool save_output,
                        Formula f) {
  if (auto node = record<ElementwiseBackward<Formula>>(out, {&in}, name, f)) {
    if (save_output)
      node->saved.save_output(out);
    else
      node->saved.save_input(in);
  }
  record_jvp(op, out, {&in}, [&](Tangents t) { return f(t[0], save_output ? output_alias(out) : in); },
             JvpBatching::Aware);
}

// f applied per element with T = the tensor's dtype and parameters cast to it.
template <class F>
Tensor map_typed(const char* op, const Tensor& t, F f) {
  return dispatch(checked(t, op).dtype, [&](auto tag) {
    using T = decltype(tag);
    return scalar_map(op, t, [&f](T x) { return f(x); });
  });
}

}  // namespace

Tensor erf(const Tensor& t) {
  Tensor out = map_typed("erf", t, [](auto x) { return std::erf(x); });
  // d erf(x) = 2/√π · exp(-x²)
  record_elementwise("erf", out, t, "ErfBackward", false, [](const Tensor& g, const Tensor& x) {
    return mul(g, mul(exp(neg(mul(x, x))), kTwoOverSqrtPi));
  });
  return out;
}

Tensor log1p(const Tensor& t) {
  Tensor out = map_typed("log1p", t, [](auto x) { return std::log1p(x); });
  // d log(1 + x) = 1 / (1 + x)
  record_elementwise("log1p", out, t, "Log1PBackward", false, [](const Tensor& g, const Tensor& x) { return div(g, add(x, 1.0)); });
  return out;
}

Tensor expm1(const Tensor& t) {
  Tensor out = map_typed("expm1", t, [](auto x) { return std::expm1(x); });
  // d (e^x - 1) = e^x = y + 1
  record_elementwise("expm1", out, t, "Expm1Backward", true, [](const Tensor& g, const Tensor& y) { return mul(g, add(y, 1.0)); });
  return out;
}

Tensor silu(const Tensor& t) {
  Tensor out = map_typed("silu", t, [](auto x) { return x / (decltype(x)(1) + std::exp(-x)); });
  // silu = x·σ(x)  =>  d = σ(x)·(1 + x·(1 - σ(x)))
  record_elementwise("silu", out, t, "SiluBackward", false, [](const Tensor& g, const Tensor& x) {
    Tensor s = sigmoid(x);
    return mul(g, mul(s, add(mul(x, rsub(s, 1.0)), 1.0)));
  });
  return out;
}

Tensor gelu(const Tensor& t, GeluApproximate approximate) {
  if (approximate == GeluApproximate::Tanh) {
    Tensor out = map_typed("gelu", t, [](auto x) {
      using T = decltype(x);
      const T u = static_cast<T>(kSqrt2OverPi) * (x + static_cast<T>(kGeluTanhCoef) * x * x * x);
      return T(0.5) * x * (T(1) + std::tanh(u));
    });
    // y = ½x(1 + tanh u), u = √(2/π)(x + c·x³)  =>  d = ½(1 + t) + ½x(1 - t²)·√(2/π)(1 + 3c·x²)
    record_elementwise("gelu", out, t, "GeluBackward", false, [](const Tensor& g, const Tensor& x) {
      Tensor x2 = mul(x, x);
      Tensor th = tanh(mul(add(x, mul(mul(x2, x), kGeluTanhCoef)), kSqrt2OverPi));
      Tensor du = mul(add(mul(x2, 3 * kGeluTanhCoef), 1.0), kSqrt2OverPi);
      Tensor d = add(mul(add(th, 1.0), 0.5), mul(mul(mul(x, 0.5), rsub(mul(th, th), 1.0)), du));
      return mul(g, d);
    });
    return out;
  }
  Tensor out = map_typed("gelu", t, [](auto x) {
    using T = decltype(x);
    return x * T(0.5) * (T(1) + std::erf(x / static_cast<T>(kSqrt2)));
  });
  // y = x·Φ(x)  =>  d = Φ(x) + x·φ(x), Φ(x) = ½(1 + erf(x/√2)), φ(x) = exp(-x²/2)/√(2π)
  record_elementwise("gelu", out, t, "GeluBackward", false, [](const Tensor& g, const Tensor& x) {
    Tensor cdf = mul(add(erf(div(x, kSqrt2)), 1.0), 0.5);
    Tensor pdf = mul(exp(mul(mul(x, x), -0.5)), kInvSqrt2Pi);
    return mul(g, add(cdf, mul(x, pdf)));
  });
  return out;
}

Tensor elu(const Tensor& t, double alpha) {
  Tensor out = dispatch(checked(t, "elu").dtype, [&](auto tag) {
    using T = decltype(tag);
    const T a = static_cast<T>(alpha);
    return scalar_map("elu", t, [a](T x) { return x > 0 ? x : a * std::expm1(x); });
  });
  // d = 1 for x > 0, else α·e^x (PyTorch's value at 0: α). e^min(x, 0) keeps the unused branch finite.
  record_elementwise("elu", out, t, "EluBackward", false, [alpha](const Tensor& g, const Tensor& x) {
    return where(gt(x, 0.0), g, mul(g, mul(exp(clamp_max(x, 0.0)), alpha)));
  });
  return out;
}

Tensor softplus(const Tensor& t, double beta, double threshold) {
  Tensor out = dispatch(checked(t, "softplus").dtype, [&](auto tag) {
    using T = decltype(tag);
    const T b = static_cast<T>(beta), th = static_cast<T>(threshold);
    return scalar_map("softplus", t, [b, th](T x) { return x * b > th ? x : std::log1p(std::exp(x * b)) / b; });
  });
  // d = 1 where βx > threshold (the linear part), else σ(βx)
  record_elementwise("softplus", out, t, "SoftplusBackward", false, [beta, threshold](const Tensor& g, const Tensor& x) {
    Tensor bx = mul(x, beta);
    return where(gt(bx, threshold), g, mul(g, sigmoid(bx)));
  });
  return out;
}

}  // namespace xgrad
