// Normalisation: batch_norm, layer_norm, group_norm.
//
// All three share one op, `normalize`: the input seen as P×Q×R, each of the Q slices (over P and R)
// shifted to mean 0 and scaled to variance 1 with its biased variance — BatchNorm: P = N, Q = C,
// R = spatial; LayerNorm: P = 1, Q = leading dims, R = normalized dims; GroupNorm: P = 1, Q = N·groups,
// R = the group's channels × spatial. Its forward is one pass per slice for the statistics (in double)
// and one for the output. Its backward is PyTorch's
//     dx = invstd · (g - mean(g) - x̂ · mean(g · x̂))        (means over the slice)
// as Tensor ops (slice_invstd and slice_mean are small differentiable ops of their own, invstd
// recomputed from x, x̂ the saved output), so that create_graph differentiates through it again
// (gradient penalties through normalised nets work); with no graph recorded, a fused kernel computes
// the same values in one reduction pass and one output pass per slice.
// The affine part (weight, bias) is an ordinary broadcast mul/add. Forward mode: `normalize` has its
// JVP rule (below); the affine part and eval-mode batch_norm are ops with their own, and the running
// statistics are updated once, by the forward, never by a rule.
#include <cmath>

#include "../detail/op_support.hpp"
#include "../layer_ops.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

struct Slices {
  std::size_t p = 1, q = 1, r = 1;
  std::size_t count() const { return p * r; }
  std::vector<std::int64_t> pqr() const {
    return {static_cast<std::int64_t>(p), static_cast<std::int64_t>(q), static_cast<std::int64_t>(r)};
  }
};

// Σ of value(k) over slice q (k the flat index of an element of the slice), in double, with eight
// accumulators in a fixed order. Every statistic of every path below goes through this one loop, so
// a fused kernel and the Tensor-op formula it stands for add the same values in the same order (the
// bits match); the eight independent accumulators keep the loop from being bound by the latency of
// one and let the compiler put them in vector lanes without reassociating anything.
template <class F>
double slice_sum(const Slices& sl, std::size_t q, F&& value) {
  constexpr std::size_t kLanes = 8;
  double acc[kLanes] = {};
  for (std::size_t p = 0; p < sl.p; ++p) {
    const std::size_t base = (p * sl.q + q) * sl.r;
    std::size_t i = 0;
    for (; i + kLanes <= sl.r; i += kLanes)
      for (std::size_t l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(value(base + i + l));
    for (; i < sl.r; ++i) acc[i % kLanes] += static_cast<double>(value(base + i));
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <class T>
T slice_mean_value(double sum, const Slices& sl) {
  return static_cast<T>(sum / static_cast<double>(sl.count()));
}

// The slice's mean and biased variance (two passes: stable where E[x²] - E[x]² would cancel).
template <class T>
void slice_moments(const T* x, const Slices& sl, std::size_t q, double* mean, double* var) {
  const double m = static_cast<double>(sl.count());
  const double mu = slice_sum(sl, q, [x](std::size_t k) { return x[k]; }) / m;
  *mean = mu;
  *var = slice_sum(sl, q, [x, mu](std::size_t k) {
           const double d = static_cast<double>(x[k]) - mu;
           return d * d;
         }) / m;
}

template <class T>
T invstd_value(double var, double eps) {
  return static_cast<T>(1.0 / std::sqrt(var + eps));
}

// ---- slice_mean(t): the Q means of t seen as P×Q×R, shaped 1×Q×1 -------------------------------------
Tensor slice_mean(const Tensor& t, const Slices& sl);

struct SliceMeanBackward : OpNode {
  explicit SliceMeanBackward(Slices s) : OpNode("SliceMeanBackward"), sl(s) {}
  Slices sl;
  TensorList apply(TensorList&& g) override {
    return {div(expand(g[0], sl.pqr()), static_cast<double>(sl.count()))};
  }
};

Tensor slice_mean(const Tensor& t, const Slices& sl) {
  Tensor out = dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pt = arr<T>(t).data();
    Array<T> o = empty_array<T>(Shape{1, sl.q, 1}, "normalize backward");
    for (std::size_t q = 0; q < sl.q; ++q)
      o.data()[q] = slice_mean_value<T>(slice_sum(sl, q, [pt](std::size_t k) { return pt[k]; }), sl);
    return make_tensor(std::move(o));
  });
  record<SliceMeanBackward>(out, {&t}, sl);
  // JVP: the slice means of the tangent (a batched one [B, P, Q, R] averages over its P and R dims)
  record_jvp("slice_mean", out, {&t}, [&](Tangents tt) {
    return tangent_batch() ? mean(tt[0], {1, 3}, true) : slice_mean(tt[0], sl);
  }, JvpBatching::Aware);
  return out;
}

// The slice means of a tangent shaped like a P×Q×R primal (batched or not), shaped like the primal's.
Tensor slice_mean_tangent(const Tensor& t, const Slices& sl) {
  return tangent_batch() ? mean(t, {1, 3}, true) : slice_mean(t, sl);
}

// ---- slice_invstd(x): 1/sqrt(var + eps) per slice of x (P×Q×R), shaped 1×Q×1 --------------------------
// d inv / d x_k = -inv³ · (x_k - mean) / m (the biased variance's derivative is 2(x_k - mean)/m).
Tensor slice_invstd(const Tensor& x, const Slices& sl, double eps);

struct SliceInvstdBackward : OpNode {
  SliceInvstdBackward(Slices s) : OpNode("SliceInvstdBackward"), sl(s) {}
  Slices sl;
  SavedTensor x, inv;
  TensorList apply(TensorList&& g) override {
    Tensor xv = x.unpack(this), iv = inv.unpack(this);
    Tensor scale = mul(mul(g[0], pow(iv, 3.0)), -1.0 / static_cast<double>(sl.count()));
    return {mul(scale, sub(xv, slice_mean(xv, sl)))};
  }
  void release_variables() override {
    x.reset();
    inv.reset();
  }
};

Tensor slice_invstd(const Tensor& x, const Slices& sl, double eps) {
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = arr<T>(x).data();
    Array<T> o = empty_array<T>(Shape{1, sl.q, 1}, "normalize backward");
    for (std::size_t q = 0; q < sl.q; ++q) {
      double mu, var;
      slice_moments(px, sl, q, &mu, &var);
      o.data()[q] = invstd_value<T>(var, eps);
    }
    return make_tensor(std::move(o));
  });
  if (auto node = record<SliceInvstdBackward>(out, {&x}, sl)) {
    node->x.save_input(x);
    node->inv.save_output(out);
  }
  // JVP: -inv³ · mean((x - mean(x)) · ẋ) per slice
  record_jvp("slice_invstd", out, {&x}, [&](Tangents t) {
    Tensor inv = output_alias(out);
    Tensor centred = sub(x, slice_mean(x, sl));
    return mul(slice_mean_tangent(mul(centred, t[0]), sl), mul(pow(inv, 3.0), -1.0));
  }, JvpBatching::Aware);
  return out;
}

