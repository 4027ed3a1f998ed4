// Convolution and its building blocks: pad (four modes), unfold (im2col) and fold (col2im).
//
// unfold and fold are linear and adjoint to each other, and so are pad and its scatter-add: each
// one's backward is the other, which makes every op here differentiable any number of times.
// conv1d/conv2d are im2col + GEMM (through detail::gemm, transposes as flags), and their backward is
// the one PyTorch uses: the input gradient is a transposed convolution (GEMM with Wᵀ, then col2im),
// the weight gradient a convolution of input and output gradient (GEMM of the gradient with the
// columns). Those two are ops of their own, with backward formulas in the same three ops, so
// create_graph differentiates through convolutions any number of times (see "conv" below).
// Forward mode: each of those ops is linear in each argument, so its JVP is the op itself applied to
// one tangent at a time; unfold, fold and pad are linear too.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "../detail/gemm.hpp"
#include "../detail/packed_gemm.hpp"
#include "../detail/op_support.hpp"
#include "../detail/scratch.hpp"
#include "../layer_ops.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

// ---- im2col geometry ---------------------------------------------------------------------------------
struct Im2col {
  std::size_t n = 0, c = 0, h = 0, w = 0;  // input N×C×H×W
  std::size_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  std::size_t oh = 0, ow = 0;  // kernel positions along H and W
  std::size_t rows() const { return c * kh * kw; }
  std::size_t cols() const { return oh * ow; }
  Shape input_shape() const { return {n, c, h, w}; }
  Shape cols_shape() const { return {n, rows(), cols()}; }
  bool identity() const {  // 1×1, stride 1, no padding: the columns are the input
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
  }
};

// Sizes, strides, paddings and dilations beyond 2^31 are refused up front: no real tensor needs them,
// and they would overflow the index arithmetic below.
constexpr std::size_t kMaxSizeArg = std::size_t{1} << 31;
void check_size_arg(const char* op, const char* what, std::size_t v) {
  if (v > kMaxSizeArg) fail(op, ": ", what, " ", v, " is too large (at most 2^31)");
}

// The number of kernel positions along one dim, or an error when the kernel does not fit.
std::size_t positions(const char* op, const char* dim, std::size_t in, std::size_t k, std::size_t s, std::size_t p,
                      std::size_t d, const Shape& input_shape) {
  if (k == 0 || s == 0 || d == 0)
    fail(op, ": kernel size, stride and dilation must be positive, got kernel ", k, ", stride ", s, ", dilation ", d,
         " along ", dim);
  check_size_arg(op, "kernel size", k);
  check_size_arg(op, "stride", s);
  check_size_arg(op, "padding", p);
  check_size_arg(op, "dilation", d);
  check_size_arg(op, "input size", in);
  const std::size_t span = d * (k - 1) + 1;
  if (in + 2 * p < span)
    fail(op, ": the kernel (size ", k, ", dilation ", d, ", effective size ", span, ") is larger than the padded input (",
         in, " + 2·", p, " = ", in + 2 * p, ") along ", dim, "; input shape ", shape_str(input_shape));
  return (in + 2 * p - span) / s + 1;
}

Im2col make_im2col(const char* op, const Shape& x, Size2 kernel, const UnfoldArgs& a) {
  Im2col g;
  g.n = x[0], g.c = x[1], g.h = x[2], g.w = x[3];
  g.kh = kernel.h, g.kw = kernel.w, g.sh = a.stride.h, g.sw = a.stride.w;
  g.ph = a.padding.h, g.pw = a.padding.w, g.dh = a.dilation.h, g.dw = a.dilation.w;
  g.oh = positions(op, "height", g.h, g.kh, g.sh, g.ph, g.dh, x);
  g.ow = positions(op, "width", g.w, g.kw, g.sw, g.pw, g.dw, x);
  return g;
}

// The output positions ow whose input column ow·sw + off falls inside [0, w): [lo, hi), so that the
// loops below run bounds-free over it and only fill (im2col) or skip (col2im) outside.
struct ValidRange {
  std::size_t lo, hi;
};
inline ValidRange valid_range(std::ptrdiff_t off, std::size_t sw, std::size_t w, std::size_t ow_count) {
  const auto s = static_cast<std::ptrdiff_t>(sw), W = static_cast<std::ptrdiff_t>(w),
             n = static_cast<std::ptrdiff_t>(ow_count);
  // lo: the first ow with ow·s + off >= 0; hi: the first ow with ow·s + off >= W.
  const std::ptrdiff_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
  const std::ptrdiff_t hi = W - off <= 0 ? 0 : (W - off + s - 1) / s;
  const std::ptrdiff_t l = std::min(lo, n), h = std::clamp(hi, l, n);
  return {static_cast<std::size_t>(l), static_cast<std::size_t>(h)};
}

// ---- stride 1: through a zero-padded copy of the sample ---------------------------------------------
// With stride 1 every row of the columns, restricted to one output row, is a contiguous run of OW
// elements of the input padded by (ph, pw): no bounds to check once the padding is materialised. The
// padded sample (C × (H + 2ph) × (W + 2pw), 32 KB for the CNN workload's second convolution) lives in
// scratch slot 3 and stays in L1/L2; the copies and adds run over whole vectors (the previous version
// called memset/memmove per row and per border, which cost more than the data they moved).
inline std::size_t padded_h(const Im2col& g) { return g.h + 2 * g.ph; }
inline std::size_t padded_w(const Im2col& g) { return g.w + 2 * g.pw; }

// dst[0, n) = src[0, n) in whole SIMD vectors, the last one overlapping the one before it. (Typed
// xsimd loads and stores: a memcpy would be a char access that aliases everything, and the compiler
// would reload the loop bounds from memory after every copy. The empty asm keeps GCC from turning
// the loop back into a call of memmove, whose call overhead is what this function exists to avoid.)
template <class T>
inline void copy_run(T* __restrict dst, const T* __restrict src, std::size_t n) {
  using V = xsimd::batch<T>;
  constexpr std::size_t w = V::size;
  if (n < w) {
    for (std::size_t k = 0; k < n; ++k) dst[k] = src[k];
    return;
  }
  std::size_t k = 0;
  for (; k + w <= n; k += w) {
    V::load_unaligned(src + k).store_unaligned(dst + k);
    asm volatile("");
  }
  if (k < n) V::load_unaligned(src + n - w).store_unaligned(dst + n - w);
}

