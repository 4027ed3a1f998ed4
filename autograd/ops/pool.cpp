// Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d, with PyTorch's output sizes (ceil_mode
// included) and windows.
//
// max_pool2d saves the argmax of each window (its offset in the input plane, NaN winning as in
// PyTorch); its backward is one scatter pass of the gradient to those offsets: fused (no graph
// recorded), a single write pass over the input gradient; with create_graph, detail::scatter_rows,
// whose own backward is the gather (max pooling is twice differentiable, its second derivative 0).
// Average pooling is linear: a window average and its adjoint, each the other's backward. The windows
// are separable (a start, an end and a divisor per output row and per output column), which covers
// avg_pool2d's padding and count_include_pad and the adaptive windows alike.
// Forward mode: max pooling's tangent is the input's tangent gathered at the argmax (a row gather);
// the window averages, being linear, are their own JVP.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "../detail/op_support.hpp"
#include "../detail/row_gather.hpp"
#include "../layer_ops.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

// The input as N×C×H×W: a 3-D input is one sample (unsqueezed), any other rank is an error.
Tensor as_batched(const char* op, const Tensor& input, bool* batched) {
  checked(input, op);
  const Shape s = input.shape();
  if (s.size() != 3 && s.size() != 4)
    fail(op, ": expected a 3-D (unbatched) or 4-D (batched) input, got shape ", shape_str(s));
  *batched = s.size() == 4;
  return *batched ? input : unsqueeze(input, 0);
}

constexpr std::size_t kMaxSizeArg = std::size_t{1} << 31;
void check_size_arg(const char* op, const char* what, std::size_t v) {
  if (v > kMaxSizeArg) fail(op, ": ", what, " ", v, " is too large (at most 2^31)");
}

// PyTorch's pooling_output_shape, with its checks.
std::size_t pooled_size(const char* op, const char* dim, std::size_t in, std::size_t k, std::size_t s, std::size_t p,
                        std::size_t d, bool ceil_mode, const Shape& shape) {
  if (k == 0 || s == 0 || d == 0)
    fail(op, ": kernel size, stride and dilation must be positive, got kernel ", k, ", stride ", s, ", dilation ", d,
         " along ", dim);
  check_size_arg(op, "kernel size", k);
  check_size_arg(op, "stride", s);
  check_size_arg(op, "dilation", d);
  check_size_arg(op, "input size", in);
  if (p > k / 2)
    fail(op, ": padding ", p, " must be at most half the kernel size ", k, " along ", dim);
  const auto num = static_cast<std::int64_t>(in + 2 * p) - static_cast<std::int64_t>(d * (k - 1) + 1) +
                   (ceil_mode ? static_cast<std::int64_t>(s) - 1 : 0);
  std::int64_t out = (num >= 0 ? num / static_cast<std::int64_t>(s) : -((-num + static_cast<std::int64_t>(s) - 1) /
                                                                        static_cast<std::int64_t>(s))) + 1;
  // The last window must start inside the input or its left padding.
  if (ceil_mode && out > 0 && static_cast<std::size_t>(out - 1) * s >= in + p) --out;
  if (out < 1)
    fail(op, ": the kernel (size ", k, ", dilation ", d, ") is larger than the padded input (", in, " + 2·", p,
         ") along ", dim, ": output size ", out, "; input shape ", shape_str(shape));
  return static_cast<std::size_t>(out);
}

// ---- max pooling ---------------------------------------------------------------------------------------
// The argmax of each window, as an offset inside its H×W plane (int32: half the memory traffic of a
// flat int64 index; planes of 2^31 elements or more are refused). Window r belongs to plane r / (OH·OW).
struct MaxPoolIndex {
  std::unique_ptr<std::int32_t[]> at;
  std::size_t windows = 0, per_plane = 0, plane_size = 0;
  // The flat input index of every window, for scatter_rows (the formula path).
  RowIndex row_index() const {
    auto idx = std::make_shared<std::vector<std::int64_t>>(windows);
    for (std::size_t r = 0; r < windows; ++r)
      (*idx)[r] = static_cast<std::int64_t>((r / per_plane) * plane_size) + at[r];
    return idx;
  }
};

