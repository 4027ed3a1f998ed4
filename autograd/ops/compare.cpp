// Comparisons (0/1 results, no gradient), where, maximum/minimum and clamp.
#include <cmath>

#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "../detail/elementwise.hpp"
#include "../detail/record_binary.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

template <class F>
Tensor compare_scalar(const char* op, const Tensor& a, double s, F f) {
  TensorImpl& ia = checked(a, op);
  return dispatch(ia.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T v = static_cast<T>(s);
    return scalar_map(op, a, [v, f](T x) { return static_cast<T>(f(x, v)); });
  });
}

template <class F>
Tensor compare(const char* op, const Tensor& a, const Tensor& b, F f) {
  return binary_map(op, a, b, [f](auto x, auto y) { return static_cast<decltype(x)>(f(x, y)); });
}

struct WhereBackward : OpNode {
  WhereBackward() : OpNode("WhereBackward") {}
  Tensor cond;  // no gradient flows into it
  Shape a_shape, b_shape;
  TensorList apply(TensorList&& g) override {
    Tensor zero = scalar_tensor(0.0, g[0].dtype());
    return {Tensor(),
            needs_input_grad(1) ? sum_to(where(cond, g[0], zero), a_shape) : Tensor(),
            needs_input_grad(2) ? sum_to(where(cond, zero, g[0]), b_shape) : Tensor()};
  }
  void release_variables() override { cond = Tensor(); }
};

struct ClampBackward : OpNode {
  ClampBackward(double lo, double hi) : OpNode("ClampBackward"), lo(lo), hi(hi) {}
  double lo, hi;
  SavedTensor x;
  TensorList apply(TensorList&& g) override {
    // Gradient passes where lo <= x <= hi (both bounds inclusive, as in PyTorch).
    Tensor xv = x.unpack(this);
    Tensor mask = mul(ge(xv, lo), le(xv, hi));
    return {mul(g[0], mask)};
  }
  void release_variables() override { x.reset(); }
};

