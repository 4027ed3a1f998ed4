// Neural-network ops with fused kernels: softmax, log_softmax, and the losses cross_entropy (fused
// log-softmax + NLL), nll_loss and binary cross-entropy with logits. Each has one forward kernel and
// one backward node written in Tensor ops, so create_graph differentiates through it again.
#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "../detail/axis_split.hpp"
#include "../detail/op_support.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

// ---- Rows along a dimension ----------------------------------------------------------------------
// A contiguous tensor seen along `dim` as an AxisSplit (axis_split.hpp): `outer` blocks of `n` ×
// `inner` elements; one "row" is the n elements at stride `inner` that share an (outer, inner)
// position. A 0-d tensor is one row of one element.

// o = x - max(x) along each row: the shift that keeps exp from overflowing. For inner > 1 the
// rows are processed side by side (inner consecutive elements at a time), which keeps both the reads
// and the maxima contiguous instead of walking one strided row at a time.
template <class T>
void subtract_row_max(const T* __restrict x, T* __restrict o, const AxisSplit& l) {
  if (l.n == 0 || l.inner == 0) return;
  std::vector<T> mx(l.inner > 1 ? l.inner : 0);
  for (std::size_t b = 0; b < l.outer; ++b) {
    const T* xb = x + b * l.n * l.inner;
    T* ob = o + b * l.n * l.inner;
    if (l.inner == 1) {
      T m = xb[0];
      for (std::size_t j = 1; j < l.n; ++j) m = xb[j] > m ? xb[j] : m;
#pragma omp simd
      for (std::size_t j = 0; j < l.n; ++j) ob[j] = xb[j] - m;
      continue;
    }
    std::copy(xb, xb + l.inner, mx.begin());
    for (std::size_t j = 1; j < l.n; ++j) {
      const T* row = xb + j * l.inner;
      for (std::size_t i = 0; i < l.inner; ++i) mx[i] = row[i] > mx[i] ? row[i] : mx[i];
    }
    for (std::size_t j = 0; j < l.n; ++j) {
      const T* row = xb + j * l.inner;
      T* orow = ob + j * l.inner;
#pragma omp simd
      for (std::size_t i = 0; i < l.inner; ++i) orow[i] = row[i] - mx[i];
    }
  }
}

// Sums of e along each row, one per (outer, inner) position, in that order.
template <class T>
std::vector<T> row_sums(const T* e, const AxisSplit& l) {
  std::vector<T> s(l.outer * l.inner, T(0));
  for (std::size_t b = 0; b < l.outer; ++b) {
    const T* eb = e + b * l.n * l.inner;
    T* sb = s.data() + b * l.inner;
    if (l.inner == 1) {
      T acc = 0;
#pragma omp simd reduction(+ : acc)
      for (std::size_t j = 0; j < l.n; ++j) acc += eb[j];
      sb[0] = acc;
      continue;
    }
    for (std::size_t j = 0; j < l.n; ++j)
      for (std::size_t i = 0; i < l.inner; ++i) sb[i] += eb[j * l.inner + i];
  }
  return s;
}

// o[row] = f(o[row], s[row]) for each element, with s the per-row value from row_sums.
template <class T, class F>
void apply_per_row(T* o, const std::vector<T>& s, const AxisSplit& l, F f) {
  for (std::size_t b = 0; b < l.outer; ++b) {
    T* ob = o + b * l.n * l.inner;
    const T* sb = s.data() + b * l.inner;
    for (std::size_t j = 0; j < l.n; ++j) {
      T* row = ob + j * l.inner;
#pragma omp simd
      for (std::size_t i = 0; i < l.inner; ++i) row[i] = f(row[i], sb[i]);
    }
  }
}

// exp over a whole array, vectorised by xsimd (far faster than std::exp per element).
template <class T>
void exp_in_place(Array<T>& a) {
  xt::noalias(a) = xt::exp(a);
}