struct MaxPoolGeom {
  std::size_t planes = 0, H = 0, W = 0, oh = 0, ow = 0;
  Size2 kernel, stride, padding, dilation;
  // Windows that never overlap and need no padding: each input element is read by at most one
  // window, so the backward can write every gradient element once, in one pass, with no zero fill.
  bool disjoint() const {
    return padding.h == 0 && padding.w == 0 && stride.h >= dilation.h * (kernel.h - 1) + 1 &&
           stride.w >= dilation.w * (kernel.w - 1) + 1;
  }
};

// The backward's one pass: dx = 0 everywhere, then dx[argmax of window r] += g[r], in window order
// (the order of scatter_rows, so overlapping windows add up the same way and the bits match; 0 + g,
// not g, where a window writes alone: -0 + 0 is +0).
template <class T>
void max_pool_backward_kernel(const T* g, const MaxPoolIndex& idx, const MaxPoolGeom& m, T* dx) {
  const std::size_t plane = m.H * m.W, per_plane = m.oh * m.ow;
  if (!m.disjoint()) {
    std::fill(dx, dx + m.planes * plane, T(0));
    for (std::size_t b = 0; b < m.planes; ++b) {
      T* dxb = dx + b * plane;
      const std::int32_t* ib = idx.at.get() + b * per_plane;
      const T* gb = g + b * per_plane;
      for (std::size_t r = 0; r < per_plane; ++r) dxb[ib[r]] += gb[r];
    }
    return;
  }
  // Disjoint windows: each output row i covers input rows [i·sh, i·sh + span_h); rows between or
  // after the windows, and columns right of the last window, are zero.
  const std::size_t span_h = m.dilation.h * (m.kernel.h - 1) + 1;
  for (std::size_t b = 0; b < m.planes; ++b) {
    T* dxb = dx + b * plane;
    const std::int32_t* ib = idx.at.get() + b * per_plane;
    const T* gb = g + b * per_plane;
    std::size_t next_row = 0;  // the first input row not yet written
    for (std::size_t i = 0; i < m.oh; ++i) {
      const std::size_t h0 = i * m.stride.h, h1 = std::min(h0 + span_h, m.H);
      std::fill(dxb + next_row * m.W, dxb + h1 * m.W, T(0));
      for (std::size_t j = 0; j < m.ow; ++j) {
        const std::size_t r = i * m.ow + j;
        dxb[ib[r]] = T(0) + gb[r];
      }
      next_row = h1;
    }
    std::fill(dxb + next_row * m.W, dxb + plane, T(0));
  }
}

struct MaxPoolBackward : OpNode {
  MaxPoolBackward(std::shared_ptr<const MaxPoolIndex> i, const MaxPoolGeom& g, Shape s)
      : OpNode("MaxPool2DWithIndicesBackward"), index(std::move(i)), geom(g), in_shape(std::move(s)) {}
  std::shared_ptr<const MaxPoolIndex> index;
  MaxPoolGeom geom;
  Shape in_shape;
  TensorList apply(TensorList&& g) override {
    if (fused_backward())
      return {dispatch(g[0].dtype(), [&](auto tag) {
        using T = decltype(tag);
        Array<T> dx = empty_array<T>(in_shape, "max_pool2d backward");
        max_pool_backward_kernel(arr<T>(g[0]).data(), *index, geom, dx.data());
        return make_tensor(std::move(dx));
      })};
    // One scatter (its own backward the gather: max pooling is twice differentiable, its second
    // derivative 0).
    return {scatter_rows(g[0], index->row_index(), 1, in_shape)};
  }
};