// dst[0, n) += src[0, n): whole vectors, then the rest of the row in one more vector whose extra
// lanes add zeros: src is read through a mask (AVX2's masked load), dst in full and written back in
// full, so dst needs one vector of slack after the run (the accumulator below has it) and its extra
// lanes are rewritten with their own values. (Element by element, the rest of a 14-wide row cost
// more than its first 8; AVX2's masked *store* is microcoded on AMD and was slower still.)
template <class T>
inline void add_run(T* __restrict dst, const T* __restrict src, std::size_t n) {
  using V = xsimd::batch<T>;
  constexpr std::size_t w = V::size;
  std::size_t k = 0;
  for (; k + w <= n; k += w) {
    (V::load_unaligned(dst + k) + V::load_unaligned(src + k)).store_unaligned(dst + k);
    asm volatile("");
  }
  if (k == n) return;
#if defined(__AVX2__)
  if constexpr (w * sizeof(T) == 32 && (std::is_same_v<T, float> || std::is_same_v<T, double>)) {
    // Lanes [0, n - k) set: a window into ones followed by zeros (of the element's width).
    alignas(32) static constexpr std::int32_t ones32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    alignas(32) static constexpr std::int64_t ones64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
    const std::size_t r = n - k;
    if constexpr (std::is_same_v<T, float>) {
      const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ones32 + 8 - r));
      _mm256_storeu_ps(dst + k, _mm256_add_ps(_mm256_loadu_ps(dst + k), _mm256_maskload_ps(src + k, m)));
    } else {
      const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ones64 + 4 - r));
      _mm256_storeu_pd(dst + k, _mm256_add_pd(_mm256_loadu_pd(dst + k), _mm256_maskload_pd(src + k, m)));
    }
    return;
  }
#endif
  for (; k < n; ++k) dst[k] += src[k];
}

// The sample x (C×H×W) padded by (ph, pw) with zeros, or x itself when there is no padding.
template <class T>
const T* padded_sample(const T* x, const Im2col& g) {
  if (g.ph == 0 && g.pw == 0) return x;
  const std::size_t hp = padded_h(g), wp = padded_w(g);
  T* p = scratch<T>(g.c * hp * wp, 3);
  for (std::size_t c = 0; c < g.c; ++c) {
    T* pc = p + c * hp * wp;
    const T* xc = x + c * g.h * g.w;
    std::fill(pc, pc + g.ph * wp, T(0));
    for (std::size_t h = 0; h < g.h; ++h) {
      T* row = pc + (h + g.ph) * wp;
      for (std::size_t k = 0; k < g.pw; ++k) {  // borders of a few elements: no memset calls
        row[k] = T(0);
        row[wp - 1 - k] = T(0);
      }
      copy_run(row + g.pw, xc + h * g.w, g.w);
    }
    std::fill(pc + (g.ph + g.h) * wp, pc + hp * wp, T(0));
  }
  return p;
}

template <class T>
void im2col_stride1(const T* x, T* __restrict cols, const Im2col& g, std::size_t ld) {
  const T* src = padded_sample(x, g);
  const std::size_t hp = padded_h(g), wp = padded_w(g), C = g.c, KH = g.kh, KW = g.kw, OH = g.oh, OW = g.ow,
                    DH = g.dh, DW = g.dw;
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t i = 0; i < KH; ++i)
      for (std::size_t j = 0; j < KW; ++j) {
        T* row = cols + ((c * KH + i) * KW + j) * ld;
        const T* in = src + c * hp * wp + i * DH * wp + j * DW;  // input row oh + i·dh - ph, shifted
        for (std::size_t oh = 0; oh < OH; ++oh) copy_run(row + oh * OW, in + oh * wp, OW);
      }
}

// Accumulates into a zeroed padded sample in scratch slot 3 (its border catches the contributions
// that fall into the padding; one vector of slack after it for add_run), then copies its interior
// out: x is written whole, nothing needs zeroing beforehand. Each element receives its contributions
// in (i, j) order, as in the general path.
template <class T>
void col2im_stride1(const T* __restrict cols, T* __restrict x, const Im2col& g, std::size_t ld) {
  const std::size_t hp = padded_h(g), wp = padded_w(g), C = g.c, KH = g.kh, KW = g.kw, OH = g.oh, OW = g.ow,
                    DH = g.dh, DW = g.dw, H = g.h, W = g.w, PH = g.ph, PW = g.pw;
  const std::size_t size = C * hp * wp, slack = xsimd::batch<T>::size;
  T* acc = scratch<T>(size + slack, 3);
  std::fill(acc, acc + size + slack, T(0));
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t i = 0; i < KH; ++i)
      for (std::size_t j = 0; j < KW; ++j) {
        const T* row = cols + ((c * KH + i) * KW + j) * ld;
        T* out = acc + c * hp * wp + i * DH * wp + j * DW;
        for (std::size_t oh = 0; oh < OH; ++oh) add_run(out + oh * wp, row + oh * OW, OW);
      }
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t h = 0; h < H; ++h) copy_run(x + (c * H + h) * W, acc + (c * hp + h + PH) * wp + PW, W);
}

// cols[(c·kh + i)·kw + j, oh·OW + ow] = x[c, oh·sh + i·dh - ph, ow·sw + j·dw - pw] (0 outside), for one
// sample; consecutive rows of cols are `ld` elements apart. Strides above 1: per kernel offset (i, j)
// the valid range of ow is computed once, the rest is filled with zeros.
template <class T>
void im2col(const T* __restrict x, T* __restrict cols, const Im2col& g, std::size_t ld) {
  if (g.sh == 1 && g.sw == 1) return im2col_stride1(x, cols, g, ld);
  for (std::size_t c = 0; c < g.c; ++c) {
    const T* xc = x + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i)
      for (std::size_t j = 0; j < g.kw; ++j) {
        T* row = cols + ((c * g.kh + i) * g.kw + j) * ld;
        const std::ptrdiff_t woff = static_cast<std::ptrdiff_t>(j * g.dw) - static_cast<std::ptrdiff_t>(g.pw);
        const ValidRange v = valid_range(woff, g.sw, g.w, g.ow);
        for (std::size_t oh = 0; oh < g.oh; ++oh) {
          T* out = row + oh * g.ow;
          const std::ptrdiff_t hh =
              static_cast<std::ptrdiff_t>(oh * g.sh + i * g.dh) - static_cast<std::ptrdiff_t>(g.ph);
          if (hh < 0 || hh >= static_cast<std::ptrdiff_t>(g.h)) {
            std::fill(out, out + g.ow, T(0));
            continue;
          }
          const T* src = xc + static_cast<std::size_t>(hh) * g.w;
          std::fill(out, out + v.lo, T(0));
          if (g.sw == 1)
            std::copy(src + (static_cast<std::ptrdiff_t>(v.lo) + woff), src + (static_cast<std::ptrdiff_t>(v.hi) + woff),
                      out + v.lo);
          else
            for (std::size_t ow = v.lo; ow < v.hi; ++ow) out[ow] = src[static_cast<std::ptrdiff_t>(ow * g.sw) + woff];
          std::fill(out + v.hi, out + g.ow, T(0));
        }
      }
  }
}