// ---- normalize ----------------------------------------------------------------------------------------
// Backward, PyTorch's dx = invstd · ((g - mean(g)) - x̂ · mean(g · x̂)) per slice. The formula path
// (create_graph) builds it from slice_invstd, slice_mean and broadcast Tensor ops; the fused path
// (no graph recorded) makes one reduction pass (Σg, Σg·x̂) and one output pass per slice, element for
// element the same operations in the same order.
struct NormalizeBackward : OpNode {
  NormalizeBackward(Slices s, double e) : OpNode("NativeNormBackward"), sl(s), eps(e) {}
  Slices sl;
  double eps;
  SavedTensor x, y;
  TensorList apply(TensorList&& g) override {
    const Shape shape = g[0].shape();
    if (g[0].numel() == 0) return {zeros(shape, g[0].dtype())};
    if (fused_backward()) return {fused(g[0])};
    const std::vector<std::int64_t> pqr = sl.pqr();
    Tensor x3 = reshape(x.unpack(this), pqr), g3 = reshape(g[0], pqr), y3 = reshape(y.unpack(this), pqr);
    Tensor invstd = slice_invstd(x3, sl, eps);
    Tensor inner = sub(sub(g3, slice_mean(g3, sl)), mul(y3, slice_mean(mul(g3, y3), sl)));
    return {reshape(mul(invstd, inner), std::vector<std::int64_t>(shape.begin(), shape.end()))};
  }
  Tensor fused(const Tensor& G) {
    return dispatch(G.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* pg = arr<T>(G).data();
      const T* px = x.value<T>(this).data();
      const T* py = y.value<T>(this).data();
      Array<T> o = empty_array<T>(G.shape(), "normalize backward");
      T* po = o.data();
      for (std::size_t q = 0; q < sl.q; ++q) {
        double mu, var;
        slice_moments(px, sl, q, &mu, &var);
        const T inv = invstd_value<T>(var, eps);
        const T mg = slice_mean_value<T>(slice_sum(sl, q, [pg](std::size_t k) { return pg[k]; }), sl);
        const T mgy = slice_mean_value<T>(slice_sum(sl, q, [pg, py](std::size_t k) { return T(pg[k] * py[k]); }), sl);
        for (std::size_t p = 0; p < sl.p; ++p) {
          const std::size_t base = (p * sl.q + q) * sl.r;
#pragma omp simd
          for (std::size_t i = base; i < base + sl.r; ++i) po[i] = inv * ((pg[i] - mg) - py[i] * mgy);
        }
      }
      return make_tensor(std::move(o));
    });
  }
  void release_variables() override {
    x.reset();
    y.reset();
  }
};

