// + - * / between tensors (broadcasting) and with scalars, and negation: forward and backward side
// by side. Backward formulas are Tensor ops, so they are recorded under create_graph.
#include "../detail/elementwise.hpp"
#include "../detail/record_binary.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace detail {
BroadcastPlan plan_broadcast(const char* op, const Shape& a, const Shape& b) {
  BroadcastPlan p;
  p.out = broadcast_shapes(op, a, b);
  const std::size_t n = p.out.size();
  p.stride_a.assign(n, 0);
  p.stride_b.assign(n, 0);
  auto fill = [&](const Shape& s, std::vector<std::ptrdiff_t>& st) {
    std::ptrdiff_t stride = 1;
    for (std::size_t i = s.size(); i-- > 0;) {
      const std::size_t d = i + (n - s.size());
      st[d] = s[i] == 1 ? 0 : stride;
      stride *= static_cast<std::ptrdiff_t>(s[i]);
    }
  };
  fill(a, p.stride_a);
  fill(b, p.stride_b);
  return p;
}
}  // namespace detail

namespace {

// The node of an op between a tensor and a scalar, or of negation: backward(node, grad) returns the
// tensor's gradient, written beside the op's forward below. Where a formula has a fused loop over
// the gradient (taken when no backward graph is recorded, in place when possible), both compute the
// same values, operation for operation.
template <class Saved, class Backward>
struct ScalarOpBackward final : OpNode {
  ScalarOpBackward(const char* name, Backward b) : OpNode(name), backward(std::move(b)) {}
  [[no_unique_address]] Saved saved;
  [[no_unique_address]] Backward backward;
  TensorList apply(TensorList&& g) override { return {backward(*this, g[0])}; }
  void release_variables() override { saved.reset(); }
};
template <class Saved = NothingSaved, class Backward>
std::shared_ptr<ScalarOpBackward<Saved, Backward>> record_scalar_op(const Tensor& out, const Tensor& a, const char* name,
                                                                    Backward backward) {
  return record<ScalarOpBackward<Saved, Backward>>(out, {&a}, name, std::move(backward));
}
struct SavedInput {
  SavedTensor a;
  void reset() noexcept { a.reset(); }
};

// -g, the derivative of negation and of s - a.
const auto negated = [](auto&, Tensor& g) {
  if (fused_backward()) return grad_map(g, [](auto v) { return -v; });
  return neg(g);
};

template <class T>
T as(double v) {
  return static_cast<T>(v);
}

// out = f(a, s) for a scalar s converted once to the tensor's dtype.
template <class F>
Tensor with_scalar(const char* op, const Tensor& a, double s, F f) {
  TensorImpl& ia = checked(a, op);
  return dispatch(ia.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T v = as<T>(s);
    const Array<T>& x = ia.array<T>();
    Array<T> out = empty_array<T>(x.shape());
    const T* __restrict px = x.data();
    T* __restrict po = out.data();
    const std::size_t n = out.size();
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) po[i] = f(px[i], v);
    return make_tensor(std::move(out));
  });
}

// The JVP of a binary op: `rule(ta, tb)` gets the operands' tangents (either may be undefined = zero)
// made broadcastable against the output (a batch dim in front), and its result is expanded to the
// output's tangent shape.
template <class Rule>
void jvp_binary(const char* op, const Tensor& out, const Tensor& a, const Tensor& b, Rule rule) {
  record_jvp(op, out, {&a, &b}, [&](Tangents t) {
    const std::size_t rank = out.dim();
    return expand_tangent(rule(align_tangent(t[0], rank), align_tangent(t[1], rank)), out.shape());
  }, JvpBatching::Aware);
}
// The JVP of an op between a tensor and a scalar: `rule(t)` of the tensor's tangent.
template <class Rule>
void jvp_scalar_op(const char* op, const Tensor& out, const Tensor& a, Rule rule) {
  record_jvp(op, out, {&a}, [&](Tangents t) { return rule(t[0]); }, JvpBatching::Aware);
}

}  // namespace

