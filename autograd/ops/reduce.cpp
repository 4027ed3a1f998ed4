// Reductions: sum, mean, sum_to (the adjoint of broadcasting), max/min/argmax/argmin, logsumexp and
// var, forward and backward side by side.
#include <cmath>
#include <limits>
#include <numeric>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "../detail/axis_gather.hpp"
#include "../detail/axis_split.hpp"
#include "../detail/elementwise.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

// Normalised, sorted, de-duplicated reduction dims; empty `dims` means all of them.
std::vector<std::size_t> reduction_dims(const char* op, const std::vector<int>& dims, std::size_t rank) {
  std::vector<std::size_t> out;
  if (dims.empty()) {
    out.resize(rank);
    std::iota(out.begin(), out.end(), std::size_t{0});
    return out;
  }
  for (int d : dims) {
    const std::size_t w = wrap_dim(op, d, rank);
    if (std::find(out.begin(), out.end(), w) != out.end()) fail(op, ": dim ", d, " appears multiple times in the list of dims");
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  if (rank == 0) out.clear();  // dims 0 / -1 on a 0-d tensor reduce nothing, as in PyTorch
  return out;
}

Shape reduced_shape(const Shape& in, const std::vector<std::size_t>& axes, bool keepdim) {
  Shape out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (!reduced)
      out.push_back(in[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Sum of `x` over `axes`, shaped as `out_shape` (same element count as the keepdim result).
// Partial sums are raw row loops: consecutive dims that are all reduced or all kept are merged into
// groups, the input is walked in memory order one innermost group (a row) at a time, and each row
// is either summed into one output value (innermost group reduced) or added to a run of outputs
// (innermost group kept). Only the row start advances an odometer; inner loops vectorise.
// (xt::sum(x, axes, keep_dims | immediate) crashed on partial reductions here, and is slower.)
template <class T>
Array<T> sum_kernel(const Array<T>& x, const std::vector<std::size_t>& axes, const Shape& out_shape) {
  Array<T> out = empty_array<T>(out_shape);
  const T* px = x.data();
  T* po = out.data();
  const std::size_t n = x.size();
  if (axes.size() == x.dimension()) {  // full reduction: a vectorised loop, accumulated in double
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(px[i]);
    po[0] = static_cast<T>(s);
    return out;
  }
  if (axes.empty()) {
    std::copy(px, px + n, po);
    return out;
  }
  std::fill(po, po + out.size(), T(0));
  if (n == 0) return out;  // a sum over an empty dim is 0
  std::vector<std::size_t> size;
  std::vector<bool> reduced;
  for (std::size_t d = 0; d < x.dimension(); ++d) {
    const bool r = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!size.empty() && reduced.back() == r)
      size.back() *= x.shape()[d];
    else {
      size.push_back(x.shape()[d]);
      reduced.push_back(r);
    }
  }
  const std::size_t groups = size.size();
  std::vector<std::size_t> out_stride(groups, 0);
  for (std::size_t g = groups, stride = 1; g-- > 0;)
    if (!reduced[g]) {
      out_stride[g] = stride;
      stride *= size[g];
    }
  const std::size_t inner = size.back();
  const bool inner_reduced = reduced.back();
  std::vector<std::size_t> idx(groups, 0);
  std::size_t o = 0;
  for (std::size_t row = 0, rows = n / inner; row < rows; ++row, px += inner) {
    if (inner_reduced) {
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (std::size_t j = 0; j < inner; ++j) s += static_cast<double>(px[j]);
      po[o] += static_cast<T>(s);
    } else {
      T* dst = po + o;
#pragma omp simd
      for (std::size_t j = 0; j < inner; ++j) dst[j] += px[j];
    }
    for (std::size_t g = groups - 1; g-- > 0;) {
      o += out_stride[g];
      if (++idx[g] < size[g]) break;
      o -= out_stride[g] * size[g];
      idx[g] = 0;
    }
  }
  return out;
}

// The gradient of a reduction to one value: g[0] (divided by `count` for a mean, as div() would)
// everywhere in the input's shape, made in one allocation instead of a reshape, an expand and a div.
Tensor fill_from_scalar(const Tensor& g, const Shape& shape, const double* count) {
  return dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T v = arr<T>(g).data()[0];
    if (count) v = v / static_cast<T>(*count);
    Array<T> o = empty_array<T>(shape);
    std::fill(o.data(), o.data() + o.size(), v);
    return make_tensor(std::move(o));
  });
}

struct SumBackward : OpNode {
  SumBackward() : OpNode("SumBackward") {}
  Shape input_shape, keep_shape;  // keep_shape: the result with reduced dims kept as 1
  TensorList apply(TensorList&& g) override {
    if (fused_backward() && g[0].numel() == 1) return {fill_from_scalar(g[0], input_shape, nullptr)};
    std::vector<std::int64_t> ks(keep_shape.begin(), keep_shape.end());
    std::vector<std::int64_t> is(input_shape.begin(), input_shape.end());
    return {expand(reshape(g[0], ks), is)};
  }
};

struct MeanBackward : OpNode {
  MeanBackward() : OpNode("MeanBackward") {}
  Shape input_shape, keep_shape;
  double count = 1;
  TensorList apply(TensorList&& g) override {
    if (fused_backward() && g[0].numel() == 1) return {fill_from_scalar(g[0], input_shape, &count)};
    std::vector<std::int64_t> ks(keep_shape.begin(), keep_shape.end());
    std::vector<std::int64_t> is(input_shape.begin(), input_shape.end());
    return {div(expand(reshape(g[0], ks), is), count)};
  }
};

struct SumToBackward : OpNode {
  SumToBackward() : OpNode("SumToBackward") {}
  Shape input_shape;
  TensorList apply(TensorList&& g) override {
    return {expand(g[0], std::vector<std::int64_t>(input_shape.begin(), input_shape.end()))};
  }
};

Tensor sum_impl(const char* op, const Tensor& t, const std::vector<std::size_t>& axes, bool keepdim,
                Shape* keep_shape_out) {
  TensorImpl& it = checked(t, op);
  const Shape in = t.shape();
  const Shape out_shape = reduced_shape(in, axes, keepdim);
  *keep_shape_out = reduced_shape(in, axes, true);
  return dispatch(it.dtype, [&](auto tag) {
    using T = decltype(tag);
    return make_tensor(sum_kernel<T>(it.array<T>(), axes, out_shape));
  });
}

// The tangent of a sum over `axes` of the primal: the same sum of the tangent, past its batch dim.
Tensor sum_tangent(const Tensor& tt, const std::vector<std::size_t>& axes, bool keepdim) {
  if (axes.empty()) return tt;  // nothing reduced (a 0-d input): an empty list would mean "all"
  const int shift = tangent_batch() ? 1 : 0;
  std::vector<int> dims;
  dims.reserve(axes.size());
  for (std::size_t a : axes) dims.push_back(static_cast<int>(a) + shift);
  return sum(tt, dims, keepdim);
}

}  // namespace