// The tangent of max pooling: t (shaped like the pooled input, N×C×H×W) read at the flat argmax
// indices. A batched level's tangent [B, N, C, H, W] reads entry b at the same indices shifted by b
// input sizes: one gather through a batched index.
Tensor gather_at_argmax(const Tensor& t, const RowIndex& index, const Shape& out_shape) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return gather_rows(t, index, index, 1, out_shape);
  const auto step = static_cast<std::int64_t>(t.numel() / static_cast<std::size_t>(batch));
  auto batched = std::make_shared<std::vector<std::int64_t>>();
  batched->reserve(index->size() * static_cast<std::size_t>(batch));
  for (std::int64_t b = 0; b < batch; ++b)
    for (const std::int64_t i : *index) batched->push_back(b * step + i);
  Shape s = out_shape;
  s.insert(s.begin(), static_cast<std::size_t>(batch));
  return gather_rows(t, batched, batched, 1, s);
}

// ---- separable window averages -------------------------------------------------------------------------
struct Windows {
  std::vector<std::size_t> start, end;  // [start, end) in input coordinates, clipped to the input
  std::vector<double> divisor;
};
struct AvgPlan {
  std::size_t planes = 0, h = 0, w = 0;
  Windows rows, cols;
  Shape in_shape, out_shape;
};
using AvgPlanPtr = std::shared_ptr<const AvgPlan>;

Tensor window_average(const Tensor& x, const AvgPlanPtr& p);
Tensor window_average_adjoint(const Tensor& g, const AvgPlanPtr& p);

struct AvgPoolBackward : OpNode {
  AvgPoolBackward(const char* name, AvgPlanPtr p) : OpNode(name), plan(std::move(p)) {}
  AvgPlanPtr plan;
  TensorList apply(TensorList&& g) override { return {window_average_adjoint(g[0], plan)}; }
};
struct AvgPoolBackwardBackward : OpNode {
  explicit AvgPoolBackwardBackward(AvgPlanPtr p) : OpNode("AvgPool2DBackwardBackward"), plan(std::move(p)) {}
  AvgPlanPtr plan;
  TensorList apply(TensorList&& g) override { return {window_average(g[0], plan)}; }
};

template <class T>
void window_average_kernel(const T* x, T* o, const AvgPlan& p) {
  const std::size_t oh = p.rows.start.size(), ow = p.cols.start.size();
  for (std::size_t b = 0; b < p.planes; ++b) {
    const T* xb = x + b * p.h * p.w;
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) {
        T acc = 0;
        for (std::size_t h = p.rows.start[i]; h < p.rows.end[i]; ++h)
          for (std::size_t w = p.cols.start[j]; w < p.cols.end[j]; ++w) acc += xb[h * p.w + w];
        *o++ = acc / static_cast<T>(p.rows.divisor[i] * p.cols.divisor[j]);
      }
  }
}

template <class T>
void window_average_adjoint_kernel(const T* g, T* x, const AvgPlan& p) {
  const std::size_t oh = p.rows.start.size(), ow = p.cols.start.size();
  for (std::size_t b = 0; b < p.planes; ++b) {
    T* xb = x + b * p.h * p.w;
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) {
        const T v = *g++ / static_cast<T>(p.rows.divisor[i] * p.cols.divisor[j]);
        for (std::size_t h = p.rows.start[i]; h < p.rows.end[i]; ++h)
          for (std::size_t w = p.cols.start[j]; w < p.cols.end[j]; ++w) xb[h * p.w + w] += v;
      }
  }
}

// Forward mode: both window maps are linear, so each one's JVP is itself applied to the tangent. A
// batched level's tangent [B, N, C, H, W] is B·N·C planes of the same windows: one pass.
AvgPlanPtr with_batch(const AvgPlanPtr& p) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return p;
  auto b = std::make_shared<AvgPlan>(*p);
  b->planes *= static_cast<std::size_t>(batch);
  b->in_shape.insert(b->in_shape.begin(), static_cast<std::size_t>(batch));
  b->out_shape.insert(b->out_shape.begin(), static_cast<std::size_t>(batch));
  return b;
}

