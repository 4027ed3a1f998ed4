// Normalisation: batch_norm, layer_norm, group_norm.
//
// All three share one op, `normalize`: the input seen as P×Q×R, each of the Q slices (over P and R)
// shifted to mean 0 and scaled to variance 1 with its biased variance — BatchNorm: P = N, Q = C,
// R = spatial; LayerNorm: P = 1, Q = leading dims, R = normalized dims; GroupNorm: P = 1, Q = N·groups,
// R = the group's channels × spatial. Its forward is one pass per slice for the statistics (in double)
// and one for the output. Its backward is PyTorch's
//     dx = invstd · (g - mean(g) - x̂ · mean(g · x̂))        (means over the slice)
// in Tensor ops, with invstd recomputed from x by Tensor ops and x̂ the saved output, so that
// create_graph differentiates through it again (gradient penalties through normalised nets work).
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
};

struct NormalizeBackward : OpNode {
  NormalizeBackward(Slices s, double e) : OpNode("NativeNormBackward"), sl(s), eps(e) {}
  Slices sl;
  double eps;
  SavedTensor x, y;
  TensorList apply(TensorList&& g) override {
    Tensor xv = x.unpack(this);
    const Shape shape = xv.shape();
    if (xv.numel() == 0) return {zeros(shape, xv.dtype())};
    const std::vector<std::int64_t> pqr{static_cast<std::int64_t>(sl.p), static_cast<std::int64_t>(sl.q),
                                        static_cast<std::int64_t>(sl.r)};
    const std::vector<int> dims{0, 2};
    Tensor x3 = reshape(xv, pqr), g3 = reshape(g[0], pqr), y3 = reshape(y.unpack(this), pqr);
    Tensor invstd = pow(add(var(x3, dims, false, true), eps), -0.5);
    Tensor inner = sub(sub(g3, mean(g3, dims, true)), mul(y3, mean(mul(g3, y3), dims, true)));
    return {reshape(mul(invstd, inner), std::vector<std::int64_t>(shape.begin(), shape.end()))};
  }
  void release_variables() override {
    x.reset();
    y.reset();
  }
};

// 1/sqrt(var + eps) per slice, shaped 1×Q×1, for the JVP rule. When reverse mode may differentiate
// the rule (x requires grad), recomputed from x by Tensor ops; otherwise a constant from the forward's
// variances (no second pass over x).
Tensor slice_invstd(const Tensor& x, Slices sl, double eps, const std::vector<double>& var,
                    const std::vector<std::int64_t>& pqr) {
  if (is_grad_enabled() && x.requires_grad())
    return pow(add(xgrad::var(reshape(x, pqr), {0, 2}, false, true), eps), -0.5);
  return dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> a = empty_array<T>(Shape{1, sl.q, 1}, "normalize");
    for (std::size_t q = 0; q < sl.q; ++q) a.data()[q] = static_cast<T>(1.0 / std::sqrt(var[q] + eps));
    return make_tensor(std::move(a));
  });
}

// x̂; fills the per-slice mean and biased variance when asked (BatchNorm's running statistics).
Tensor normalize(const char* op, const Tensor& x, Slices sl, double eps, std::vector<double>* mean_out = nullptr,
                 std::vector<double>* var_out = nullptr) {
  const std::size_t m = sl.p * sl.r;
  std::vector<double> mu(sl.q, 0.0), var(sl.q, 0.0);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = arr<T>(x).data();
    Array<T> o = empty_array<T>(x.shape(), "normalize");
    T* po = o.data();
    for (std::size_t q = 0; q < sl.q; ++q) {
      double s = 0;
      for (std::size_t p = 0; p < sl.p; ++p) {
        const T* row = px + (p * sl.q + q) * sl.r;
#pragma omp simd reduction(+ : s)
        for (std::size_t i = 0; i < sl.r; ++i) s += static_cast<double>(row[i]);
      }
      const double mean = s / static_cast<double>(m);
      double ss = 0;
      for (std::size_t p = 0; p < sl.p; ++p) {
        const T* row = px + (p * sl.q + q) * sl.r;
#pragma omp simd reduction(+ : ss)
        for (std::size_t i = 0; i < sl.r; ++i) {
          const double d = static_cast<double>(row[i]) - mean;
          ss += d * d;
        }
      }
      const double v = ss / static_cast<double>(m);
      mu[q] = mean;
      var[q] = v;
      const T tm = static_cast<T>(mean), tinv = static_cast<T>(1.0 / std::sqrt(v + eps));
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
    const std::int64_t batch = tangent_batch();
    const std::vector<std::int64_t> pqr{static_cast<std::int64_t>(sl.p), static_cast<std::int64_t>(sl.q),
                                        static_cast<std::int64_t>(sl.r)};
    const std::vector<int> dims = batch ? std::vector<int>{1, 3} : std::vector<int>{0, 2};
    Tensor t3 = reshape(t[0], tangent_shape(Shape{sl.p, sl.q, sl.r}));
    Tensor y3 = reshape(output_alias(out), pqr);
    Tensor inner = sub(sub(t3, mean(t3, dims, true)), mul(y3, mean(mul(t3, y3), dims, true)));
    return reshape(mul(slice_invstd(x, sl, eps, var, pqr), inner), tangent_shape(x.shape()));
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