Tensor sum(const Tensor& t) { return sum(t, {}, false); }

Tensor sum(const Tensor& t, const std::vector<int>& dims, bool keepdim) {
  checked(t, "sum");
  const auto axes = reduction_dims("sum", dims, static_cast<std::size_t>(t.dim()));
  Shape keep_shape;
  Tensor out = sum_impl("sum", t, axes, keepdim, &keep_shape);
  if (auto node = record<SumBackward>(out, {&t})) {
    node->input_shape = t.shape();
    node->keep_shape = std::move(keep_shape);
  }
  // JVP: the sum of the tangent
  record_jvp("sum", out, {&t}, [&](Tangents tt) { return sum_tangent(tt[0], axes, keepdim); }, JvpBatching::Aware);
  return out;
}

Tensor mean(const Tensor& t) { return mean(t, {}, false); }

Tensor mean(const Tensor& t, const std::vector<int>& dims, bool keepdim) {
  checked(t, "mean");
  const Shape in = t.shape();
  const auto axes = reduction_dims("mean", dims, in.size());
  double count = 1;
  for (std::size_t a : axes) count *= static_cast<double>(in[a]);
  Shape keep_shape;
  Tensor out = sum_impl("mean", t, axes, keepdim, &keep_shape);
  {
    NoGradGuard no_grad;  // scale in place of the fresh result: no node for this step
    dispatch(out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      Array<T>& o = arr<T>(out);
      const T c = static_cast<T>(count);
      for (auto& v : o) v = v / c;  // 0/0 = nan for an empty reduction, as in PyTorch
    });
  }
  if (auto node = record<MeanBackward>(out, {&t})) {
    node->input_shape = in;
    node->keep_shape = std::move(keep_shape);
    node->count = count;
  }
  // JVP: the mean of the tangent
  record_jvp("mean", out, {&t}, [&](Tangents tt) { return div(sum_tangent(tt[0], axes, keepdim), count); },
             JvpBatching::Aware);
  return out;
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  checked(t, "sum_to");
  const Shape in = t.shape();
  if (in == shape) return t;
  if (shape.size() > in.size())
    fail("sum_to: cannot sum a tensor of shape ", shape_str(in), " down to the larger rank of ", shape_str(shape));
  const std::size_t lead = in.size() - shape.size();
  std::vector<std::size_t> axes;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i < lead) {
      axes.push_back(i);
    } else if (shape[i - lead] == 1 && in[i] != 1) {
      axes.push_back(i);
    } else if (shape[i - lead] != in[i]) {
      fail("sum_to: shape ", shape_str(in), " is not a broadcast of ", shape_str(shape));
    }
  }
  TensorImpl& it = *t.impl();
  Tensor out = dispatch(it.dtype, [&](auto tag) {
    using T = decltype(tag);
    return make_tensor(sum_kernel<T>(it.array<T>(), axes, shape));
  });
  if (auto node = record<SumToBackward>(out, {&t})) node->input_shape = in;
  // JVP: the tangent summed the same way: first the leading dims (past the batch dim), then the
  // broadcast ones, at equal rank.
  record_jvp("sum_to", out, {&t}, [&](Tangents tt) {
    Tensor r = tt[0];
    if (lead > 0) {
      const int shift = tangent_batch() ? 1 : 0;
      std::vector<int> dims(lead);
      for (std::size_t i = 0; i < lead; ++i) dims[i] = static_cast<int>(i) + shift;
      r = sum(r, dims, false);
    }
    const std::vector<std::int64_t> target = tangent_shape(shape);
    return sum_to(r, Shape(target.begin(), target.end()));
  }, JvpBatching::Aware);
  return out;
}