Tensor window_average(const Tensor& x, const AvgPlanPtr& p) {
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(p->out_shape, "avg_pool2d");
    window_average_kernel(arr<T>(x).data(), o.data(), *p);
    return make_tensor(std::move(o));
  });
  record<AvgPoolBackward>(out, {&x}, "AvgPool2DBackward", p);
  // JVP: the window averages of the tangent
  record_jvp("avg_pool2d", out, {&x}, [&](Tangents t) { return window_average(t[0], with_batch(p)); },
             JvpBatching::Aware);
  return out;
}

Tensor window_average_adjoint(const Tensor& g, const AvgPlanPtr& p) {
  Tensor out = dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(p->in_shape, "avg_pool2d backward");
    std::fill(o.data(), o.data() + o.size(), T(0));
    window_average_adjoint_kernel(arr<T>(g).data(), o.data(), *p);
    return make_tensor(std::move(o));
  });
  record<AvgPoolBackwardBackward>(out, {&g}, p);
  // JVP: the tangent spread back the same way
  record_jvp("avg_pool2d backward", out, {&g}, [&](Tangents t) { return window_average_adjoint(t[0], with_batch(p)); },
             JvpBatching::Aware);
  return out;
}

// avg_pool2d's windows along one dim (PyTorch's avg_pool2d kernel).
Windows pool_windows(std::size_t in, std::size_t out, std::size_t k, std::size_t s, std::size_t p, bool include_pad) {
  Windows win;
  for (std::size_t o = 0; o < out; ++o) {
    const auto start = static_cast<std::int64_t>(o * s) - static_cast<std::int64_t>(p);
    const std::int64_t end = std::min(start + static_cast<std::int64_t>(k), static_cast<std::int64_t>(in + p));
    const std::int64_t pool = end - start;
    const std::int64_t cs = std::max<std::int64_t>(start, 0), ce = std::min<std::int64_t>(end, static_cast<std::int64_t>(in));
    win.start.push_back(static_cast<std::size_t>(cs));
    win.end.push_back(static_cast<std::size_t>(std::max(ce, cs)));
    win.divisor.push_back(static_cast<double>(include_pad ? pool : std::max<std::int64_t>(ce - cs, 0)));
  }
  return win;
}

Windows adaptive_windows(std::size_t in, std::size_t out) {
  Windows win;
  for (std::size_t o = 0; o < out; ++o) {
    const std::size_t start = (o * in) / out, end = ((o + 1) * in + out - 1) / out;
    win.start.push_back(start);
    win.end.push_back(end);
    win.divisor.push_back(static_cast<double>(end - start));
  }
  return win;
}

Tensor average(const Tensor& x4, bool batched, std::shared_ptr<AvgPlan> plan) {
  const Shape s = x4.shape();
  plan->planes = s[0] * s[1];
  plan->h = s[2];
  plan->w = s[3];
  plan->in_shape = s;
  plan->out_shape = {s[0], s[1], plan->rows.start.size(), plan->cols.start.size()};
  Tensor out = window_average(x4, plan);
  return batched ? out : squeeze(out, 0);
}


// ---- 2×2, stride-2 max pooling of one output row (rows r0, r1 of the input plane) --------------------
// out[j] = the max of r0[2j], r0[2j+1], r1[2j], r1[2j+1] and idx[j] its offset in the plane, scanned
// in that order: the first of equal values wins, a NaN wins (the last NaN), as in the general loop.
template <class T>
void max2x2_row_scalar(const T* r0, const T* r1, std::size_t j0, std::size_t j1, T* out, std::int32_t* idx,
                       std::int32_t row_at, std::int32_t down) {
  for (std::size_t j = j0; j < j1; ++j) {
    const T v0 = r0[2 * j], v1 = r0[2 * j + 1], v2 = r1[2 * j], v3 = r1[2 * j + 1];
    T best = v0;
    std::int32_t arg = 0;
    const bool t1 = v1 > best || v1 != v1;
    best = t1 ? v1 : best;
    arg = t1 ? 1 : arg;
    const bool t2 = v2 > best || v2 != v2;
    best = t2 ? v2 : best;
    arg = t2 ? down : arg;
    const bool t3 = v3 > best || v3 != v3;
    best = t3 ? v3 : best;
    arg = t3 ? down + 1 : arg;
    out[j] = best;
    if (idx) idx[j] = row_at + static_cast<std::int32_t>(2 * j) + arg;
  }
}