// The adjoint: x[c, h, w] = Σ cols[...] over every position that read it (x is written whole).
template <class T>
void col2im(const T* __restrict cols, T* __restrict x, const Im2col& g, std::size_t ld) {
  if (g.sh == 1 && g.sw == 1) return col2im_stride1(cols, x, g, ld);
  std::fill(x, x + g.c * g.h * g.w, T(0));
  for (std::size_t c = 0; c < g.c; ++c) {
    T* xc = x + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i)
      for (std::size_t j = 0; j < g.kw; ++j) {
        const T* row = cols + ((c * g.kh + i) * g.kw + j) * ld;
        const std::ptrdiff_t woff = static_cast<std::ptrdiff_t>(j * g.dw) - static_cast<std::ptrdiff_t>(g.pw);
        const ValidRange v = valid_range(woff, g.sw, g.w, g.ow);
        for (std::size_t oh = 0; oh < g.oh; ++oh) {
          const std::ptrdiff_t hh =
              static_cast<std::ptrdiff_t>(oh * g.sh + i * g.dh) - static_cast<std::ptrdiff_t>(g.ph);
          if (hh < 0 || hh >= static_cast<std::ptrdiff_t>(g.h)) continue;
          const T* in = row + oh * g.ow;
          T* dst = xc + static_cast<std::size_t>(hh) * g.w;  // dst[ow·sw + woff] in bounds for ow in [lo, hi)
          for (std::size_t ow = v.lo; ow < v.hi; ++ow) dst[static_cast<std::ptrdiff_t>(ow * g.sw) + woff] += in[ow];
        }
      }
  }
}

Tensor unfold_impl(const Tensor& x, const Im2col& g);
Tensor fold_impl(const Tensor& cols, const Im2col& g);

struct UnfoldBackward : OpNode {
  explicit UnfoldBackward(const Im2col& g) : OpNode("Im2ColBackward"), geom(g) {}
  Im2col geom;
  TensorList apply(TensorList&& g) override { return {fold_impl(g[0], geom)}; }
};

struct FoldBackward : OpNode {
  explicit FoldBackward(const Im2col& g) : OpNode("Col2ImBackward"), geom(g) {}
  Im2col geom;
  TensorList apply(TensorList&& g) override { return {unfold_impl(g[0], geom)}; }
};

// ---- Forward mode: unfold and fold are linear, so each one's JVP is itself applied to the tangent.
// A batched level's tangent holds B directions per sample ([B, N, C, H, W] for an input N×C×H×W):
// the same geometry over B·N samples, one kernel pass instead of B.
Im2col with_batch(const Im2col& g, std::size_t batch) {
  Im2col b = g;
  b.n *= batch;
  return b;
}

Tensor unfold_tangent(const Tensor& t, const Im2col& g) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return unfold_impl(t, g);
  const Im2col gb = with_batch(g, static_cast<std::size_t>(batch));
  const auto n = static_cast<std::int64_t>(g.n), rows = static_cast<std::int64_t>(g.rows()),
             L = static_cast<std::int64_t>(g.cols());
  return reshape(unfold_impl(reshape(t, as_i64(gb.input_shape())), gb), {batch, n, rows, L});
}

Tensor fold_tangent(const Tensor& t, const Im2col& g) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return fold_impl(t, g);
  const Im2col gb = with_batch(g, static_cast<std::size_t>(batch));
  const auto n = static_cast<std::int64_t>(g.n), rows = static_cast<std::int64_t>(g.rows()),
             L = static_cast<std::int64_t>(g.cols());
  Shape s = g.input_shape();
  s.insert(s.begin(), static_cast<std::size_t>(batch));
  return reshape(fold_impl(reshape(t, {batch * n, rows, L}), gb), as_i64(s));
}

// x: N×C×H×W (contiguous) -> the columns, N × (C·kh·kw) × L (F.unfold's layout).
Tensor unfold_impl(const Tensor& x, const Im2col& g) {
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(g.cols_shape(), "unfold");
    const T* px = arr<T>(x).data();
    const std::size_t in_step = g.c * g.h * g.w, out_step = g.rows() * g.cols();
    for (std::size_t s = 0; s < g.n; ++s) im2col(px + s * in_step, o.data() + s * out_step, g, g.cols());
    return make_tensor(std::move(o));
  });
  record<UnfoldBackward>(out, {&x}, g);
  // JVP: the columns of the tangent (unfold is linear)
  record_jvp("unfold", out, {&x}, [&](Tangents t) { return unfold_tangent(t[0], g); }, JvpBatching::Aware);
  return out;
}

Tensor fold_impl(const Tensor& cols, const Im2col& g) {
  Tensor out = dispatch(cols.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(g.input_shape(), "fold");
    const T* pc = arr<T>(cols).data();
    const std::size_t in_step = g.c * g.h * g.w, col_step = g.rows() * g.cols();
    for (std::size_t s = 0; s < g.n; ++s) col2im(pc + s * col_step, o.data() + s * in_step, g, g.cols());
    return make_tensor(std::move(o));
  });
  record<FoldBackward>(out, {&cols}, g);
  // JVP: the fold of the tangent (fold is linear)
  record_jvp("fold", out, {&cols}, [&](Tangents t) { return fold_tangent(t[0], g); }, JvpBatching::Aware);
  return out;
}

// ---- pad: a gather through one index map per padded dim, and its scatter-add adjoint ----------------
// The input seen as B × D1 × D2 × D3 (the padded dims last, missing ones of size 1); map_k[o] is the
// input position read by output position o along dim k, or -1 for the constant.
struct PadPlan {
  std::size_t b = 1;
  std::size_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1};
  std::vector<std::ptrdiff_t> map[3];
  Shape in_shape, out_shape;
};
using PadPlanPtr = std::shared_ptr<const PadPlan>;

Tensor pad_gather(const Tensor& x, const PadPlanPtr& p, double value);
Tensor pad_scatter(const Tensor& g, const PadPlanPtr& p);

struct PadBackward : OpNode {
  explicit PadBackward(PadPlanPtr p) : OpNode("PadBackward"), plan(std::move(p)) {}
  PadPlanPtr plan;
  TensorList apply(TensorList&& g) override { return {pad_scatter(g[0], plan)}; }
};
struct PadBackwardBackward : OpNode {
  explicit PadBackwardBackward(PadPlanPtr p) : OpNode("PadBackwardBackward"), plan(std::move(p)) {}
  PadPlanPtr plan;
  TensorList apply(TensorList&& g) override { return {pad_gather(g[0], plan, 0.0)}; }
};

// The plan for a batched level's tangent [B, shape...]: the batch dim joins the unpadded leading dims.
PadPlanPtr with_batch(const PadPlanPtr& p) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return p;
  auto b = std::make_shared<PadPlan>(*p);
  b->b *= static_cast<std::size_t>(batch);
  b->in_shape.insert(b->in_shape.begin(), static_cast<std::size_t>(batch));
  b->out_shape.insert(b->out_shape.begin(), static_cast<std::size_t>(batch));
  return b;
}