// ---- Reductions along one dim: max/min/argmax/argmin/logsumexp --------------------------------------
namespace {

// The shape after reducing `axis` (nothing to remove for a 0-d tensor).
Shape shape_without(const Shape& in, std::size_t axis, bool keepdim) {
  Shape out = in;
  if (out.empty()) return out;
  if (keepdim)
    out[axis] = 1;
  else
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(axis));
  return out;
}

// PyTorch's rule for max/min: NaN wins and stays (it propagates); otherwise only a strictly better value
// replaces the current one, so the first occurrence of the extreme is the one kept.
template <bool IsMax, class T>
inline bool beats(T v, T best) {
  const bool better = IsMax ? v > best : v < best;
  return better || (std::isnan(v) && !std::isnan(best));
}

// Extreme and first index of one contiguous row (n > 0). Two cheap passes instead of one branchy
// one: a vectorised reduction finds the extreme value (and whether any NaN is present), then a
// compare-only scan finds its first occurrence.
template <bool IsMax, class T>
inline void row_extreme(const T* row, std::size_t n, T* value, std::size_t* index) {
  T best = row[0];
  int any_nan = 0;
  if constexpr (IsMax) {
#pragma omp simd reduction(max : best) reduction(| : any_nan)
    for (std::size_t k = 0; k < n; ++k) {
      best = row[k] > best ? row[k] : best;
      any_nan |= row[k] != row[k];
    }
  } else {
#pragma omp simd reduction(min : best) reduction(| : any_nan)
    for (std::size_t k = 0; k < n; ++k) {
      best = row[k] < best ? row[k] : best;
      any_nan |= row[k] != row[k];
    }
  }
  std::size_t at = 0;
  if (any_nan) {  // NaN wins: the first NaN
    while (!std::isnan(row[at])) ++at;
  } else {
    // Bounded: OpenMP may start the private copies of `best` at the lowest *finite* value, so a row
    // of -inf (max) or +inf (min) can leave a `best` that no element equals; the first element is then
    // the answer.
    while (at < n && row[at] != best) ++at;
    if (at == n) at = 0;
  }
  *value = row[at];  // the element itself (-0 and +0 compare equal)
  *index = at;
}