template <class T>
Array<T> softmax_kernel(const Array<T>& x, const AxisSplit& l) {
  Array<T> o = empty_array<T>(x.shape());
  subtract_row_max(x.data(), o.data(), l);
  exp_in_place(o);
  std::vector<T> s = row_sums(o.data(), l);
  for (T& v : s) v = T(1) / v;
  apply_per_row(o.data(), s, l, [](T v, T inv) { return v * inv; });
  return o;
}

// log_softmax(x) = (x - max) - log Σ exp(x - max): exact for the largest entry, finite for any input.
template <class T>
Array<T> log_softmax_kernel(const Array<T>& x, const AxisSplit& l) {
  Array<T> o = empty_array<T>(x.shape());
  subtract_row_max(x.data(), o.data(), l);
  Array<T> e = o;
  exp_in_place(e);
  std::vector<T> s = row_sums(e.data(), l);
  for (T& v : s) v = std::log(v);
  apply_per_row(o.data(), s, l, [](T v, T lse) { return v - lse; });
  return o;
}

struct SoftmaxBackward : OpNode {
  SoftmaxBackward(const char* name, int dim) : OpNode(name), dim(dim) {}
  int dim;
  SavedTensor y;  // the output
  void release_variables() override { y.reset(); }
};

struct SoftmaxGrad : SoftmaxBackward {
  explicit SoftmaxGrad(int dim) : SoftmaxBackward("SoftmaxBackward", dim) {}
  TensorList apply(TensorList&& g) override {
    // dy_i/dx_j = y_i (δ_ij - y_j)  =>  dx = y ⊙ (g - Σ_j g_j y_j)
    Tensor yv = y.unpack(this);
    return {mul(yv, sub(g[0], sum(mul(g[0], yv), {dim}, true)))};
  }
};

struct LogSoftmaxGrad : SoftmaxBackward {
  explicit LogSoftmaxGrad(int dim) : SoftmaxBackward("LogSoftmaxBackward", dim) {}
  TensorList apply(TensorList&& g) override {
    // dy_i/dx_j = δ_ij - softmax_j = δ_ij - exp(y_j)  =>  dx = g - exp(y) ⊙ Σ_j g_j
    Tensor yv = y.unpack(this);
    return {sub(g[0], mul(exp(yv), sum(g[0], {dim}, true)))};
  }
};

template <class NodeT, class Kernel>
Tensor softmax_like(const char* op, const Tensor& t, int dim, Kernel kernel) {
  TensorImpl& it = checked(t, op);
  const Shape s = t.shape();
  const std::size_t d = wrap_dim(op, dim, s.size());
  const AxisSplit l = split_at(s, d);
  Tensor out = dispatch(it.dtype, [&](auto tag) {
    using T = decltype(tag);
    return make_tensor(kernel(it.array<T>(), l, T{}));
  });
  if (auto node = record<NodeT>(out, {&t}, static_cast<int>(d))) node->y.save_output(out);
  return out;
}

// ---- Losses --------------------------------------------------------------------------------------
// Per-element losses (accumulated in double) reduced as PyTorch does: None keeps them, Sum adds
// them, Mean divides the sum by their count (nan for none at all, as in PyTorch).
template <class T>
Tensor reduce_losses(Array<T>&& losses, Reduction r) {
  if (r == Reduction::None) return make_tensor(std::move(losses));
  double s = 0;
  const T* p = losses.data();
  const std::size_t n = losses.size();
#pragma omp simd reduction(+ : s)
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(p[i]);
  if (r == Reduction::Mean) s /= static_cast<double>(n);
  Array<T> out = empty_array<T>(Shape{});
  out.data()[0] = static_cast<T>(s);
  return make_tensor(std::move(out));
}

