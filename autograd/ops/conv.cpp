// Convolution and its building blocks: pad (four modes), unfold (im2col) and fold (col2im).
//
// unfold and fold are linear and adjoint to each other, and so are pad and its scatter-add: each
// one's backward is the other, which makes every op here differentiable any number of times.
// conv2d is im2col of the whole batch followed by one GEMM per group (mm, transposes as flags), so its
// backward is the one PyTorch uses: the input gradient is a transposed convolution (mm with Wᵀ then
// fold), the weight gradient a convolution of input and output gradient (mm of the gradient with the
// columns, summed over the batch) — all Tensor ops, so create_graph differentiates through them.
// A 1×1, stride-1, unpadded kernel skips im2col: the columns are the input itself, reshaped.
// Forward mode follows the same composition: pad, unfold and fold carry their JVP rules (each is
// linear, so its JVP is itself applied to the tangent), mm, reshape, permute and add theirs, so the
// tangent of conv is conv(ẋ, W) + conv(x, Ẇ) + ḃ with x's columns computed once and shared by
// both terms, and every tensor the backward saves carries its tangent (forward over reverse works).
#include <cmath>

#include "../detail/op_support.hpp"
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
  // Channel-major columns in `blocks` independent groups of n/blocks samples each (a batched level's
  // tangent: one group per direction), [blocks, rows, n/blocks·L]; 1 for the plain layout.
  std::size_t blocks = 1;
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

// cols[(c·kh + i)·kw + j, oh·OW + ow] = x[c, oh·sh + i·dh - ph, ow·sw + j·dw - pw] (0 outside), for one
// sample; consecutive rows of cols are `ld` elements apart.
template <class T>
void im2col(const T* __restrict x, T* __restrict cols, const Im2col& g, std::size_t ld) {
  const std::size_t L = ld;
  for (std::size_t c = 0; c < g.c; ++c) {
    const T* xc = x + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i)
      for (std::size_t j = 0; j < g.kw; ++j) {
        T* row = cols + ((c * g.kh + i) * g.kw + j) * L;
        const std::ptrdiff_t woff = static_cast<std::ptrdiff_t>(j * g.dw) - static_cast<std::ptrdiff_t>(g.pw);
        for (std::size_t oh = 0; oh < g.oh; ++oh) {
          T* out = row + oh * g.ow;
          const std::ptrdiff_t hh =
              static_cast<std::ptrdiff_t>(oh * g.sh + i * g.dh) - static_cast<std::ptrdiff_t>(g.ph);
          if (hh < 0 || hh >= static_cast<std::ptrdiff_t>(g.h)) {
            std::fill(out, out + g.ow, T(0));
            continue;
          }
          const T* src = xc + static_cast<std::size_t>(hh) * g.w;
          if (g.sw == 1) {
            for (std::size_t ow = 0; ow < g.ow; ++ow) {
              const std::ptrdiff_t ww = static_cast<std::ptrdiff_t>(ow) + woff;
              out[ow] = (ww >= 0 && ww < static_cast<std::ptrdiff_t>(g.w)) ? src[ww] : T(0);
            }
          } else {
            for (std::size_t ow = 0; ow < g.ow; ++ow) {
              const std::ptrdiff_t ww = static_cast<std::ptrdiff_t>(ow * g.sw) + woff;
              out[ow] = (ww >= 0 && ww < static_cast<std::ptrdiff_t>(g.w)) ? src[ww] : T(0);
            }
          }
        }
      }
  }
}