// values[o, j] and index[o, j] of the extreme of x[o, :, j]. n must be > 0.
template <bool IsMax, class T>
void extreme_kernel(const T* x, const AxisSplit& a, T* values, std::size_t* index) {
  const std::size_t n = a.n, inner = a.inner;
  if (inner == 1) {  // the last axis: one row at a time
    for (std::size_t o = 0; o < a.outer; ++o) row_extreme<IsMax>(x + o * n, n, values + o, index + o);
    return;
  }
  // An inner axis: compare whole rows of `inner` values against the running best.
  for (std::size_t o = 0; o < a.outer; ++o) {
    const T* block = x + o * n * inner;
    T* vb = values + o * inner;
    std::size_t* ib = index + o * inner;
    std::copy(block, block + inner, vb);
    std::fill(ib, ib + inner, std::size_t{0});
    for (std::size_t k = 1; k < n; ++k) {
      const T* row = block + k * inner;
      for (std::size_t j = 0; j < inner; ++j)
        if (beats<IsMax>(row[j], vb[j])) {
          vb[j] = row[j];
          ib[j] = k;
        }
    }
  }
}

// Values and first-occurrence indices of the extreme over the middle count of `a` (a full reduction
// passes (1, numel, 1)).
struct Extreme {
  Tensor values;
  IndexList index;
};
Extreme extreme(bool is_max, const Tensor& t, const AxisSplit& a, const Shape& out_shape) {
  auto index = std::make_shared<std::vector<std::size_t>>(a.outer * a.inner);
  Tensor values = dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> out = empty_array<T>(out_shape);
    if (is_max)
      extreme_kernel<true>(arr<T>(t).data(), a, out.data(), index->data());
    else
      extreme_kernel<false>(arr<T>(t).data(), a, out.data(), index->data());
    return make_tensor(std::move(out));
  });
  return {std::move(values), std::move(index)};
}

// Indices (integral values) as a tensor of dtype `dtype`.
Tensor indices_as_tensor(const std::vector<std::size_t>& index, const Shape& shape, Dtype dtype) {
  return dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    Array<T> out = empty_array<T>(shape);
    T* o = out.data();
    for (std::size_t i = 0; i < index.size(); ++i) o[i] = static_cast<T>(index[i]);
    return make_tensor(std::move(out));
  });
}

// `index` (one entry per (outer, inner) position) repeated `times` times: the same gather applied to
// each entry of a batch of tangents in front of the outer dims.
IndexList repeat_index(const IndexList& index, std::int64_t times) {
  auto out = std::make_shared<std::vector<std::size_t>>();
  out->reserve(index->size() * static_cast<std::size_t>(times));
  for (std::int64_t b = 0; b < times; ++b) out->insert(out->end(), index->begin(), index->end());
  return out;
}

// The reduced axis of a single-dim reduction, or a clear error on an empty one.
std::size_t nonempty_axis(const char* op, const Tensor& t, int dim) {
  const Shape in = t.shape();
  const std::size_t axis = wrap_dim(op, dim, in.size());
  if (!in.empty() && in[axis] == 0)
    fail(op, ": cannot reduce over dimension ", dim, " of size 0 (shape ", shape_str(in),
         "): the extreme of an empty set is undefined");
  return axis;
}
void check_nonempty(const char* op, const Tensor& t) {
  if (t.numel() == 0)
    fail(op, ": cannot reduce an empty tensor (shape ", shape_str(t.shape()),
         ") without a dim: the extreme of an empty set is undefined");
}

// max(dim)/min(dim): the whole gradient goes to the index the forward picked.
struct ExtremeDimBackward : OpNode {
  explicit ExtremeDimBackward(const char* name) : OpNode(name) {}
  std::size_t axis = 0;
  IndexList index;
  Shape input_shape;
  TensorList apply(TensorList&& g) override { return {place_at(g[0], axis, index, input_shape)}; }
};

// Full max()/min(): the gradient is shared evenly by every element equal to the result (PyTorch's
// evenly_distribute_backward); when the result is NaN, by every NaN.
struct ExtremeAllBackward : OpNode {
  explicit ExtremeAllBackward(const char* name) : OpNode(name) {}
  SavedTensor input, result;
  TensorList apply(TensorList&& g) override {
    Tensor x = input.unpack(this).detach();
    Tensor y = result.unpack(this).detach();
    Tensor mask = std::isnan(y.item()) ? ne(x, x) : eq(x, y);
    return {mul(mask, div(g[0], sum(mask)))};
  }
  void release_variables() override {
    input.reset();
    result.reset();
  }
};