Tensor pad_gather(const Tensor& x, const PadPlanPtr& p, double value) {
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(p->out_shape, "pad");
    const T* px = arr<T>(x).data();
    T* po = o.data();
    const T fill = static_cast<T>(value);
    const auto &m0 = p->map[0], &m1 = p->map[1], &m2 = p->map[2];
    const std::size_t in_plane = p->in[0] * p->in[1] * p->in[2];
    for (std::size_t b = 0; b < p->b; ++b) {
      const T* xb = px + b * in_plane;
      for (std::size_t i = 0; i < p->out[0]; ++i)
        for (std::size_t j = 0; j < p->out[1]; ++j) {
          const bool row_ok = m0[i] >= 0 && m1[j] >= 0;
          const T* xr = row_ok ? xb + (static_cast<std::size_t>(m0[i]) * p->in[1] + static_cast<std::size_t>(m1[j])) * p->in[2]
                               : nullptr;
          for (std::size_t k = 0; k < p->out[2]; ++k) *po++ = (row_ok && m2[k] >= 0) ? xr[m2[k]] : fill;
        }
    }
    return make_tensor(std::move(o));
  });
  record<PadBackward>(out, {&x}, p);
  // JVP: the tangent padded the same way, with zeros for the constant (pad is affine in x)
  record_jvp("pad", out, {&x}, [&](Tangents t) { return pad_gather(t[0], with_batch(p), 0.0); }, JvpBatching::Aware);
  return out;
}

Tensor pad_scatter(const Tensor& g, const PadPlanPtr& p) {
  Tensor out = dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(p->in_shape, "pad backward");
    std::fill(o.data(), o.data() + o.size(), T(0));
    const T* pg = arr<T>(g).data();
    const auto &m0 = p->map[0], &m1 = p->map[1], &m2 = p->map[2];
    const std::size_t in_plane = p->in[0] * p->in[1] * p->in[2];
    for (std::size_t b = 0; b < p->b; ++b) {
      T* xb = o.data() + b * in_plane;
      for (std::size_t i = 0; i < p->out[0]; ++i)
        for (std::size_t j = 0; j < p->out[1]; ++j) {
          const bool row_ok = m0[i] >= 0 && m1[j] >= 0;
          if (!row_ok) {
            pg += p->out[2];
            continue;
          }
          T* xr = xb + (static_cast<std::size_t>(m0[i]) * p->in[1] + static_cast<std::size_t>(m1[j])) * p->in[2];
          for (std::size_t k = 0; k < p->out[2]; ++k, ++pg)
            if (m2[k] >= 0) xr[m2[k]] += *pg;
        }
    }
    return make_tensor(std::move(o));
  });
  record<PadBackwardBackward>(out, {&g}, p);
  // JVP: the tangent scattered the same way (linear)
  record_jvp("pad backward", out, {&g}, [&](Tangents t) { return pad_scatter(t[0], with_batch(p)); },
             JvpBatching::Aware);
  return out;
}

const char* mode_name(PadMode m) {
  switch (m) {
    case PadMode::Constant: return "constant";
    case PadMode::Reflect: return "reflect";
    case PadMode::Replicate: return "replicate";
    case PadMode::Circular: return "circular";
  }
  return "?";
}

// The index map of one dim of size n padded by (lo, hi).
std::vector<std::ptrdiff_t> pad_map(const char* op, PadMode mode, std::size_t n, std::int64_t lo, std::int64_t hi,
                                    std::size_t dim, const Shape& shape) {
  const auto N = static_cast<std::int64_t>(n);
  const std::int64_t out = N + lo + hi;
  if (out < 0)
    fail(op, ": padding (", lo, ", ", hi, ") of dim ", dim, " of size ", n, " gives a negative size; input shape ",
         shape_str(shape));
  if (mode == PadMode::Reflect && (lo >= N || hi >= N))
    fail(op, ": reflect padding (", lo, ", ", hi, ") must be smaller than the size ", n, " of dim ", dim,
         "; input shape ", shape_str(shape));
  if (mode == PadMode::Circular && (lo > N || hi > N))
    fail(op, ": circular padding (", lo, ", ", hi, ") must be at most the size ", n, " of dim ", dim,
         "; input shape ", shape_str(shape));
  if (mode != PadMode::Constant && n == 0)
    fail(op, ": ", mode_name(mode), " padding of dim ", dim, " of size 0; input shape ", shape_str(shape));
  std::vector<std::ptrdiff_t> m(static_cast<std::size_t>(out));
  for (std::int64_t o = 0; o < out; ++o) {
    std::int64_t i = o - lo;
    switch (mode) {
      case PadMode::Constant: i = (i >= 0 && i < N) ? i : -1; break;
      case PadMode::Reflect:
        if (i < 0) i = -i;
        if (i >= N) i = 2 * (N - 1) - i;
        break;
      case PadMode::Replicate: i = i < 0 ? 0 : (i >= N ? N - 1 : i); break;
      case PadMode::Circular: i = ((i % N) + N) % N; break;
    }
    m[static_cast<std::size_t>(o)] = static_cast<std::ptrdiff_t>(i);
  }
  return m;
}

// ---- conv -----------------------------------------------------------------------------------------------
// Three ops make up convolution and all its derivatives, each the others' backward:
//   conv_forward(x, W, b)      y = conv(x, W) + b
//   conv_input_grad(G, W)      ∂/∂x <G, conv(x, W)>   (a transposed convolution: GEMM with Wᵀ, col2im)
//   conv_weight_grad(G, x)     ∂/∂W <G, conv(x, W)>   (a GEMM of G with the columns of x)
// conv(x, W) is bilinear, so with <a, b> the sum of a ⊙ b:
//   <gx, conv_input_grad(G, W)>  = <G, conv(gx, W)>    -> ∂G = conv(gx, W),  ∂W = conv_weight_grad(G, gx)
//   <gW, conv_weight_grad(G, x)> = <G, conv(x, gW)>    -> ∂G = conv(x, gW),  ∂x = conv_input_grad(G, gW)
// which makes every derivative of every order a call of the same three kernels. A backward node's
// formula path (create_graph) calls the ops, its fused path (no graph recorded) calls the same kernels
// on the saved arrays: the two give the same bits by construction.
//
// Kernels: per sample, the sample's columns (C·kh·kw × L, L = OH·OW) go into a per-thread scratch
// buffer (detail/scratch.hpp; about 230 KB for the CNN workload's second convolution, so they stay in
// L2 while the GEMM reads them) and one GEMM per group writes straight into the N×O×OH×OW output: no
// column tensor, no permuted copy of the output. The weight gradient sums over the batch: its columns
// are built for a chunk of samples side by side (≈ 2 MiB, the fastest chunk measured: a per-sample
// GEMM has K = L, too short) with G's rows of the chunk copied next to them, one GEMM per chunk and
// group, accumulated with beta = 1. A 1×1, stride-1, unpadded kernel reads the input itself as its
// columns (forward and input gradient).
struct ConvGeom {
  Im2col im;  // the input (after an explicit 'same' pad) and the kernel's positions
  std::size_t o = 0, groups = 1;
  std::size_t cg() const { return im.c / groups; }
  std::size_t og() const { return o / groups; }
  std::size_t cgk() const { return cg() * im.kh * im.kw; }  // a group's rows of the columns
  std::size_t L() const { return im.cols(); }
  Shape out_shape() const { return {im.n, o, im.oh, im.ow}; }
  Shape weight_shape() const { return {o, cg(), im.kh, im.kw}; }
};