// The adjoint: x[c, h, w] += cols[...] for every position that read it. x must be zeroed first.
template <class T>
void col2im(const T* __restrict cols, T* __restrict x, const Im2col& g, std::size_t ld) {
  const std::size_t L = ld;
  for (std::size_t c = 0; c < g.c; ++c) {
    T* xc = x + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i)
      for (std::size_t j = 0; j < g.kw; ++j) {
        const T* row = cols + ((c * g.kh + i) * g.kw + j) * L;
        const std::ptrdiff_t woff = static_cast<std::ptrdiff_t>(j * g.dw) - static_cast<std::ptrdiff_t>(g.pw);
        for (std::size_t oh = 0; oh < g.oh; ++oh) {
          const std::ptrdiff_t hh =
              static_cast<std::ptrdiff_t>(oh * g.sh + i * g.dh) - static_cast<std::ptrdiff_t>(g.ph);
          if (hh < 0 || hh >= static_cast<std::ptrdiff_t>(g.h)) continue;
          const T* in = row + oh * g.ow;
          T* dst = xc + static_cast<std::size_t>(hh) * g.w;
          for (std::size_t ow = 0; ow < g.ow; ++ow) {
            const std::ptrdiff_t ww = static_cast<std::ptrdiff_t>(ow * g.sw) + woff;
            if (ww >= 0 && ww < static_cast<std::ptrdiff_t>(g.w)) dst[ww] += in[ow];
          }
        }
      }
  }
}

// Two layouts of the columns: per sample, N × (C·kh·kw) × L (F.unfold's), and channel-major,
// (C·kh·kw) × (N·L), where one GEMM with the weight convolves the whole batch.
enum class ColLayout { PerSample, ChannelMajor };

Tensor unfold_impl(const Tensor& x, const Im2col& g, ColLayout layout);
Tensor fold_impl(const Tensor& cols, const Im2col& g, ColLayout layout);

struct UnfoldBackward : OpNode {
  UnfoldBackward(const Im2col& g, ColLayout l) : OpNode("Im2ColBackward"), geom(g), layout(l) {}
  Im2col geom;
  ColLayout layout;
  TensorList apply(TensorList&& g) override { return {fold_impl(g[0], geom, layout)}; }
};

struct FoldBackward : OpNode {
  FoldBackward(const Im2col& g, ColLayout l) : OpNode("Col2ImBackward"), geom(g), layout(l) {}
  Im2col geom;
  ColLayout layout;
  TensorList apply(TensorList&& g) override { return {unfold_impl(g[0], geom, layout)}; }
};

// Where sample s's columns start and how far apart their rows are.
std::size_t col_offset(const Im2col& g, ColLayout l, std::size_t s) {
  if (l == ColLayout::PerSample) return s * g.rows() * g.cols();
  const std::size_t per = g.n / g.blocks;  // samples per block
  return (s / per) * g.rows() * per * g.cols() + (s % per) * g.cols();
}
std::size_t col_ld(const Im2col& g, ColLayout l) {
  return l == ColLayout::PerSample ? g.cols() : g.n / g.blocks * g.cols();
}
Shape col_shape(const Im2col& g, ColLayout l) {
  if (l == ColLayout::PerSample) return g.cols_shape();
  if (g.blocks == 1) return Shape{g.rows(), g.n * g.cols()};
  return Shape{g.blocks, g.rows(), g.n / g.blocks * g.cols()};
}

// ---- Forward mode: unfold and fold are linear, so each one's JVP is itself applied to the tangent.
// A batched level's tangent holds B directions per sample ([B, N, C, H, W] for an input N×C×H×W):
// the same geometry over B·N samples, one kernel pass instead of B, the channel-major columns in one
// block per direction ([B, rows, N·L], the tangent shape of [rows, N·L]) so that no permute is needed.
Im2col with_batch(const Im2col& g, std::size_t batch) {
  Im2col b = g;
  b.n *= batch;
  b.blocks *= batch;
  return b;
}

Tensor unfold_tangent(const Tensor& t, const Im2col& g, ColLayout layout) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return unfold_impl(t, g, layout);
  const Im2col gb = with_batch(g, static_cast<std::size_t>(batch));
  Tensor cols = unfold_impl(reshape(t, as_i64(gb.input_shape())), gb, layout);
  if (layout == ColLayout::ChannelMajor) return cols;  // [B, rows, N·L]
  // Per sample: [B·N, rows, L] -> [B, N, rows, L]
  return reshape(cols, {batch, static_cast<std::int64_t>(g.n), static_cast<std::int64_t>(g.rows()),
                        static_cast<std::int64_t>(g.cols())});
}