Tensor extreme_all(const char* op, const char* node_name, bool is_max, const Tensor& t) {
  checked(t, op);
  check_nonempty(op, t);
  const AxisSplit a{1, t.numel(), 1};
  Tensor out = extreme(is_max, t, a, Shape{}).values;
  if (auto node = record<ExtremeAllBackward>(out, {&t}, node_name)) {
    node->input.save_input(t);
    node->result.save_output(out);
  }
  // JVP (PyTorch's evenly_read_jvp): the mean of the tangent over the elements equal to the result
  // (every NaN when it is NaN), the same even split as the backward's.
  record_jvp(op, out, {&t}, [&](Tangents tt) {
    Tensor y = output_alias(out).detach();
    Tensor x = t.detach();
    Tensor mask = std::isnan(y.item()) ? ne(x, x) : eq(x, y);
    std::vector<std::size_t> axes(x.dim());
    std::iota(axes.begin(), axes.end(), std::size_t{0});
    return div(sum_tangent(mul(tt[0], mask), axes, false), sum(mask));
  }, JvpBatching::Aware);
  return out;
}

Tensor extreme_dim(const char* op, const char* node_name, bool is_max, const Tensor& t, int dim, bool keepdim) {
  checked(t, op);
  const std::size_t axis = nonempty_axis(op, t, dim);
  const Shape in = t.shape();
  const Shape out_shape = shape_without(in, axis, keepdim);
  Extreme e = extreme(is_max, t, split_at(in, axis), out_shape);
  if (auto node = record<ExtremeDimBackward>(e.values, {&t}, node_name)) {
    node->axis = axis;
    node->index = e.index;
    node->input_shape = in;
  }
  // JVP: the tangent at the index the forward picked (take_at, the adjoint of the backward's
  // place_at). A batch of tangents is one take_at over B times as many (outer) rows.
  record_jvp(op, e.values, {&t}, [&](Tangents tt) {
    const std::int64_t batch = tangent_batch();
    if (batch == 0) return take_at(tt[0], axis, e.index, out_shape);
    if (in.empty()) return tt[0];  // a 0-d input is its own extreme
    const std::vector<std::int64_t> ts = tangent_shape(out_shape);
    return take_at(tt[0], axis + 1, repeat_index(e.index, batch), Shape(ts.begin(), ts.end()));
  }, JvpBatching::Aware);
  return e.values;
}

Tensor arg_extreme_all(const char* op, bool is_max, const Tensor& t) {
  checked(t, op);
  check_nonempty(op, t);
  Extreme e = extreme(is_max, t, AxisSplit{1, t.numel(), 1}, Shape{});
  return indices_as_tensor(*e.index, Shape{}, t.dtype());
}

Tensor arg_extreme_dim(const char* op, bool is_max, const Tensor& t, int dim, bool keepdim) {
  checked(t, op);
  const std::size_t axis = nonempty_axis(op, t, dim);
  const Shape in = t.shape();
  const Shape out_shape = shape_without(in, axis, keepdim);
  Extreme e = extreme(is_max, t, split_at(in, axis), out_shape);
  return indices_as_tensor(*e.index, out_shape, t.dtype());
}