// The gradient of the reduction: what each per-element loss receives from the incoming g. `count` is
// the number of per-element losses; `per_element_shape` is where None's g is reshaped so it
// broadcasts over the class dim.
Tensor reduction_weight(const Tensor& g, Reduction r, std::size_t count, const Shape& per_element_shape) {
  if (r == Reduction::Mean) return div(g, static_cast<double>(count));
  if (r == Reduction::Sum || g.shape() == per_element_shape) return g;
  std::vector<std::int64_t> s(per_element_shape.begin(), per_element_shape.end());
  return reshape(g, s);
}

// Class-index targets: checks shape, dtype and values, and returns the indices.
struct ClassTargets {
  std::size_t rows = 0, classes = 0;
  bool batched = false;  // input (N, C) rather than (C)
  std::vector<std::size_t> index;
};

ClassTargets class_targets(const char* op, const char* input_name, const Tensor& input, const Tensor& target) {
  checked(input, op, input_name);
  checked(target, op, "target");
  const Shape si = input.shape(), st = target.shape();
  if (si.size() != 1 && si.size() != 2)
    fail(op, ": expected ", input_name, " of shape (N, C) or (C), got ", shape_str(si));
  if (target.dtype() != input.dtype())
    fail(op, ": dtype mismatch, ", input_name, " ", input.dtype(), " and target ", target.dtype(),
         " (class indices are held in the ", input_name, "' dtype; convert with .to(dtype))");
  ClassTargets ct;
  ct.batched = si.size() == 2;
  ct.rows = ct.batched ? si[0] : 1;
  ct.classes = si.back();
  const Shape expected = ct.batched ? Shape{si[0]} : Shape{};
  if (st != expected)
    fail(op, ": target shape ", shape_str(st), " does not match ", input_name, " shape ", shape_str(si),
         " (expected target shape ", shape_str(expected), ")");
  ct.index.resize(ct.rows);
  dispatch(target.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = arr<T>(target).data();
    for (std::size_t i = 0; i < ct.rows; ++i) {
      const double v = static_cast<double>(p[i]);
      if (!(v == std::floor(v)))
        fail(op, ": target[", i, "] = ", v, " is not an integral class index");
      if (v < 0 || v >= static_cast<double>(ct.classes))
        fail(op, ": target[", i, "] = ", v, " is out of range for ", ct.classes, " classes (expected 0 <= target < ",
             ct.classes, ")");
      ct.index[i] = static_cast<std::size_t>(v);
    }
  });
  return ct;
}

// A constant (rows, C) or (C) tensor with 1 at each row's target class.
Tensor one_hot(const Shape& shape, Dtype dtype, const std::vector<std::size_t>& index, std::size_t classes) {
  return dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(shape);
    std::fill(o.begin(), o.end(), T(0));
    for (std::size_t i = 0; i < index.size(); ++i) o.data()[i * classes + index[i]] = T(1);
    return make_tensor(std::move(o));
  });
}

Shape per_element_shape(const ClassTargets& ct) { return ct.batched ? Shape{ct.rows, 1} : Shape{}; }

// The tangent of a reduced loss from the tangent of its per-element losses `per` (of a per-element
// shape of rank `rank`, a batch dim in front under a batched level): kept, summed, or averaged over
// `count` elements, as the forward reduces the losses.
Tensor reduce_loss_tangent(const Tensor& per, Reduction r, std::size_t rank, std::size_t count) {
  if (r == Reduction::None) return per;
  Tensor s = per;
  if (rank > 0) {
    const int lead = tangent_batch() ? 1 : 0;
    std::vector<int> dims(rank);
    for (std::size_t i = 0; i < rank; ++i) dims[i] = static_cast<int>(i) + lead;
    s = sum(per, dims, false);
  }
  return r == Reduction::Mean ? div(s, static_cast<double>(count)) : s;
}

struct ClassLossNode : OpNode {
  ClassLossNode(const char* name, ClassTargets ct, Reduction r, Shape in_shape, Dtype dtype)
      : OpNode(name), targets(std::move(ct)), reduction(r), input_shape(std::move(in_shape)), dtype(dtype) {}
  ClassTargets targets;
  Reduction reduction;
  Shape input_shape;
  Dtype dtype;
  Tensor weight(const Tensor& g) const { return reduction_weight(g, reduction, targets.rows, per_element_shape(targets)); }
  Tensor target_one_hot() const { return one_hot(input_shape, dtype, targets.index, targets.classes); }
};