// maximum/minimum: the gradient goes to the winning operand, split evenly on ties (PyTorch's rule).
Tensor extremum(const char* op, const char* node_name, bool is_max, const Tensor& a, const Tensor& b) {
  Tensor out = binary_map(op, a, b, [is_max](auto x, auto y) {
    if (std::isnan(x)) return x;  // NaN propagates, as in PyTorch
    if (std::isnan(y)) return y;
    return is_max ? (x > y ? x : y) : (x < y ? x : y);
  });
  auto node = record_binary<SavedOperands>(out, a, b, node_name, [is_max](auto& n, Tensor& g) -> TensorList {
    Tensor av = n.saved.a.unpack(&n), bv = n.saved.b.unpack(&n);
    Tensor tie = mul(eq(av, bv), 0.5);
    Tensor win_a = add(is_max ? gt(av, bv) : lt(av, bv), tie);
    Tensor win_b = add(is_max ? lt(av, bv) : gt(av, bv), tie);
    return {n.needs_input_grad(0) ? n.to_a(mul(g, win_a)) : Tensor(),
            n.needs_input_grad(1) ? n.to_b(mul(g, win_b)) : Tensor()};
  });
  if (node) {
    node->saved.a.save_input(a);
    node->saved.b.save_input(b);
  }
  // JVP (PyTorch's): ȧ where a wins, ḃ where b wins, their mean on ties: the backward's weights.
  record_jvp(op, out, {&a, &b}, [&](Tangents t) {
    const std::size_t rank = out.dim();
    Tensor tie = mul(eq(a, b), 0.5);
    Tensor r;
    if (t[0].defined()) r = mul(align_tangent(t[0], rank), add(is_max ? gt(a, b) : lt(a, b), tie));
    if (t[1].defined()) r = add_tangents(r, mul(align_tangent(t[1], rank), add(is_max ? lt(a, b) : gt(a, b), tie)));
    return expand_tangent(r, out.shape());
  }, JvpBatching::Aware);
  return out;
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare("eq", a, b, [](auto x, auto y) { return x == y; }); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", a, b, [](auto x, auto y) { return x != y; }); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare("lt", a, b, [](auto x, auto y) { return x < y; }); }
Tensor le(const Tensor& a, const Tensor& b) { return compare("le", a, b, [](auto x, auto y) { return x <= y; }); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare("gt", a, b, [](auto x, auto y) { return x > y; }); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare("ge", a, b, [](auto x, auto y) { return x >= y; }); }
Tensor eq(const Tensor& a, double b) { return compare_scalar("eq", a, b, [](auto x, auto y) { return x == y; }); }
Tensor ne(const Tensor& a, double b) { return compare_scalar("ne", a, b, [](auto x, auto y) { return x != y; }); }
Tensor lt(const Tensor& a, double b) { return compare_scalar("lt", a, b, [](auto x, auto y) { return x < y; }); }
Tensor le(const Tensor& a, double b) { return compare_scalar("le", a, b, [](auto x, auto y) { return x <= y; }); }
Tensor gt(const Tensor& a, double b) { return compare_scalar("gt", a, b, [](auto x, auto y) { return x > y; }); }
Tensor ge(const Tensor& a, double b) { return compare_scalar("ge", a, b, [](auto x, auto y) { return x >= y; }); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  checked(cond, "where", "condition");
  check_same_dtype("where", a, b);
  if (cond.dtype() != a.dtype())
    fail("where: condition has dtype ", cond.dtype(), " but the values have dtype ", a.dtype());
  const Shape out_shape = broadcast_shapes("where", broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  Tensor out = dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(out_shape);
    xt::noalias(o) = xt::where(xt::not_equal(arr<T>(cond), T(0)), arr<T>(a), arr<T>(b));
    return make_tensor(std::move(o));
  });
  if (auto node = record<WhereBackward>(out, {&cond, &a, &b})) {
    node->cond = cond.detach();
    node->a_shape = a.shape();
    node->b_shape = b.shape();
  }
  // JVP: where(cond, ȧ, ḃ), a missing tangent being zero. The condition takes no tangent.
  record_jvp("where", out, {&cond, &a, &b}, [&](Tangents t) {
    if (!t[1].defined() && !t[2].defined()) return Tensor();
    const std::size_t rank = out.dim();
    Tensor zero = scalar_tensor(0.0, out.dtype());
    Tensor c = cond.detach();
    Tensor ta = t[1].defined() ? align_tangent(t[1], rank) : zero;
    Tensor tb = t[2].defined() ? align_tangent(t[2], rank) : zero;
    // (Broadcasting aligns trailing dims: the condition lines up with a batched tangent's primal dims.)
    return expand_tangent(where(c, ta, tb), out.shape());
  }, JvpBatching::Aware);
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum("maximum", "MaximumBackward", true, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum("minimum", "MinimumBackward", false, a, b); }

Tensor clamp(const Tensor& t, double lo, double hi) {
  if (lo > hi) fail("clamp: min (", lo, ") must not exceed max (", hi, ")");
  Tensor out = dispatch(checked(t, "clamp").dtype, [&](auto tag) {
    using T = decltype(tag);
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    return scalar_map("clamp", t, [l, h](T x) { return std::isnan(x) ? x : (x < l ? l : (x > h ? h : x)); });
  });
  if (auto node = record<ClampBackward>(out, {&t}, lo, hi)) node->x.save_input(t);
  // JVP (PyTorch's): the tangent where lo <= x <= hi, zero elsewhere (the backward's mask).
  record_jvp("clamp", out, {&t}, [&](Tangents tt) { return mul(tt[0], mul(ge(t, lo), le(t, hi))); },
             JvpBatching::Aware);
  return out;
}

Tensor clamp_min(const Tensor& t, double lo) { return clamp(t, lo, INFINITY); }
Tensor clamp_max(const Tensor& t, double hi) { return clamp(t, -INFINITY, hi); }

Tensor Tensor::clamp(double lo, double hi) const { return xgrad::clamp(*this, lo, hi); }

}  // namespace xgrad