#if defined(__AVX2__)
// The same rule on 8 windows j0..j0+7 at once (float). The even and odd elements of 16 consecutive
// inputs come out of one shuffle each (per 128-bit lane) and a cross-lane permute; GT_OQ is false
// when either side is NaN, UNORD_Q(v, v) true when v is: the scalar `v > best || v != v`.
inline void max2x2_8(const float* r0, const float* r1, std::size_t j0, float* out, std::int32_t* idx,
                     std::int32_t row_at, std::int32_t down) {
  const auto split = [](const float* p, __m256& even, __m256& odd) {
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
  };
  __m256 v0, v1, v2, v3;
  split(r0 + 2 * j0, v0, v1);
  split(r1 + 2 * j0, v2, v3);
  __m256 best = v0;
  __m256i arg = _mm256_setzero_si256();
  const auto take = [&](__m256 v, std::int32_t at) {
    const __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    best = _mm256_blendv_ps(best, v, t);
    arg = _mm256_blendv_epi8(arg, _mm256_set1_epi32(at), _mm256_castps_si256(t));
  };
  take(v1, 1);
  take(v2, down);
  take(v3, down + 1);
  _mm256_storeu_ps(out + j0, best);
  if (idx) {
    const __m256i base = _mm256_add_epi32(_mm256_set1_epi32(row_at + static_cast<std::int32_t>(2 * j0)),
                                          _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + j0), _mm256_add_epi32(base, arg));
  }
}

// 4 windows j0..j0+3 with 128-bit vectors: rows of 4 to 7 windows (the CNN workload's second pooling
// has 7).
inline void max2x2_4(const float* r0, const float* r1, std::size_t j0, float* out, std::int32_t* idx,
                     std::int32_t row_at, std::int32_t down) {
  const auto split = [](const float* p, __m128& even, __m128& odd) {
    const __m128 a = _mm_loadu_ps(p), b = _mm_loadu_ps(p + 4);
    even = _mm_shuffle_ps(a, b, 0x88);
    odd = _mm_shuffle_ps(a, b, 0xDD);
  };
  __m128 v0, v1, v2, v3;
  split(r0 + 2 * j0, v0, v1);
  split(r1 + 2 * j0, v2, v3);
  __m128 best = v0;
  __m128i arg = _mm_setzero_si128();
  const auto take = [&](__m128 v, std::int32_t at) {
    const __m128 t = _mm_or_ps(_mm_cmp_ps(v, best, _CMP_GT_OQ), _mm_cmp_ps(v, v, _CMP_UNORD_Q));
    best = _mm_blendv_ps(best, v, t);
    arg = _mm_blendv_epi8(arg, _mm_set1_epi32(at), _mm_castps_si128(t));
  };
  take(v1, 1);
  take(v2, down);
  take(v3, down + 1);
  _mm_storeu_ps(out + j0, best);
  if (idx) {
    const __m128i base = _mm_add_epi32(_mm_set1_epi32(row_at + static_cast<std::int32_t>(2 * j0)), _mm_setr_epi32(0, 2, 4, 6));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(idx + j0), _mm_add_epi32(base, arg));
  }
}
#endif