struct CrossEntropyBackward : ClassLossNode {
  using ClassLossNode::ClassLossNode;
  SavedTensor logits;
  TensorList apply(TensorList&& g) override {
    // loss_i = logsumexp(x_i) - x_i[t_i]  =>  d loss_i / d x_i = softmax(x_i) - onehot(t_i)
    if (fused_backward()) return {fused(g[0])};
    Tensor p = softmax(logits.unpack(this), -1);
    return {mul(sub(p, target_one_hot()), weight(g[0]))};
  }
  // The same in one buffer: softmax, minus 1 at each target, times the reduction's weight.
  Tensor fused(const Tensor& G) {
    return dispatch(dtype, [&](auto tag) {
      using T = decltype(tag);
      const std::size_t rows = targets.rows, classes = targets.classes;
      Array<T> o = softmax_kernel<T>(logits.value<T>(this), AxisSplit{rows, classes, 1});
      const T* pg = arr<T>(G).data();
      T* po = o.data();
      for (std::size_t i = 0; i < rows; ++i) {
        T* row = po + i * classes;
        row[targets.index[i]] -= T(1);
        // Mean: g / count (as div(g, count) computes it); Sum: g; None: this row's own g.
        const T w = reduction == Reduction::Mean ? pg[0] / static_cast<T>(static_cast<double>(rows))
                    : reduction == Reduction::Sum ? pg[0]
                                                  : pg[i];
#pragma omp simd
        for (std::size_t j = 0; j < classes; ++j) row[j] *= w;
      }
      return make_tensor(std::move(o));
    });
  }
  void release_variables() override { logits.reset(); }
};

struct NllLossBackward : ClassLossNode {
  using ClassLossNode::ClassLossNode;
  TensorList apply(TensorList&& g) override {
    // loss_i = -lp_i[t_i]  =>  -1 at the target index, 0 elsewhere
    return {mul(target_one_hot(), neg(weight(g[0])))};
  }
};

// An elementwise loss of an input x against a target y of the same shape, reduced by `reduction`.
struct ElementwiseLossNode : OpNode {
  ElementwiseLossNode(const char* name, Reduction r, std::size_t count) : OpNode(name), reduction(r), count(count) {}
  Reduction reduction;
  std::size_t count;
  SavedTensor x, y;
  // The weight of each element's loss in the incoming gradient: g/N for Mean, g otherwise.
  Tensor weight(const Tensor& g) const { return reduction == Reduction::Mean ? div(g, static_cast<double>(count)) : g; }
  void release_variables() override {
    x.reset();
    y.reset();
  }
};

struct BceWithLogitsBackward : ElementwiseLossNode {
  BceWithLogitsBackward(Reduction r, std::size_t count)
      : ElementwiseLossNode("BinaryCrossEntropyWithLogitsBackward", r, count) {}
  TensorList apply(TensorList&& g) override {
    // l = max(x,0) - x·y + log(1 + e^-|x|) = softplus(x) - x·y  =>  dl/dx = σ(x) - y,  dl/dy = -x
    Tensor w = weight(g[0]);
    Tensor xv = x.unpack(this);
    Tensor gx, gy;
    if (needs_input_grad(0)) gx = mul(sub(sigmoid(xv), y.unpack(this)), w);
    if (needs_input_grad(1)) gy = mul(neg(xv), w);
    return {gx, gy};
  }
};