// log Σ exp(x) along one axis, shifted by the maximum so that |x| = 1e4 neither overflows nor
// underflows. An infinite maximum is not subtracted (as in PyTorch): a row of -inf gives -inf and a
// row holding +inf gives +inf, instead of inf - inf = NaN.
template <class T>
Array<T> logsumexp_kernel(const Array<T>& x, const AxisSplit& a, const Shape& out_shape) {
  const std::size_t n = a.n, inner = a.inner, outer = a.outer;
  Array<T> out = empty_array<T>(out_shape);
  T* shift = out.data();  // outer*inner values; holds the shifts first, the results at the end
  const T* px = x.data();
  std::fill(shift, shift + outer * inner, -std::numeric_limits<T>::infinity());
  if (n > 0) {
    std::vector<std::size_t> unused_index(outer * inner);
    extreme_kernel<true>(px, a, shift, unused_index.data());
  }
  for (std::size_t i = 0; i < outer * inner; ++i)
    if (std::isinf(shift[i])) shift[i] = T(0);
  // e = exp(x - shift) in one flat vectorised pass, then summed along the axis.
  Array<T> e = empty_array<T>(x.shape());
  T* pe = e.data();
  for (std::size_t o = 0; o < outer; ++o) {
    const T* s = shift + o * inner;
    for (std::size_t k = 0; k < n; ++k) {
      const T* row = px + (o * n + k) * inner;
      T* dst = pe + (o * n + k) * inner;
      if (inner == 1) {
        dst[0] = row[0] - s[0];
      } else {
#pragma omp simd
        for (std::size_t j = 0; j < inner; ++j) dst[j] = row[j] - s[j];
      }
    }
  }
  xt::noalias(e) = xt::exp(e);
  std::vector<T> total(outer * inner, T(0));
  for (std::size_t o = 0; o < outer; ++o) {
    T* acc = total.data() + o * inner;
    if (inner == 1) {
      const T* row = pe + o * n;
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (std::size_t k = 0; k < n; ++k) s += row[k];
      acc[0] = s;
    } else {
      for (std::size_t k = 0; k < n; ++k) {
        const T* row = pe + (o * n + k) * inner;
#pragma omp simd
        for (std::size_t j = 0; j < inner; ++j) acc[j] += row[j];
      }
    }
  }
  for (std::size_t i = 0; i < outer * inner; ++i) shift[i] = std::log(total[i]) + shift[i];
  return out;
}

// d logsumexp(x)/dx = exp(x - logsumexp(x)), i.e. the softmax; written in Tensor ops on the saved
// result, so the second derivative flows through both x and the result.
struct LogsumexpBackward : OpNode {
  LogsumexpBackward() : OpNode("LogsumexpBackward") {}
  SavedTensor input, result;
  Shape keep_shape;
  TensorList apply(TensorList&& g) override {
    Tensor x = input.unpack(this);
    Tensor y = reshape(result.unpack(this), as_i64(keep_shape));
    return {mul(reshape(g[0], as_i64(keep_shape)), exp(sub(x, y)))};
  }
  void release_variables() override {
    input.reset();
    result.reset();
  }
};

// d var/dx = 2 (x - mean(x)) / (N - correction), broadcast over the reduced dims.
struct VarBackward : OpNode {
  VarBackward() : OpNode("VarBackward") {}
  SavedTensor input;
  std::vector<int> dims;
  Shape keep_shape;
  double denominator = 1;
  TensorList apply(TensorList&& g) override {
    Tensor x = input.unpack(this);
    Tensor centred = sub(x, mean(x, dims, true));
    return {mul(reshape(g[0], as_i64(keep_shape)), mul(centred, 2.0 / denominator))};
  }
  void release_variables() override { input.reset(); }
};

}  // namespace

Tensor max(const Tensor& t) { return extreme_all("max", "MaxBackward", true, t); }
Tensor min(const Tensor& t) { return extreme_all("min", "MinBackward", false, t); }
Tensor max(const Tensor& t, int dim, bool keepdim) { return extreme_dim("max", "MaxBackward", true, t, dim, keepdim); }
Tensor min(const Tensor& t, int dim, bool keepdim) { return extreme_dim("min", "MinBackward", false, t, dim, keepdim); }
Tensor argmax(const Tensor& t) { return arg_extreme_all("argmax", true, t); }
Tensor argmin(const Tensor& t) { return arg_extreme_all("argmin", false, t); }
Tensor argmax(const Tensor& t, int dim, bool keepdim) { return arg_extreme_dim("argmax", true, t, dim, keepdim); }
Tensor argmin(const Tensor& t, int dim, bool keepdim) { return arg_extreme_dim("argmin", false, t, dim, keepdim); }