constexpr std::size_t kWeightGradChunkBytes = std::size_t{2} << 20;

// Samples per chunk of the weight gradient's GEMM.
template <class T>
std::size_t weight_grad_chunk(const ConvGeom& g) {
  const std::size_t per_sample = std::max<std::size_t>(1, g.im.rows() * g.L() * sizeof(T));
  return std::clamp<std::size_t>(kWeightGradChunkBytes / per_sample, 1, std::max<std::size_t>(g.im.n, 1));
}

// ---- The product with the weights ---------------------------------------------------------------------
// Forward and input gradient multiply each sample's columns by the same weights, one product per group:
// op(W_gr)·B, W_gr itself (og × cgk) for the forward, its transpose (cgk × og) for the input gradient.
// float32 where the packed GEMM engine is compiled in (detail/packed_gemm.hpp) packs each group's
// weights once per call and reuses them for every sample (through cblas_sgemm, OpenBLAS packed them
// again for each of the 128 samples and zeroed each output before writing it), and adds the bias as
// the product's epilogue; float64 and other builds go through cblas, the bias pre-filled (beta = 1).
template <class T>
class WeightProduct {
 public:
  WeightProduct(const T* w, const ConvGeom& g, bool transposed)
      : w_(w), og_(g.og()), cgk_(g.cgk()), transposed_(transposed) {
    if constexpr (std::is_same_v<T, float>) {
      if (packed_gemm_native()) {
        packed_.resize(g.groups);
        for (std::size_t gr = 0; gr < g.groups; ++gr)
          packed_[gr].pack(w + gr * og_ * cgk_, cgk_, transposed, transposed ? cgk_ : og_, transposed ? og_ : cgk_);
      }
    }
  }
  // C (rows × n, leading dimension ldc) = op(W_gr)·B (B: K × n, leading dimension ldb), plus bias[row]
  // when bias is not null.
  void apply(std::size_t gr, const T* b, std::size_t ldb, std::size_t n, T* c, std::size_t ldc, const T* bias) const {
    if constexpr (std::is_same_v<T, float>) {
      if (!packed_.empty()) return gemm_packed(packed_[gr], b, ldb, n, c, ldc, bias, false);
    }
    const std::size_t rows = transposed_ ? cgk_ : og_, k = transposed_ ? og_ : cgk_;
    if (bias)  // each output row starts as its bias; the GEMM adds the product on top (beta = 1)
      for (std::size_t r = 0; r < rows; ++r) std::fill(c + r * ldc, c + r * ldc + n, bias[r]);
    gemm<T>(transposed_, false, rows, n, k, w_ + gr * og_ * cgk_, cgk_, b, ldb, bias ? T(1) : T(0), c, ldc);
  }

 private:
  const T* w_;
  std::size_t og_, cgk_;
  bool transposed_;
  std::vector<PackedA> packed_;  // float32 with the engine: one per group
};

// Sample s of x as the column matrix the GEMMs read: x's own memory when the convolution is an
// identity im2col (1×1, stride 1, no padding: `cols` is null then), else its im2col into `cols`.
template <class T>
const T* sample_columns(const T* x, std::size_t s, T* cols, const Im2col& im, std::size_t L) {
  const T* xs = x + s * im.c * im.h * im.w;
  if (!cols) return xs;
  im2col(xs, cols, im, L);
  return cols;
}

// The weight gradient of float32 with the engine: gemm_nt (G·colsᵀ) one sample per call, reading G in
// place (no chunk copies), accumulated over the samples. Same scratch slot as the generic kernel below.
void conv_weight_grad_packed(const float* gy, const float* x, float* dw, const ConvGeom& g) {
  const Im2col& im = g.im;
  const std::size_t L = g.L(), og = g.og(), cgk = g.cgk();
  if (im.n == 0) {
    std::fill(dw, dw + g.o * cgk, 0.0f);
    return;
  }
  float* cols = im.identity() ? nullptr : scratch<float>(im.rows() * L, 1);
  for (std::size_t s = 0; s < im.n; ++s) {
    const float* cs = sample_columns(x, s, cols, im, L);
    const float* gs = gy + s * g.o * L;
    for (std::size_t gr = 0; gr < g.groups; ++gr)
      gemm_nt(og, cgk, L, gs + gr * og * L, L, cs + gr * cgk * L, L, dw + gr * og * cgk, cgk, s > 0);
  }
}

// y (N×O×L) = W·cols(x) per sample and group, plus b.
template <class T>
void conv_forward_kernel(const T* x, const T* w, const T* b, T* y, const ConvGeom& g) {
  const Im2col& im = g.im;
  const std::size_t L = g.L(), og = g.og(), cgk = g.cgk();
  const WeightProduct<T> product(w, g, false);
  T* cols = im.identity() ? nullptr : scratch<T>(im.rows() * L, 0);
  for (std::size_t s = 0; s < im.n; ++s) {
    const T* cs = sample_columns(x, s, cols, im, L);
    T* ys = y + s * g.o * L;
    for (std::size_t gr = 0; gr < g.groups; ++gr)
      product.apply(gr, cs + gr * cgk * L, L, L, ys + gr * og * L, L, b ? b + gr * og : nullptr);
  }
}

// dx (N×C×H×W) = col2im(Wᵀ·G) per sample and group.
template <class T>
void conv_input_grad_kernel(const T* gy, const T* w, T* dx, const ConvGeom& g) {
  const Im2col& im = g.im;
  const std::size_t L = g.L(), og = g.og(), cgk = g.cgk(), in_step = im.c * im.h * im.w;
  const bool identity = im.identity();
  const WeightProduct<T> product(w, g, true);
  T* dcols = identity ? nullptr : scratch<T>(im.rows() * L, 0);
  for (std::size_t s = 0; s < im.n; ++s) {
    T* dxs = dx + s * in_step;
    T* dst = identity ? dxs : dcols;  // 1×1: the columns are the input gradient itself
    const T* gs = gy + s * g.o * L;
    for (std::size_t gr = 0; gr < g.groups; ++gr) product.apply(gr, gs + gr * og * L, L, L, dst + gr * cgk * L, L, nullptr);
    if (!identity) col2im(dcols, dxs, im, L);
  }
}