struct BceBackward : ElementwiseLossNode {
  BceBackward(Reduction r, std::size_t count) : ElementwiseLossNode("BinaryCrossEntropyBackward", r, count) {}
  TensorList apply(TensorList&& g) override {
    // l = -(y·log x + (1-y)·log(1-x))  =>  dl/dx = (x - y) / (x(1-x)), with PyTorch's guard: the
    // denominator is clamped at 1e-12 so p = 0 or 1 gives a large finite gradient, never inf or nan.
    // dl/dy = log(1-x) - log(x), with the forward's -100 clamp on each log.
    Tensor w = weight(g[0]);
    Tensor xv = x.unpack(this);
    Tensor gx, gy;
    if (needs_input_grad(0) && fused_backward()) gx = fused_input_grad(w);
    else if (needs_input_grad(0)) gx = mul(div(sub(xv, y.unpack(this)), clamp_min(mul(xv, rsub(xv, 1.0)), 1e-12)), w);
    if (needs_input_grad(1)) gy = mul(sub(clamp_min(log(rsub(xv, 1.0)), -100.0), clamp_min(log(xv), -100.0)), w);
    return {gx, gy};
  }
  // The input gradient above in one pass, operation for operation (w: 0-d, or x's shape for None).
  Tensor fused_input_grad(const Tensor& w) {
    return dispatch(w.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const Array<T>& xs = x.value<T>(this);
      const T* px = xs.data();
      const T* py = y.value<T>(this).data();
      const T* pw = arr<T>(w).data();
      const bool per_element = arr<T>(w).size() != 1 || reduction == Reduction::None;
      Array<T> o = empty_array<T>(xs.shape());
      T* po = o.data();
      const T lo = static_cast<T>(1e-12);
      for (std::size_t i = 0, n = xs.size(); i < n; ++i) {
        T d = px[i] * (T(1) - px[i]);
        d = std::isnan(d) ? d : (d < lo ? lo : d);  // clamp_min(…, 1e-12)
        po[i] = ((px[i] - py[i]) / d) * pw[per_element ? i : 0];
      }
      return make_tensor(std::move(o));
    });
  }
};

}  // namespace

Tensor bce_op(const Tensor& input, const Tensor& target, Reduction reduction) {
  const char* op = "binary_cross_entropy";
  checked(input, op, "input");
  checked(target, op, "target");
  if (target.dtype() != input.dtype())
    fail(op, ": dtype mismatch, input ", input.dtype(), " and target ", target.dtype(), " (convert with .to(dtype))");
  if (target.shape() != input.shape())
    fail(op, ": target shape ", shape_str(target.shape()), " must be the same as input shape ", shape_str(input.shape()));
  Tensor out = dispatch(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = arr<T>(input).data();
    const T* y = arr<T>(target).data();
    Array<T> losses = empty_array<T>(input.shape());
    T* o = losses.data();
    const std::size_t n = losses.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (!(x[i] >= T(0) && x[i] <= T(1)))
        fail(op, ": input must hold probabilities in [0, 1], found ", x[i], " at flat index ", i,
             " (use binary_cross_entropy_with_logits for logits)");
      // Each log is clamped at -100 (PyTorch's rule), so p = 0 or 1 gives a finite loss.
      const T log_x = std::max(std::log(x[i]), T(-100));
      const T log_1mx = std::max(std::log1p(-x[i]), T(-100));
      o[i] = -(y[i] * log_x + (T(1) - y[i]) * log_1mx);
    }
    return reduce_losses(std::move(losses), reduction);
  });
  if (auto node = record<BceBackward>(out, {&input, &target}, reduction, input.numel())) {
    node->x.save_input(input);
    if (node->needs_input_grad(0)) node->y.save_input(target);
  }
  // JVP (PyTorch's: the backward's two derivatives, clamps included, times the tangents):
  // l̇ = ẋ·(x - y)/max(x(1-x), 1e-12) + ẏ·(max(log(1-x), -100) - max(log x, -100)), then reduced.
  record_jvp(op, out, {&input, &target}, [&](Tangents t) {
    Tensor per;
    if (t[0].defined()) per = mul(t[0], div(sub(input, target), clamp_min(mul(input, rsub(input, 1.0)), 1e-12)));
    if (t[1].defined())
      per = add_tangents(per, mul(t[1], sub(clamp_min(log(rsub(input, 1.0)), -100.0), clamp_min(log(input), -100.0))));
    return reduce_loss_tangent(per, reduction, input.shape().size(), input.numel());
  }, JvpBatching::Aware);
  return out;
}