// ---- Tensor ⊕ Tensor -----------------------------------------------------------------------------
// Each op's backward sits beside it (record_binary.hpp). Where it has a fused path (taken when no
// backward graph is recorded), both paths compute the same values, operation for operation.
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map("add", a, b, [](auto x, auto y) { return x + y; });
  // d(a+b)/da = d(a+b)/db = 1
  record_binary(out, a, b, "AddBackward", [](auto& n, Tensor& g) -> TensorList {
    const bool want_a = n.needs_input_grad(0), want_b = n.needs_input_grad(1);
    if (!n.broadcast && want_a != want_b) {  // hand the gradient on as it is (no extra reference)
      if (want_a) return {std::move(g), Tensor()};
      return {Tensor(), std::move(g)};
    }
    return {want_a ? n.to_a(g) : Tensor(), want_b ? n.to_b(g) : Tensor()};
  });
  jvp_binary("add", out, a, b, [](const Tensor& ta, const Tensor& tb) { return add_tangents(ta, tb); });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map("sub", a, b, [](auto x, auto y) { return x - y; });
  // d(a-b)/da = 1, d(a-b)/db = -1
  record_binary(out, a, b, "SubBackward", [](auto& n, Tensor& g) -> TensorList {
    const bool want_a = n.needs_input_grad(0), want_b = n.needs_input_grad(1);
    if (!n.broadcast && fused_backward()) {
      // -g first (fresh, or over g when a needs nothing), then g itself for a.
      Tensor gb = want_b ? (want_a ? neg(g) : grad_map(g, [](auto v) { return -v; })) : Tensor();
      return {want_a ? std::move(g) : Tensor(), std::move(gb)};
    }
    return {want_a ? n.to_a(g) : Tensor(), want_b ? n.to_b(neg(g)) : Tensor()};
  });
  jvp_binary("sub", out, a, b, [](const Tensor& ta, const Tensor& tb) {
    return tb.defined() ? add_tangents(ta, neg(tb)) : ta;
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map("mul", a, b, [](auto x, auto y) { return x * y; });
  // d(a*b)/da = b, d(a*b)/db = a
  auto node = record_binary<SavedOperands>(out, a, b, "MulBackward", [](auto& n, Tensor& g) -> TensorList {
    const bool want_a = n.needs_input_grad(0), want_b = n.needs_input_grad(1);
    const SavedTensor &sa = n.saved.a, &sb = n.saved.b;
    if (!n.broadcast && fused_backward()) {
      // g·a first (a fresh tensor when g is still needed for g·b), then g·b, over g if possible.
      const auto times = [](auto x, auto y) { return x * y; };
      Tensor gb = want_b ? (want_a ? mul(g, sa.unpack(&n)) : grad_map(g, sa.storage(&n), times)) : Tensor();
      Tensor ga = want_a ? grad_map(g, sb.storage(&n), times) : Tensor();
      if ((!want_a || ga.defined()) && (!want_b || gb.defined())) return {std::move(ga), std::move(gb)};
    }
    return {want_a ? n.to_a(mul(g, sb.unpack(&n))) : Tensor(), want_b ? n.to_b(mul(g, sa.unpack(&n))) : Tensor()};
  });
  if (node) {
    if (node->needs_input_grad(0)) node->saved.b.save_input(b);
    if (node->needs_input_grad(1)) node->saved.a.save_input(a);
  }
  // JVP: ȧ·b + a·ḃ
  jvp_binary("mul", out, a, b, [&](const Tensor& ta, const Tensor& tb) {
    return add_tangents(ta.defined() ? mul(ta, b) : Tensor(), tb.defined() ? mul(a, tb) : Tensor());
  });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map("div", a, b, [](auto x, auto y) { return x / y; });
  // d(a/b)/da = 1/b, d(a/b)/db = -a/b²
  auto node = record_binary<SavedOperands>(out, a, b, "DivBackward", [](auto& n, Tensor& g) -> TensorList {
    Tensor bv = n.saved.b.unpack(&n);
    Tensor ga, gb;
    if (n.needs_input_grad(0)) ga = n.to_a(div(g, bv));
    if (n.needs_input_grad(1)) gb = n.to_b(div(mul(neg(g), n.saved.a.unpack(&n)), mul(bv, bv)));
    return {ga, gb};
  });
  if (node) {
    node->saved.b.save_input(b);
    if (node->needs_input_grad(1)) node->saved.a.save_input(a);
  }
  // JVP: ȧ/b - a·ḃ/b²
  jvp_binary("div", out, a, b, [&](const Tensor& ta, const Tensor& tb) {
    return add_tangents(ta.defined() ? div(ta, b) : Tensor(), tb.defined() ? neg(div(mul(tb, a), mul(b, b))) : Tensor());
  });
  return out;
}

// ---- Tensor ⊕ scalar ------------------------------------------------------------------------------
Tensor add(const Tensor& a, double s) {
  Tensor out = with_scalar("add", a, s, [](auto x, auto v) { return x + v; });
  // d(a+s)/da = 1
  record_scalar_op(out, a, "AddBackward", [](auto&, Tensor& g) { return std::move(g); });
  jvp_scalar_op("add", out, a, [](const Tensor& t) { return t; });
  return out;
}

Tensor sub(const Tensor& a, double s) {
  Tensor out = with_scalar("sub", a, s, [](auto x, auto v) { return x - v; });
  // d(a-s)/da = 1
  record_scalar_op(out, a, "AddBackward", [](auto&, Tensor& g) { return std::move(g); });
  jvp_scalar_op("sub", out, a, [](const Tensor& t) { return t; });
  return out;
}

Tensor rsub(const Tensor& a, double s) {
  Tensor out = with_scalar("rsub", a, s, [](auto x, auto v) { return v - x; });
  // d(s-a)/da = -1
  record_scalar_op(out, a, "RsubBackward", negated);
  jvp_scalar_op("rsub", out, a, [](const Tensor& t) { return neg(t); });
  return out;
}

Tensor mul(const Tensor& a, double s) {
  Tensor out = with_scalar("mul", a, s, [](auto x, auto v) { return x * v; });
  // d(a*s)/da = s
  record_scalar_op(out, a, "MulBackward", [s](auto&, Tensor& g) {
    if (fused_backward()) return grad_map(g, [s](auto v) { return v * static_cast<decltype(v)>(s); });
    return mul(g, s);
  });
  jvp_scalar_op("mul", out, a, [s](const Tensor& t) { return mul(t, s); });
  return out;
}

Tensor div(const Tensor& a, double s) {
  Tensor out = with_scalar("div", a, s, [](auto x, auto v) { return x / v; });
  // d(a/s)/da = 1/s
  record_scalar_op(out, a, "DivBackward", [s](auto&, Tensor& g) {
    if (fused_backward()) return grad_map(g, [s](auto v) { return v / static_cast<decltype(v)>(s); });
    return div(g, s);
  });
  jvp_scalar_op("div", out, a, [s](const Tensor& t) { return div(t, s); });
  return out;
}

Tensor rdiv(const Tensor& a, double s) {
  Tensor out = with_scalar("rdiv", a, s, [](auto x, auto v) { return v / x; });
  // d(s/a)/da = -s/a²
  auto node = record_scalar_op<SavedInput>(out, a, "DivBackward", [s](auto& n, Tensor& g) {
    Tensor av = n.saved.a.unpack(&n);
    return div(mul(g, -s), mul(av, av));
  });
  if (node) node->saved.a.save_input(a);
  jvp_scalar_op("rdiv", out, a, [&](const Tensor& t) { return div(mul(t, -s), mul(a, a)); });
  return out;
}

Tensor neg(const Tensor& a) {
  Tensor out = scalar_map("neg", a, [](auto x) { return -x; });
  // d(-a)/da = -1
  record_scalar_op(out, a, "NegBackward", negated);
  jvp_scalar_op("neg", out, a, [](const Tensor& t) { return neg(t); });
  return out;
}

// ---- Operators ----------------------------------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return rsub(b, a); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return rdiv(b, a); }
Tensor operator-(const Tensor& a) { return neg(a); }

}  // namespace xgrad