// dW (O×Cg·kh·kw) = Σ over samples of G·cols(x)ᵀ, per group, a chunk of samples per GEMM.
template <class T>
void conv_weight_grad_kernel(const T* gy, const T* x, T* dw, const ConvGeom& g) {
  if constexpr (std::is_same_v<T, float>)
    if (packed_gemm_native()) return conv_weight_grad_packed(gy, x, dw, g);
  const Im2col& im = g.im;
  const std::size_t L = g.L(), og = g.og(), cgk = g.cgk(), in_step = im.c * im.h * im.w;
  if (im.n == 0) {
    std::fill(dw, dw + g.o * cgk, T(0));
    return;
  }
  const std::size_t chunk = weight_grad_chunk<T>(g);
  T* cols = scratch<T>(im.rows() * chunk * L, 1);
  T* gc = scratch<T>(g.o * chunk * L, 2);
  for (std::size_t s0 = 0; s0 < im.n; s0 += chunk) {
    const std::size_t m = std::min(chunk, im.n - s0), ld = m * L;
    for (std::size_t j = 0; j < m; ++j) {
      im2col(x + (s0 + j) * in_step, cols + j * L, im, ld);
      const T* gs = gy + (s0 + j) * g.o * L;
      for (std::size_t oc = 0; oc < g.o; ++oc) std::copy(gs + oc * L, gs + (oc + 1) * L, gc + oc * ld + j * L);
    }
    for (std::size_t gr = 0; gr < g.groups; ++gr)
      gemm<T>(false, true, og, cgk, ld, gc + gr * og * ld, ld, cols + gr * cgk * ld, ld, s0 == 0 ? T(0) : T(1),
              dw + gr * og * cgk, cgk);
  }
}

Tensor conv_forward_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g);
Tensor conv_input_grad_op(const Tensor& gy, const Tensor& w, const ConvGeom& g);
Tensor conv_weight_grad_op(const Tensor& gy, const Tensor& x, const ConvGeom& g);

// Runs `kernel(T)` into a fresh array of `shape`, then gives back oversized scratch buffers.
template <class Kernel>
Tensor conv_result(Dtype dt, const Shape& shape, const char* what, Kernel&& kernel) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    Array<T> r = empty_array<T>(shape, what);
    kernel(T{}, r.data());
    trim_scratch();
    return make_tensor(std::move(r));
  });
}

struct ConvBackward : OpNode {
  explicit ConvBackward(const ConvGeom& g) : OpNode("ConvolutionBackward"), geom(g) {}
  ConvGeom geom;
  SavedTensor x, w;
  TensorList apply(TensorList&& grads) override {
    const Tensor& G = grads[0];
    Tensor gx, gw, gb;
    if (fused_backward()) {
      if (needs_input_grad(0))
        gx = conv_result(G.dtype(), geom.im.input_shape(), "conv backward", [&](auto tag, auto* r) {
          using T = decltype(tag);
          conv_input_grad_kernel<T>(arr<T>(G).data(), w.value<T>(this).data(), r, geom);
        });
      if (needs_input_grad(1))
        gw = conv_result(G.dtype(), geom.weight_shape(), "conv backward", [&](auto tag, auto* r) {
          using T = decltype(tag);
          conv_weight_grad_kernel<T>(arr<T>(G).data(), x.value<T>(this).data(), r, geom);
        });
    } else {
      if (needs_input_grad(0)) gx = conv_input_grad_op(G, w.unpack(this), geom);
      if (needs_input_grad(1)) gw = conv_weight_grad_op(G, x.unpack(this), geom);
    }
    if (needs_input_grad(2)) gb = sum(G, {0, 2, 3});  // no node either way when no graph is recorded
    return {gx, gw, gb};
  }
  void release_variables() override {
    x.reset();
    w.reset();
  }
};

// <gx, conv_input_grad(G, W)>: ∂G = conv(gx, W), ∂W = conv_weight_grad(G, gx).
struct ConvInputGradBackward : OpNode {
  explicit ConvInputGradBackward(const ConvGeom& g) : OpNode("ConvolutionBackwardBackward"), geom(g) {}
  ConvGeom geom;
  SavedTensor gy, w;
  TensorList apply(TensorList&& grads) override {
    Tensor dg, dw;
    if (needs_input_grad(0)) dg = conv_forward_op(grads[0], w.unpack(this), {}, geom);
    if (needs_input_grad(1)) dw = conv_weight_grad_op(gy.unpack(this), grads[0], geom);
    return {dg, dw};
  }
  void release_variables() override {
    gy.reset();
    w.reset();
  }
};

// <gW, conv_weight_grad(G, x)>: ∂G = conv(x, gW), ∂x = conv_input_grad(G, gW).
struct ConvWeightGradBackward : OpNode {
  explicit ConvWeightGradBackward(const ConvGeom& g) : OpNode("ConvolutionBackwardBackward"), geom(g) {}
  ConvGeom geom;
  SavedTensor gy, x;
  TensorList apply(TensorList&& grads) override {
    Tensor dg, dx;
    if (needs_input_grad(0)) dg = conv_forward_op(x.unpack(this), grads[0], {}, geom);
    if (needs_input_grad(1)) dx = conv_input_grad_op(gy.unpack(this), grads[0], geom);
    return {dg, dx};
  }
  void release_variables() override {
    gy.reset();
    x.reset();
  }
};

// ---- Forward mode of the three conv ops: each is linear in each argument, so its JVP is the op itself
// applied to one tangent at a time. A batched tangent of the argument that carries the batch (x or G)
// runs as B·N samples through one call; a batched tangent of W runs once per batch entry.
ConvGeom geom_with_batch(const ConvGeom& g, std::size_t batch) {
  ConvGeom b = g;
  b.im.n *= batch;
  return b;
}
// op(t) for a tangent t of a per-sample argument (shape [B, N, ...] when batched): the B·N samples in
// one call, the result split back into [B, N, ...].
template <class Op>
Tensor per_sample_tangent(const Tensor& t, const ConvGeom& g, Op op) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return op(t, g);
  const ConvGeom gb = geom_with_batch(g, static_cast<std::size_t>(batch));
  Shape flat = t.shape();
  flat.erase(flat.begin());
  flat[0] *= static_cast<std::size_t>(batch);
  Tensor r = op(reshape(t, as_i64(flat)), gb);
  Shape s = r.shape();
  s[0] /= static_cast<std::size_t>(batch);
  s.insert(s.begin(), static_cast<std::size_t>(batch));
  return reshape(r, as_i64(s));
}
// op(t_b) for each batch entry of a tangent (or op(t) unbatched), stacked.
template <class Op>
Tensor per_entry_tangent(const Tensor& t, Op op) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return op(t);
  std::vector<Tensor> parts;
  parts.reserve(static_cast<std::size_t>(batch));
  for (std::int64_t b = 0; b < batch; ++b) parts.push_back(op(squeeze(slice(t, 0, b, b + 1), 0)));
  return stack(parts, 0);
}