Tensor softmax(const Tensor& t, int dim) {
  Tensor out = softmax_like<SoftmaxGrad>(
      "softmax", t, dim, [](const auto& x, const AxisSplit& l, auto tag) { return softmax_kernel<decltype(tag)>(x, l); });
  // JVP: ẏ = y ⊙ (ṫ - Σ_j ṫ_j y_j) along dim (the transpose of the backward's formula).
  record_jvp("softmax", out, {&t}, [&](Tangents tt) {
    Tensor y = output_alias(out);
    if (t.dim() == 0) return mul(tt[0], 0.0);  // softmax of one element is the constant 1
    return mul(sub(tt[0], sum(mul(tt[0], y), {tangent_dim(dim, static_cast<std::size_t>(t.dim()))}, true)), y);
  }, JvpBatching::Aware);
  return out;
}

Tensor log_softmax(const Tensor& t, int dim) {
  Tensor out = softmax_like<LogSoftmaxGrad>(
      "log_softmax", t, dim, [](const auto& x, const AxisSplit& l, auto tag) { return log_softmax_kernel<decltype(tag)>(x, l); });
  // JVP: ẏ = ṫ - Σ_j ṫ_j softmax_j along dim, softmax = exp(y).
  record_jvp("log_softmax", out, {&t}, [&](Tangents tt) {
    if (t.dim() == 0) return mul(tt[0], 0.0);  // log_softmax of one element is the constant 0
    return sub(tt[0], sum(mul(tt[0], exp(output_alias(out))), {tangent_dim(dim, static_cast<std::size_t>(t.dim()))}, true));
  }, JvpBatching::Aware);
  return out;
}

Tensor cross_entropy_op(const Tensor& logits, const Tensor& target, Reduction reduction) {
  ClassTargets ct = class_targets("cross_entropy", "logits", logits, target);
  const Shape si = logits.shape();
  Tensor out = dispatch(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    // One pass over the logits: shift by the row max, exponentiate (vectorised), and per row
    // loss = log Σ exp(x - max) - (x[t] - max). The shift makes it exact for logits of any size.
    const AxisSplit l{ct.rows, ct.classes, 1};
    Array<T> shifted = empty_array<T>(si);
    subtract_row_max(arr<T>(logits).data(), shifted.data(), l);
    Array<T> e = shifted;
    exp_in_place(e);
    const std::vector<T> s = row_sums(e.data(), l);
    Array<T> losses = empty_array<T>(ct.batched ? Shape{ct.rows} : Shape{});
    for (std::size_t i = 0; i < ct.rows; ++i)
      losses.data()[i] = std::log(s[i]) - shifted.data()[i * ct.classes + ct.index[i]];
    return reduce_losses(std::move(losses), reduction);
  });
  // For the JVP (only when the logits carry a tangent): the targets as a one-hot, kept before the node
  // takes them.
  const bool fw = forward_ad_enabled() && tangent_of(logits).defined();
  const Tensor target_hot = fw ? one_hot(si, logits.dtype(), ct.index, ct.classes) : Tensor();
  const std::size_t rows = ct.rows;
  const std::size_t per_rank = ct.batched ? 1 : 0;
  if (auto node = record<CrossEntropyBackward>(out, {&logits}, "CrossEntropyBackward", std::move(ct), reduction, si,
                                               logits.dtype()))
    node->logits.save_input(logits);
  // JVP: loss_i = logsumexp(x_i) - x_i[t_i]  =>  l̇_i = Σ_j (softmax(x_i) - onehot(t_i))_j ẋ_ij, then reduced.
  record_jvp("cross_entropy", out, {&logits}, [&](Tangents tt) {
    Tensor per = sum(mul(tt[0], sub(softmax(logits, -1), target_hot)), {-1}, false);
    return reduce_loss_tangent(per, reduction, per_rank, rows);
  }, JvpBatching::Aware);
  return out;
}