// 1/sqrt(var + eps) per slice, shaped 1×Q×1, for the JVP rule. When reverse mode may differentiate
// the rule (x requires grad), the differentiable slice_invstd op on x; otherwise a constant from the
// forward's variances (no second pass over x).
Tensor jvp_invstd(const Tensor& x, const Slices& sl, double eps, const std::vector<double>& var) {
  if (is_grad_enabled() && x.requires_grad()) return slice_invstd(reshape(x, sl.pqr()), sl, eps);
  return dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> a = empty_array<T>(Shape{1, sl.q, 1}, "normalize");
    for (std::size_t q = 0; q < sl.q; ++q) a.data()[q] = invstd_value<T>(var[q], eps);
    return make_tensor(std::move(a));
  });
}

// x̂; fills the per-slice mean and biased variance when asked (BatchNorm's running statistics).
Tensor normalize(const char* op, const Tensor& x, Slices sl, double eps, std::vector<double>* mean_out = nullptr,
                 std::vector<double>* var_out = nullptr) {
  std::vector<double> mu(sl.q, 0.0), var(sl.q, 0.0);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = arr<T>(x).data();
    Array<T> o = empty_array<T>(x.shape(), "normalize");
    T* po = o.data();
    if (sl.count() == 0) return make_tensor(std::move(o));
    for (std::size_t q = 0; q < sl.q; ++q) {
      slice_moments(px, sl, q, &mu[q], &var[q]);
      const T tm = static_cast<T>(mu[q]), tinv = invstd_value<T>(var[q], eps);
      for (std::size_t p = 0; p < sl.p; ++p) {
        const T* row = px + (p * sl.q + q) * sl.r;
        T* orow = po + (p * sl.q + q) * sl.r;
#pragma omp simd
        for (std::size_t i = 0; i < sl.r; ++i) orow[i] = (row[i] - tm) * tinv;
      }
    }
    return make_tensor(std::move(o));
  });
  if (auto node = record<NormalizeBackward>(out, {&x}, sl, eps)) {
    node->x.save_input(x);
    node->y.save_output(out);
  }
  // JVP (PyTorch's batch_norm_jvp / layer_norm_jvp, before the affine part): with s = invstd,
  //   dx̂ = s·(dx - dμ) + (x - μ)·ds,  dμ = mean(dx),  ds = -s³·mean((x - μ)·dx)
  // and (x - μ)·s = x̂, so dx̂ = s·(ẋ - mean(ẋ) - x̂·mean(x̂·ẋ)) over each slice: the backward's
  // formula (the Jacobian is symmetric) applied to the tangent. Batch-aware: a batched tangent's
  // means run over its own P and R dims, the statistics broadcast over the batch dim.
  record_jvp(op, out, {&x}, [&](Tangents t) -> Tensor {
    if (x.numel() == 0) return zero_tangent(x);
    Tensor t3 = reshape(t[0], tangent_shape(Shape{sl.p, sl.q, sl.r}));
    Tensor y3 = reshape(output_alias(out), sl.pqr());
    Tensor inner = sub(sub(t3, slice_mean_tangent(t3, sl)), mul(y3, slice_mean_tangent(mul(t3, y3), sl)));
    return reshape(mul(jvp_invstd(x, sl, eps, var), inner), tangent_shape(x.shape()));
  }, JvpBatching::Aware);
  if (mean_out) *mean_out = std::move(mu);
  if (var_out) *var_out = std::move(var);
  return out;
}

void check_param(const char* op, const char* name, const Tensor& t, const Shape& expected, const Tensor& input) {
  if (!t.defined()) return;
  check_same_dtype(op, input, t);
  if (t.shape() != expected)
    fail(op, ": ", name, " of shape ", shape_str(t.shape()), " must have shape ", shape_str(expected), " for input of shape ",
         shape_str(input.shape()));
}