Tensor conv_forward_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
  Tensor out = conv_result(x.dtype(), g.out_shape(), "conv", [&](auto tag, auto* r) {
    using T = decltype(tag);
    conv_forward_kernel<T>(arr<T>(x).data(), arr<T>(w).data(), b.defined() ? arr<T>(b).data() : nullptr, r, g);
  });
  if (auto node = record<ConvBackward>(out, {&x, &w, &b}, g)) {
    if (node->needs_input_grad(0)) node->w.save_input(w);
    if (node->needs_input_grad(1)) node->x.save_input(x);
  }
  // JVP: conv(ẋ, W) + conv(x, Ẇ) + ḃ
  record_jvp("conv", out, {&x, &w, &b}, [&](Tangents t) {
    Tensor r;
    if (t[0].defined())
      r = per_sample_tangent(t[0], g, [&](const Tensor& tx, const ConvGeom& gg) { return conv_forward_op(tx, w, {}, gg); });
    if (t[1].defined())
      r = add_tangents(r, per_entry_tangent(t[1], [&](const Tensor& tw) { return conv_forward_op(x, tw, {}, g); }));
    if (t[2].defined()) {
      std::vector<std::int64_t> s = tangent_shape(Shape{g.o, 1, 1});
      r = add_tangents(r, expand_tangent(reshape(t[2], s), g.out_shape()));
    }
    return r;
  }, JvpBatching::Aware);
  return out;
}

Tensor conv_input_grad_op(const Tensor& gy, const Tensor& w, const ConvGeom& g) {
  Tensor out = conv_result(gy.dtype(), g.im.input_shape(), "conv backward", [&](auto tag, auto* r) {
    using T = decltype(tag);
    conv_input_grad_kernel<T>(arr<T>(gy).data(), arr<T>(w).data(), r, g);
  });
  if (auto node = record<ConvInputGradBackward>(out, {&gy, &w}, g)) {
    if (node->needs_input_grad(0)) node->w.save_input(w);
    if (node->needs_input_grad(1)) node->gy.save_input(gy);
  }
  // JVP: conv_input_grad(Ġ, W) + conv_input_grad(G, Ẇ)
  record_jvp("conv backward", out, {&gy, &w}, [&](Tangents t) {
    Tensor r;
    if (t[0].defined())
      r = per_sample_tangent(t[0], g, [&](const Tensor& tg, const ConvGeom& gg) { return conv_input_grad_op(tg, w, gg); });
    if (t[1].defined())
      r = add_tangents(r, per_entry_tangent(t[1], [&](const Tensor& tw) { return conv_input_grad_op(gy, tw, g); }));
    return r;
  }, JvpBatching::Aware);
  return out;
}

Tensor conv_weight_grad_op(const Tensor& gy, const Tensor& x, const ConvGeom& g) {
  Tensor out = conv_result(gy.dtype(), g.weight_shape(), "conv backward", [&](auto tag, auto* r) {
    using T = decltype(tag);
    conv_weight_grad_kernel<T>(arr<T>(gy).data(), arr<T>(x).data(), r, g);
  });
  if (auto node = record<ConvWeightGradBackward>(out, {&gy, &x}, g)) {
    if (node->needs_input_grad(0)) node->x.save_input(x);
    if (node->needs_input_grad(1)) node->gy.save_input(gy);
  }
  // JVP: conv_weight_grad(Ġ, x) + conv_weight_grad(G, ẋ) (a sum over the samples: no batch folding)
  record_jvp("conv backward", out, {&gy, &x}, [&](Tangents t) {
    Tensor r;
    if (t[0].defined()) r = per_entry_tangent(t[0], [&](const Tensor& tg) { return conv_weight_grad_op(tg, x, g); });
    if (t[1].defined())
      r = add_tangents(r, per_entry_tangent(t[1], [&](const Tensor& tx) { return conv_weight_grad_op(gy, tx, g); }));
    return r;
  }, JvpBatching::Aware);
  return out;
}

struct ConvSpec {
  Size2 stride{1}, dilation{1};
  Padding2 padding{0};
  std::size_t groups = 1;
};

Tensor conv_impl(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias, const ConvSpec& a,
                 std::size_t spatial_dims) {
  checked(input, op, "input");
  checked(weight, op, "weight");
  check_same_dtype(op, input, weight);
  if (bias.defined()) check_same_dtype(op, input, bias);
  const Shape xs = input.shape(), ws = weight.shape();
  const std::size_t batched_rank = spatial_dims + 2;
  if (xs.size() != batched_rank && xs.size() != batched_rank - 1)
    fail(op, ": expected a ", batched_rank - 1, "-D (unbatched) or ", batched_rank, "-D (batched) input, got shape ",
         shape_str(xs));
  if (ws.size() != batched_rank)
    fail(op, ": expected a ", batched_rank, "-D weight (out_channels, in_channels/groups, kernel...), got shape ",
         shape_str(ws));
  const bool batched = xs.size() == batched_rank;
  const std::size_t c = xs[batched ? 1 : 0], o = ws[0], g = a.groups;
  if (g == 0) fail(op, ": groups must be positive, got 0");
  if (c % g != 0) fail(op, ": input channels ", c, " are not divisible by groups ", g, "; input shape ", shape_str(xs));
  if (o % g != 0)
    fail(op, ": output channels ", o, " are not divisible by groups ", g, "; weight shape ", shape_str(ws));
  if (ws[1] * g != c)
    fail(op, ": input channels ", c, " do not match weight channels ", ws[1], " × groups ", g, " = ", ws[1] * g,
         "; input shape ", shape_str(xs), ", weight shape ", shape_str(ws));
  if (bias.defined() && bias.shape() != Shape{o})
    fail(op, ": bias of shape ", shape_str(bias.shape()), " must have shape [", o, "] (out_channels)");
  for (std::size_t d : {a.stride.h, a.stride.w, a.dilation.h, a.dilation.w})
    if (d == 0) fail(op, ": stride and dilation must be positive");

  // To N×C×H×W and O×Cg×kH×kW (a 1-d op is a 2-d one of height 1).
  Tensor x = batched ? input : unsqueeze(input, 0);
  Tensor w = weight;
  if (spatial_dims == 1) {
    x = unsqueeze(x, 2);
    w = unsqueeze(w, 2);
  }
  const Shape w4 = w.shape();
  Size2 padding = a.padding.size;
  if (a.padding.is_same) {
    if (a.stride.h != 1 || a.stride.w != 1)
      fail(op, ": padding 'same' needs stride 1, got stride ", spatial_dims == 1 ? concat(a.stride.w)
                                                                                 : concat("(", a.stride.h, ", ", a.stride.w, ")"));
    // Total padding d·(k-1) per dim; an odd total puts the extra element after, as PyTorch does.
    const std::size_t th = a.dilation.h * (w4[2] - 1), tw = a.dilation.w * (w4[3] - 1);
    if (th % 2 || tw % 2) {
      x = pad(x, {static_cast<std::int64_t>(tw / 2), static_cast<std::int64_t>(tw - tw / 2),
                  static_cast<std::int64_t>(th / 2), static_cast<std::int64_t>(th - th / 2)});
      padding = Size2(0);
    } else {
      padding = Size2(th / 2, tw / 2);
    }
  }
  ConvGeom geom;
  geom.im = make_im2col(op, x.shape(), Size2(w4[2], w4[3]), UnfoldArgs{a.dilation, padding, a.stride});
  geom.o = o;
  geom.groups = g;
  const std::size_t itemsize = x.dtype() == kFloat32 ? 4 : 8;
  check_allocation(op, geom.out_shape(), itemsize);
  check_allocation(op, Shape{geom.im.rows(), geom.im.n, geom.L()}, itemsize);  // the weight gradient's chunks
  for (std::size_t v : {geom.im.rows(), geom.im.n * geom.L(), o})
    if (v > static_cast<std::size_t>(INT_MAX))
      fail(op, ": a matrix dimension of ", v, " of the convolution's GEMM exceeds what BLAS can index; input shape ",
           shape_str(xs), ", weight shape ", shape_str(ws));
  Tensor y = conv_forward_op(x, w, bias, geom);
  if (spatial_dims == 1) y = squeeze(y, 2);
  if (!batched) y = squeeze(y, 0);
  return y;
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dArgs& args) {
  return conv_impl("conv2d", input, weight, bias, ConvSpec{args.stride, args.dilation, args.padding, args.groups}, 2);
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv1dArgs& args) {
  Padding2 p = args.padding.is_same ? Padding2(same) : Padding2(Size2(0, args.padding.size));
  return conv_impl("conv1d", input, weight, bias,
                   ConvSpec{Size2(1, args.stride), Size2(1, args.dilation), p, args.groups}, 1);
}