Tensor fold_tangent(const Tensor& t, const Im2col& g, ColLayout layout) {
  const std::int64_t batch = tangent_batch();
  if (batch == 0) return fold_impl(t, g, layout);
  const Im2col gb = with_batch(g, static_cast<std::size_t>(batch));
  Tensor cols = layout == ColLayout::ChannelMajor ? t : reshape(t, as_i64(col_shape(gb, layout)));
  Shape s = g.input_shape();
  s.insert(s.begin(), static_cast<std::size_t>(batch));
  return reshape(fold_impl(cols, gb, layout), as_i64(s));
}

// x: N×C×H×W (contiguous) -> the columns.
Tensor unfold_impl(const Tensor& x, const Im2col& g, ColLayout layout) {
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(col_shape(g, layout), "unfold");
    const T* px = arr<T>(x).data();
    const std::size_t in_step = g.c * g.h * g.w, ld = col_ld(g, layout);
    for (std::size_t s = 0; s < g.n; ++s) im2col(px + s * in_step, o.data() + col_offset(g, layout, s), g, ld);
    return make_tensor(std::move(o));
  });
  record<UnfoldBackward>(out, {&x}, g, layout);
  // JVP: the columns of the tangent (unfold is linear)
  record_jvp("unfold", out, {&x}, [&](Tangents t) { return unfold_tangent(t[0], g, layout); }, JvpBatching::Aware);
  return out;
}

Tensor fold_impl(const Tensor& cols, const Im2col& g, ColLayout layout) {
  Tensor out = dispatch(cols.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(g.input_shape(), "fold");
    std::fill(o.data(), o.data() + o.size(), T(0));
    const T* pc = arr<T>(cols).data();
    const std::size_t in_step = g.c * g.h * g.w, ld = col_ld(g, layout);
    for (std::size_t s = 0; s < g.n; ++s) col2im(pc + col_offset(g, layout, s), o.data() + s * in_step, g, ld);
    return make_tensor(std::move(o));
  });
  record<FoldBackward>(out, {&cols}, g, layout);
  // JVP: the fold of the tangent (fold is linear)
  record_jvp("fold", out, {&cols}, [&](Tangents t) { return fold_tangent(t[0], g, layout); }, JvpBatching::Aware);
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
  const Shape x4 = x.shape(), w4 = w.shape();
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
  const Im2col geom = make_im2col(op, x.shape(), Size2(w4[2], w4[3]), UnfoldArgs{a.dilation, padding, a.stride});
  check_allocation(op, Shape{geom.rows(), geom.n, geom.cols()}, x.dtype() == kFloat32 ? 4 : 8);
  const auto n = static_cast<std::int64_t>(geom.n), L = static_cast<std::int64_t>(geom.cols());
  const auto G = static_cast<std::int64_t>(g), Og = static_cast<std::int64_t>(o / g),
             CgK = static_cast<std::int64_t>(geom.rows() / g), O = static_cast<std::int64_t>(o);
  // The columns of the whole batch side by side, (C·K) × (N·L): one GEMM per group convolves every
  // sample (a far better GEMM shape than one per sample: L is 49 for a 7×7 map). A 1×1, stride-1,
  // unpadded kernel reads the input itself, channel-major.
  Tensor cols = geom.identity()
                    ? reshape(permute(reshape(x, {n, static_cast<std::int64_t>(geom.c), L}), {1, 0, 2}),
                              {static_cast<std::int64_t>(geom.c), n * L})
                    : unfold_impl(x, geom, ColLayout::ChannelMajor);
  Tensor y;
  if (g == 1) {
    y = mm(reshape(w, {O, CgK}), cols);  // (O × C·K) · (C·K × N·L)
  } else {
    // Per group (Og × Cg·K) · (Cg·K × N·L); a group's rows of the columns are contiguous.
    y = mm(reshape(w, {G, Og, CgK}), reshape(cols, {G, CgK, n * L}));
  }
  // (O, N·L) -> (N, O, OH, OW)
  y = reshape(permute(reshape(y, {O, n, L}), {1, 0, 2}),
              {n, O, static_cast<std::int64_t>(geom.oh), static_cast<std::int64_t>(geom.ow)});
  if (bias.defined()) y = add(y, reshape(bias, {static_cast<std::int64_t>(o), 1, 1}));
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
  Tensor out = unfold_impl(x, g, ColLayout::PerSample);
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
  Tensor out = fold_impl(x, g, ColLayout::PerSample);
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