Tensor logsumexp(const Tensor& t, int dim, bool keepdim) {
  TensorImpl& it = checked(t, "logsumexp");
  const Shape in = t.shape();
  const std::size_t axis = wrap_dim("logsumexp", dim, in.size());
  const AxisSplit a = split_at(in, axis);
  Tensor out = dispatch(it.dtype, [&](auto tag) {
    using T = decltype(tag);
    return make_tensor(logsumexp_kernel<T>(it.array<T>(), a, shape_without(in, axis, keepdim)));
  });
  if (auto node = record<LogsumexpBackward>(out, {&t})) {
    node->input.save_input(t);
    node->result.save_output(out);
    node->keep_shape = shape_without(in, axis, true);
  }
  // JVP: Σ ṫ·exp(x - y) along the axis (the softmax-weighted tangent).
  record_jvp("logsumexp", out, {&t}, [&](Tangents tt) {
    if (in.empty()) return tt[0];  // d logsumexp(x)/dx = 1 for a 0-d x
    Tensor y = reshape(output_alias(out), as_i64(shape_without(in, axis, true)));
    return sum(mul(tt[0], exp(sub(t, y))), {tangent_dim(static_cast<std::int64_t>(axis), in.size())}, keepdim);
  }, JvpBatching::Aware);
  return out;
}

Tensor var(const Tensor& t, const std::vector<int>& dims, bool unbiased, bool keepdim) {
  TensorImpl& it = checked(t, "var");
  const Shape in = t.shape();
  const auto axes = reduction_dims("var", dims, in.size());
  double count = 1;
  for (std::size_t a : axes) count *= static_cast<double>(in[a]);
  // N - 1 for the unbiased estimate; 0/0 = NaN when N <= 1 (or N = 0), as in PyTorch.
  const double denominator = count - (unbiased ? 1.0 : 0.0);
  const Shape keep_shape = reduced_shape(in, axes, true);
  const Shape out_shape = reduced_shape(in, axes, keepdim);
  Tensor out = dispatch(it.dtype, [&](auto tag) {
    using T = decltype(tag);
    const Array<T>& x = it.array<T>();
    // Two passes (mean, then squared deviations): stable where E[x²] - E[x]² would cancel.
    Array<T> m = sum_kernel<T>(x, axes, keep_shape);
    const T inv_count = T(1) / static_cast<T>(count);
    for (auto& v : m) v *= inv_count;
    Array<T> sq = empty_array<T>(in);
    const BroadcastPlan plan = plan_broadcast("var", in, keep_shape);
    broadcast_apply(x.data(), m.data(), sq.data(), plan, [](T v, T mu) {
      const T d = v - mu;
      return d * d;
    });
    Array<T> r = sum_kernel<T>(sq, axes, out_shape);
    const T den = static_cast<T>(denominator);
    for (auto& v : r) v = v / den;
    return make_tensor(std::move(r));
  });
  if (auto node = record<VarBackward>(out, {&t})) {
    node->input.save_input(t);
    node->dims.assign(axes.begin(), axes.end());
    node->keep_shape = keep_shape;
    node->denominator = denominator;
  }
  // JVP: Σ 2 (x - mean(x)) ṫ / (N - correction) over the reduced dims.
  record_jvp("var", out, {&t}, [&](Tangents tt) {
    Tensor centred = sub(t, mean(t, std::vector<int>(axes.begin(), axes.end()), true));
    return mul(sum_tangent(mul(tt[0], centred), axes, keepdim), 2.0 / denominator);
  }, JvpBatching::Aware);
  return out;
}

Tensor Tensor::sum() const { return xgrad::sum(*this); }
Tensor Tensor::sum(const std::vector<int>& dims, bool keepdim) const { return xgrad::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return xgrad::mean(*this); }
Tensor Tensor::mean(const std::vector<int>& dims, bool keepdim) const { return xgrad::mean(*this, dims, keepdim); }

Tensor Tensor::max() const { return xgrad::max(*this); }
Tensor Tensor::max(int dim, bool keepdim) const { return xgrad::max(*this, dim, keepdim); }
Tensor Tensor::min() const { return xgrad::min(*this); }
Tensor Tensor::min(int dim, bool keepdim) const { return xgrad::min(*this, dim, keepdim); }
Tensor Tensor::argmax() const { return xgrad::argmax(*this); }
Tensor Tensor::argmax(int dim, bool keepdim) const { return xgrad::argmax(*this, dim, keepdim); }
Tensor Tensor::logsumexp(int dim, bool keepdim) const { return xgrad::logsumexp(*this, dim, keepdim); }
Tensor Tensor::var(const std::vector<int>& dims, bool unbiased, bool keepdim) const {
  return xgrad::var(*this, dims, unbiased, keepdim);
}

}  // namespace xgrad