// One output row: whole groups of 8 windows, the last group overlapping the one before it (it
// recomputes a few windows and stores the same values again), so rows of 8 to 15 windows need no
// scalar tail; rows of 4 to 7 take two overlapping groups of 4. Shorter rows and double go element
// by element.
template <class T>
void max2x2_row(const T* r0, const T* r1, std::size_t ow, T* out, std::int32_t* idx, std::int32_t row_at,
                std::int32_t down) {
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    if (ow >= 8) {
      std::size_t j = 0;
      for (; j + 8 <= ow; j += 8) max2x2_8(r0, r1, j, out, idx, row_at, down);
      if (j < ow) max2x2_8(r0, r1, ow - 8, out, idx, row_at, down);
      return;
    }
    if (ow >= 4) {
      max2x2_4(r0, r1, 0, out, idx, row_at, down);
      max2x2_4(r0, r1, ow - 4, out, idx, row_at, down);
      return;
    }
  }
#endif
  max2x2_row_scalar(r0, r1, 0, ow, out, idx, row_at, down);
}

}  // namespace

Tensor max_pool2d(const Tensor& input, Size2 kernel, const Pool2dArgs& args) {
  const char* op = "max_pool2d";
  bool batched = false;
  Tensor x = as_batched(op, input, &batched);
  const Shape s = x.shape();
  MaxPoolGeom m;
  m.kernel = kernel;
  m.stride = args.stride.value_or(kernel);
  m.padding = args.padding;
  m.dilation = args.dilation;
  const Size2 st = m.stride, pd = m.padding, dl = m.dilation;
  m.oh = pooled_size(op, "height", s[2], kernel.h, st.h, pd.h, dl.h, args.ceil_mode, input.shape());
  m.ow = pooled_size(op, "width", s[3], kernel.w, st.w, pd.w, dl.w, args.ceil_mode, input.shape());
  m.planes = s[0] * s[1];
  m.H = s[2];
  m.W = s[3];
  const std::size_t oh = m.oh, ow = m.ow, H = m.H, W = m.W;
  const Shape out_shape{s[0], s[1], oh, ow};
  check_allocation(op, out_shape, x.dtype() == kFloat32 ? 4 : 8);
  if (H * W > static_cast<std::size_t>(INT32_MAX))
    fail(op, ": input planes of ", H, "×", W, " elements are too large (at most 2^31 - 1 per plane); input shape ",
         shape_str(input.shape()));
  // The argmax is kept for the backward and for the JVP (x carrying a tangent), which both read it.
  const bool record_index = needs_grad({&x}) || (forward_ad_enabled() && tangent_of(x).defined());
  auto index = std::make_shared<MaxPoolIndex>();
  index->windows = m.planes * oh * ow;
  index->per_plane = oh * ow;
  index->plane_size = H * W;
  if (record_index) index->at.reset(new std::int32_t[index->windows]);  // uninitialised: every slot is written
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(out_shape, op);
    const T* px = arr<T>(x).data();
    T* po = o.data();
    std::int32_t* pi = index->at.get();
    const bool k2 = kernel.h == 2 && kernel.w == 2 && st.h == 2 && st.w == 2 && pd.h == 0 && pd.w == 0 &&
                    dl.h == 1 && dl.w == 1 && 2 * oh <= H && 2 * ow <= W;
    for (std::size_t b = 0; b < m.planes; ++b) {
      const T* xb = px + b * H * W;
      if (k2) {  // the common 2×2, stride-2 window without padding: no bounds to clip
        for (std::size_t i = 0; i < oh; ++i) {
          const T* r0 = xb + 2 * i * W;
          max2x2_row(r0, r0 + W, ow, po + i * ow, pi ? pi + i * ow : nullptr, static_cast<std::int32_t>(2 * i * W),
                     static_cast<std::int32_t>(W));
        }
        po += oh * ow;
        if (pi) pi += oh * ow;
        continue;
      }
      for (std::size_t i = 0; i < oh; ++i) {
        // The window's rows: h0, h0 + dh, ... inside [0, H).
        auto h0 = static_cast<std::int64_t>(i * st.h) - static_cast<std::int64_t>(pd.h);
        const std::int64_t h_end = std::min<std::int64_t>(h0 + static_cast<std::int64_t>(dl.h * (kernel.h - 1) + 1),
                                                          static_cast<std::int64_t>(H));
        while (h0 < 0) h0 += static_cast<std::int64_t>(dl.h);
        for (std::size_t j = 0; j < ow; ++j) {
          auto w0 = static_cast<std::int64_t>(j * st.w) - static_cast<std::int64_t>(pd.w);
          const std::int64_t w_end = std::min<std::int64_t>(w0 + static_cast<std::int64_t>(dl.w * (kernel.w - 1) + 1),
                                                            static_cast<std::int64_t>(W));
          while (w0 < 0) w0 += static_cast<std::int64_t>(dl.w);
          T best = -std::numeric_limits<T>::infinity();
          std::int64_t arg = h0 * static_cast<std::int64_t>(W) + w0;
          for (std::int64_t h = h0; h < h_end; h += static_cast<std::int64_t>(dl.h))
            for (std::int64_t w = w0; w < w_end; w += static_cast<std::int64_t>(dl.w)) {
              const std::int64_t at = h * static_cast<std::int64_t>(W) + w;
              const T v = xb[at];
              if (v > best || std::isnan(v)) {
                best = v;
                arg = at;
              }
            }
          *po++ = best;
          if (pi) *pi++ = static_cast<std::int32_t>(arg);
        }
      }
    }
    return make_tensor(std::move(o));
  });
  auto shared_index = std::shared_ptr<const MaxPoolIndex>(std::move(index));
  record<MaxPoolBackward>(out, {&x}, shared_index, m, s);
  // JVP: the tangent at each window's saved argmax, as PyTorch's max_pool2d_with_indices forward
  // derivative (a row gather, whose backward is the scatter: reverse over forward works).
  record_jvp("max_pool2d", out, {&x}, [&](Tangents t) {
    return gather_at_argmax(t[0], shared_index->row_index(), out_shape);
  }, JvpBatching::Aware);
  return batched ? out : squeeze(out, 0);
}