// A per-channel C vector reshaped to broadcast over N×C×*: (C, 1, ..., 1).
Tensor per_channel(const Tensor& v, std::size_t rank) {
  std::vector<std::int64_t> s(rank - 1, 1);
  s[0] = static_cast<std::int64_t>(v.numel());
  return reshape(v, s);
}

Tensor affine(Tensor y, const Tensor& weight, const Tensor& bias, std::size_t rank, bool channel_wise) {
  if (weight.defined()) y = mul(y, channel_wise ? per_channel(weight, rank) : weight);
  if (bias.defined()) y = add(y, channel_wise ? per_channel(bias, rank) : bias);
  return y;
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  checked(input, op);
  const Shape s = input.shape();
  if (s.size() < 2) fail(op, ": expected an input of shape (N, C, ...) with at least 2 dims, got shape ", shape_str(s));
  const std::size_t c = s[1];
  check_param(op, "running_mean", running_mean, {c}, input);
  check_param(op, "running_var", running_var, {c}, input);
  check_param(op, "weight", weight, {c}, input);
  check_param(op, "bias", bias, {c}, input);
  if (running_mean.defined() != running_var.defined())
    fail(op, ": running_mean and running_var must both be defined or both undefined");
  Slices sl{s[0], c, 1};
  for (std::size_t d = 2; d < s.size(); ++d) sl.r *= s[d];
  const bool batch_stats = training || !running_mean.defined();
  if (!batch_stats) {
    // Eval: a fixed affine map per channel, (x - running_mean) / sqrt(running_var + eps).
    Tensor inv = pow(add(per_channel(running_var.detach(), s.size()), eps), -0.5);
    Tensor y = mul(sub(input, per_channel(running_mean.detach(), s.size())), inv);
    return affine(y, weight, bias, s.size(), true);
  }
  const std::size_t m = sl.p * sl.r;
  if (training && m <= 1 && input.numel() != 0)
    fail(op, ": expected more than 1 value per channel when training, got input of shape ", shape_str(s));
  std::vector<double> mu, var;
  Tensor y = normalize(op, input, sl, eps, &mu, &var);
  if (training && running_mean.defined() && m > 1) {
    // PyTorch's update: r = momentum·batch + (1 - momentum)·r, the variance unbiased.
    dispatch(input.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* rm = const_cast<Tensor&>(running_mean).data<T>().data();
      T* rv = const_cast<Tensor&>(running_var).data<T>().data();
      const double unbias = static_cast<double>(m) / static_cast<double>(m - 1);
      for (std::size_t q = 0; q < c; ++q) {
        rm[q] = static_cast<T>(momentum * mu[q] + (1 - momentum) * static_cast<double>(rm[q]));
        rv[q] = static_cast<T>(momentum * var[q] * unbias + (1 - momentum) * static_cast<double>(rv[q]));
      }
    });
  }
  return affine(y, weight, bias, s.size(), true);
}

Tensor layer_norm(const Tensor& input, const std::vector<std::size_t>& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  checked(input, op);
  const Shape s = input.shape();
  const Shape ns(normalized_shape.begin(), normalized_shape.end());
  bool match = !ns.empty() && ns.size() <= s.size();
  for (std::size_t i = 0; match && i < ns.size(); ++i) match = s[s.size() - ns.size() + i] == ns[i];
  if (!match)
    fail(op, ": normalized_shape ", shape_str(ns), " does not match the trailing dims of input shape ", shape_str(s));
  check_param(op, "weight", weight, ns, input);
  check_param(op, "bias", bias, ns, input);
  Slices sl;
  for (std::size_t d = 0; d < s.size() - ns.size(); ++d) sl.q *= s[d];
  for (std::size_t v : ns) sl.r *= v;
  return affine(normalize(op, input, sl, eps), weight, bias, s.size(), false);
}

Tensor group_norm(const Tensor& input, std::size_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "group_norm";
  checked(input, op);
  const Shape s = input.shape();
  if (s.size() < 2) fail(op, ": expected an input of shape (N, C, ...) with at least 2 dims, got shape ", shape_str(s));
  const std::size_t c = s[1];
  if (num_groups == 0 || c % num_groups != 0)
    fail(op, ": the number of channels ", c, " must be divisible by num_groups ", num_groups, "; input shape ",
         shape_str(s));
  check_param(op, "weight", weight, {c}, input);
  check_param(op, "bias", bias, {c}, input);
  Slices sl{1, s[0] * num_groups, c / num_groups};
  for (std::size_t d = 2; d < s.size(); ++d) sl.r *= s[d];
  return affine(normalize(op, input, sl, eps), weight, bias, s.size(), true);
}

}  // namespace xgrad