Tensor nll_loss_op(const Tensor& log_probs, const Tensor& target, Reduction reduction) {
  ClassTargets ct = class_targets("nll_loss", "log_probs", log_probs, target);
  const Shape si = log_probs.shape();
  Tensor out = dispatch(log_probs.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = arr<T>(log_probs).data();
    Array<T> losses = empty_array<T>(ct.batched ? Shape{ct.rows} : Shape{});
    for (std::size_t i = 0; i < ct.rows; ++i) losses.data()[i] = -p[i * ct.classes + ct.index[i]];
    return reduce_losses(std::move(losses), reduction);
  });
  const bool fw = forward_ad_enabled() && tangent_of(log_probs).defined();
  const Tensor target_hot = fw ? one_hot(si, log_probs.dtype(), ct.index, ct.classes) : Tensor();
  const std::size_t rows = ct.rows;
  const std::size_t per_rank = ct.batched ? 1 : 0;
  record<NllLossBackward>(out, {&log_probs}, "NllLossBackward", std::move(ct), reduction, si, log_probs.dtype());
  // JVP: loss_i = -lp_i[t_i]  =>  l̇_i = -(ṫ_i)[t_i], then reduced.
  record_jvp("nll_loss", out, {&log_probs}, [&](Tangents tt) {
    return reduce_loss_tangent(neg(sum(mul(tt[0], target_hot), {-1}, false)), reduction, per_rank, rows);
  }, JvpBatching::Aware);
  return out;
}

Tensor bce_with_logits_op(const Tensor& logits, const Tensor& target, Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  checked(logits, op, "logits");
  checked(target, op, "target");
  if (target.dtype() != logits.dtype())
    fail(op, ": dtype mismatch, logits ", logits.dtype(), " and target ", target.dtype(), " (convert with .to(dtype))");
  if (target.shape() != logits.shape())
    fail(op, ": target shape ", shape_str(target.shape()), " must be the same as logits shape ",
         shape_str(logits.shape()));
  Tensor out = dispatch(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = arr<T>(logits).data();
    const T* y = arr<T>(target).data();
    Array<T> losses = empty_array<T>(logits.shape());
    T* o = losses.data();
    const std::size_t n = losses.size();
    for (std::size_t i = 0; i < n; ++i) {
      // log(1 + e^-|x|) never overflows, and max(x,0) - x·y carries the large part exactly.
      const T ax = x[i] < 0 ? -x[i] : x[i];
      o[i] = (x[i] > 0 ? x[i] : T(0)) - x[i] * y[i] + std::log1p(std::exp(-ax));
    }
    return reduce_losses(std::move(losses), reduction);
  });
  if (auto node = record<BceWithLogitsBackward>(out, {&logits, &target}, reduction, logits.numel())) {
    node->x.save_input(logits);
    if (node->needs_input_grad(0)) node->y.save_input(target);
  }
  // JVP: l = softplus(x) - x·y  =>  l̇ = (σ(x) - y)·ẋ - x·ẏ, then reduced.
  record_jvp(op, out, {&logits, &target}, [&](Tangents t) {
    Tensor per;
    if (t[0].defined()) per = mul(t[0], sub(sigmoid(logits), target));
    if (t[1].defined()) per = add_tangents(per, mul(t[1], neg(logits)));
    return reduce_loss_tangent(per, reduction, logits.shape().size(), logits.numel());
  }, JvpBatching::Aware);
  return out;
}

Tensor Tensor::softmax(int dim) const { return xgrad::softmax(*this, dim); }
Tensor Tensor::log_softmax(int dim) const { return xgrad::log_softmax(*this, dim); }

}  // namespace xgrad