Tensor unfold(const Tensor& input, Size2 kernel, const UnfoldArgs& args) {
  const char* op = "unfold";
  checked(input, op);
  const Shape s = input.shape();
  if (s.size() != 3 && s.size() != 4)
    fail(op, ": expected a 3-D (unbatched) or 4-D (batched) input, got shape ", shape_str(s));
  const bool batched = s.size() == 4;
  Tensor x = batched ? input : unsqueeze(input, 0);
  const Im2col g = make_im2col(op, x.shape(), kernel, args);
  check_allocation(op, g.cols_shape(), x.dtype() == kFloat32 ? 4 : 8);
  Tensor out = unfold_impl(x, g);
  return batched ? out : squeeze(out, 0);
}

Tensor fold(const Tensor& input, Size2 output_size, Size2 kernel, const UnfoldArgs& args) {
  const char* op = "fold";
  checked(input, op);
  const Shape s = input.shape();
  if (s.size() != 2 && s.size() != 3)
    fail(op, ": expected a 2-D (unbatched) or 3-D (batched) input, got shape ", shape_str(s));
  const bool batched = s.size() == 3;
  Tensor x = batched ? input : unsqueeze(input, 0);
  const Shape xs = x.shape();
  const std::size_t k = kernel.h * kernel.w;
  if (k == 0 || xs[1] % k != 0)
    fail(op, ": input dim 1 of size ", xs[1], " is not divisible by the kernel's ", kernel.h, "×", kernel.w,
         " positions; input shape ", shape_str(s));
  check_size_arg(op, "output height", output_size.h);
  check_size_arg(op, "output width", output_size.w);
  const Im2col g = make_im2col(op, Shape{xs[0], xs[1] / k, output_size.h, output_size.w}, kernel, args);
  check_allocation(op, g.input_shape(), x.dtype() == kFloat32 ? 4 : 8);
  if (xs[2] != g.cols())
    fail(op, ": input dim 2 of size ", xs[2], " does not match the ", g.oh, "×", g.ow, " = ", g.cols(),
         " kernel positions of output size (", output_size.h, ", ", output_size.w, "); input shape ", shape_str(s));
  Tensor out = fold_impl(x, g);
  return batched ? out : squeeze(out, 0);
}

Tensor pad(const Tensor& input, const std::vector<std::int64_t>& pads, PadMode mode, double value) {
  const char* op = "pad";
  checked(input, op);
  const Shape s = input.shape();
  if (pads.size() % 2 != 0) fail(op, ": the padding list must have an even length, got ", pads.size(), " values");
  const std::size_t k = pads.size() / 2;
  if (k > s.size())
    fail(op, ": ", pads.size(), " padding values pad ", k, " dims, but the input has shape ", shape_str(s));
  if (k > 3) fail(op, ": at most 3 dims can be padded, got ", pads.size(), " padding values");
  if (mode != PadMode::Constant && value != 0)
    fail(op, ": a fill value (", value, ") is only used by constant padding, not ", mode_name(mode));
  // The output shape first, so that an absurd padding is an error before any map is built.
  Shape out_shape = s;
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t dim = s.size() - k + i, m = s.size() - 1 - dim;
    for (std::int64_t v : {pads[2 * m], pads[2 * m + 1]})
      if (v > static_cast<std::int64_t>(kMaxSizeArg) || v < -static_cast<std::int64_t>(kMaxSizeArg))
        fail(op, ": padding ", v, " of dim ", dim, " is too large (at most 2^31 in magnitude)");
    const std::int64_t size = static_cast<std::int64_t>(s[dim]) + pads[2 * m] + pads[2 * m + 1];
    if (size < 0)
      fail(op, ": padding (", pads[2 * m], ", ", pads[2 * m + 1], ") of dim ", dim, " of size ", s[dim],
           " gives a negative size; input shape ", shape_str(s));
    out_shape[dim] = static_cast<std::size_t>(size);
  }
  check_allocation(op, out_shape, input.dtype() == kFloat32 ? 4 : 8);
  auto plan = std::make_shared<PadPlan>();
  plan->in_shape = s;
  plan->out_shape = s;
  const std::size_t lead = s.size() - k;
  for (std::size_t d = 0; d < lead; ++d) plan->b *= s[d];
  for (std::size_t j = 0; j < 3; ++j) plan->map[j] = {0};
  // Padded dim lead + i (i = 0..k-1) goes to slot 3 - k + i; pads[2m], pads[2m+1] pad dim rank-1-m.
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t dim = lead + i, slot = 3 - k + i, m = s.size() - 1 - dim;
    plan->map[slot] = pad_map(op, mode, s[dim], pads[2 * m], pads[2 * m + 1], dim, s);
    plan->in[slot] = s[dim];
    plan->out[slot] = plan->map[slot].size();
    plan->out_shape[dim] = plan->out[slot];
  }
  return pad_gather(input, plan, value);
}

}  // namespace xgrad