Tensor avg_pool2d(const Tensor& input, Size2 kernel, const AvgPool2dArgs& args) {
  const char* op = "avg_pool2d";
  bool batched = false;
  Tensor x = as_batched(op, input, &batched);
  const Shape s = x.shape();
  const Size2 st = args.stride.value_or(kernel), pd = args.padding;
  const std::size_t oh = pooled_size(op, "height", s[2], kernel.h, st.h, pd.h, 1, args.ceil_mode, input.shape());
  const std::size_t ow = pooled_size(op, "width", s[3], kernel.w, st.w, pd.w, 1, args.ceil_mode, input.shape());
  auto plan = std::make_shared<AvgPlan>();
  plan->rows = pool_windows(s[2], oh, kernel.h, st.h, pd.h, args.count_include_pad);
  plan->cols = pool_windows(s[3], ow, kernel.w, st.w, pd.w, args.count_include_pad);
  return average(x, batched, std::move(plan));
}

Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size) {
  const char* op = "adaptive_avg_pool2d";
  bool batched = false;
  Tensor x = as_batched(op, input, &batched);
  const Shape s = x.shape();
  if (output_size.h == 0 || output_size.w == 0)
    fail(op, ": output size (", output_size.h, ", ", output_size.w, ") must be positive");
  check_size_arg(op, "output height", output_size.h);
  check_size_arg(op, "output width", output_size.w);
  check_allocation(op, Shape{s[0], s[1], output_size.h, output_size.w}, x.dtype() == kFloat32 ? 4 : 8);
  if ((s[2] == 0 || s[3] == 0) && x.numel() == 0 && s[0] * s[1] != 0)
    fail(op, ": input of shape ", shape_str(input.shape()), " has an empty spatial dim");
  auto plan = std::make_shared<AvgPlan>();
  plan->rows = adaptive_windows(s[2], output_size.h);
  plan->cols = adaptive_windows(s[3], output_size.w);
  return average(x, batched, std::move(plan));
}

}  // namespace xgrad
