// conv1d, conv2d, pad, unfold, fold: values by hand (derivations in comments), against a direct
// six-loop convolution, the generic table checks (gradcheck, gradgradcheck, fused vs formula,
// float32) over stride/padding/dilation/groups and unbatched inputs, 0-element batches, errors.
#include <doctest/doctest.h>

#include <xgrad.hpp>

#include "helpers.hpp"
#include "error_checks.hpp"

using namespace xgrad;
using test::check_error;
using test::check_values;
using test::param;

namespace F = xgrad::nn::functional;

namespace {

// x = 1..n as a float64 tensor of `shape`.
Tensor iota(const Shape& shape) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  return (arange(static_cast<std::int64_t>(n), kFloat64) + 1.0).reshape(std::vector<std::int64_t>(shape.begin(), shape.end()));
}

// Where tap (ki, kj) of output (i, j) reads the input: (i·s - p + ki·d, j·s - p + kj·d), or false when
// that falls in the padding.
bool input_position(std::size_t i, std::size_t j, std::size_t ki, std::size_t kj, Size2 s, Size2 p, Size2 d,
                    std::size_t H, std::size_t W, std::size_t& h, std::size_t& w) {
  const long hl = static_cast<long>(i * s.h + ki * d.h) - static_cast<long>(p.h);
  const long wl = static_cast<long>(j * s.w + kj * d.w) - static_cast<long>(p.w);
  if (hl < 0 || wl < 0 || hl >= static_cast<long>(H) || wl >= static_cast<long>(W)) return false;
  h = static_cast<std::size_t>(hl);
  w = static_cast<std::size_t>(wl);
  return true;
}

// The definition, loop by loop: y[n,o,i,j] = b[o] + Σ_{c,ki,kj} w[o,c,ki,kj]·x[n, g·Cg + c, i·s - p + ki·d, j·s - p + kj·d].
std::vector<double> direct_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, Size2 s, Size2 p, Size2 d,
                                  std::size_t groups, Shape* out_shape) {
  const Shape xs = x.shape(), ws = w.shape();
  const std::size_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const std::size_t OH = (H + 2 * p.h - d.h * (KH - 1) - 1) / s.h + 1, OW = (W + 2 * p.w - d.w * (KW - 1) - 1) / s.w + 1;
  *out_shape = {N, O, OH, OW};
  const auto& xv = x.data<double>();
  const auto& wv = w.data<double>();
  std::vector<double> y(N * O * OH * OW, 0.0);
  const std::size_t Og = O / groups;
  (void)C;
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t o = 0; o < O; ++o)
      for (std::size_t i = 0; i < OH; ++i)
        for (std::size_t j = 0; j < OW; ++j) {
          double acc = b.defined() ? b.data<double>()(o) : 0.0;
          const std::size_t g = o / Og;
          for (std::size_t c = 0; c < Cg; ++c)
            for (std::size_t ki = 0; ki < KH; ++ki)
              for (std::size_t kj = 0; kj < KW; ++kj) {
                std::size_t h = 0, ww = 0;
                if (!input_position(i, j, ki, kj, s, p, d, H, W, h, ww)) continue;
                acc += wv(o, c, ki, kj) * xv(n, g * Cg + c, h, ww);
              }
          y[((n * O + o) * OH + i) * OW + j] = acc;
        }
  return y;
}

// The adjoints of the same loops: for y = conv(x, w), gx[n, g·Cg + c, h, ww] = Σ G[n,o,i,j]·w[o,c,ki,kj]
// and gw[o,c,ki,kj] = Σ G[n,o,i,j]·x[n, g·Cg + c, h, ww] over the (i, j, ki, kj) that read (h, ww).
void direct_conv2d_grads(const Tensor& x, const Tensor& w, const Tensor& G, Size2 s, Size2 p, Size2 d,
                         std::size_t groups, std::vector<double>& gx, std::vector<double>& gw) {
  const Shape xs = x.shape(), ws = w.shape(), gs = G.shape();
  const std::size_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const std::size_t OH = gs[2], OW = gs[3], Og = O / groups;
  const auto& xv = x.data<double>();
  const auto& wv = w.data<double>();
  const auto& gv = G.data<double>();
  gx.assign(N * C * H * W, 0.0);
  gw.assign(O * Cg * KH * KW, 0.0);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t o = 0; o < O; ++o)
      for (std::size_t i = 0; i < OH; ++i)
        for (std::size_t j = 0; j < OW; ++j)
          for (std::size_t c = 0; c < Cg; ++c)
            for (std::size_t ki = 0; ki < KH; ++ki)
              for (std::size_t kj = 0; kj < KW; ++kj) {
                std::size_t hh = 0, wu = 0;
                if (!input_position(i, j, ki, kj, s, p, d, H, W, hh, wu)) continue;
                const std::size_t cin = (o / Og) * Cg + c;
                gx[((n * C + cin) * H + hh) * W + wu] += gv(n, o, i, j) * wv(o, c, ki, kj);
                gw[((o * Cg + c) * KH + ki) * KW + kj] += gv(n, o, i, j) * xv(n, cin, hh, wu);
              }
}

}  // namespace

TEST_CASE("conv2d: values by hand for stride, padding, dilation, groups and bias") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    Tensor x = iota({1, 1, 3, 3}).to(dt);  // [[1,2,3],[4,5,6],[7,8,9]]
    Tensor w = ones({1, 1, 2, 2}, dt);
    // Each output is the sum of a 2×2 window: 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28.
    check_values(F::conv2d(x, w), {1, 1, 2, 2}, {12, 16, 24, 28});
    // Plus a bias of 1.
    check_values(F::conv2d(x, w, tensor({1.0}, dt)), {1, 1, 2, 2}, {13, 17, 25, 29});
    // Padding 1, stride 2: windows start at -1 and 1 in each dim; out-of-range cells are 0:
    // (-1..0, -1..0) -> 1; (-1..0, 1..2) -> 2+3; (1..2, -1..0) -> 4+7; (1..2, 1..2) -> 5+6+8+9.
    check_values(F::conv2d(x, w, {}, {.stride = 2, .padding = 1}), {1, 1, 2, 2}, {1, 5, 11, 28});
    // Dilation 2: the kernel taps the four corners, 1+3+7+9 = 20.
    check_values(F::conv2d(x, w, {}, {.dilation = 2}), {1, 1, 1, 1}, {20});
    // Unbatched C×H×W gives O×OH×OW.
    check_values(F::conv2d(x.reshape({1, 3, 3}), w), {1, 2, 2}, {12, 16, 24, 28});
    // groups = 2 on two channels [2], [3] with 1×1 kernels [5], [7]: each channel by its own kernel.
    Tensor x2 = tensor({2.0, 3.0}, dt).reshape({1, 2, 1, 1});
    Tensor w2 = tensor({5.0, 7.0}, dt).reshape({2, 1, 1, 1});
    check_values(F::conv2d(x2, w2, {}, {.groups = 2}), {1, 2, 1, 1}, {10, 21});
    // Asymmetric stride/padding pairs: stride (1, 2), padding (0, 1) on the 3×3 input with the 2×2 ones kernel:
    // rows 0..1 and 1..2; columns -1..0 and 1..2 -> [1+4, 2+3+5+6, 4+7, 5+6+8+9].
    check_values(F::conv2d(x, w, {}, {.stride = {1, 2}, .padding = {0, 1}}), {1, 1, 2, 2}, {5, 16, 11, 28});
  }
}

TEST_CASE("conv2d: padding same keeps the size, odd total padding goes after as in PyTorch") {
  Tensor x = iota({1, 1, 3, 3});
  // 3×3 ones kernel, same: each output is the sum of the 3×3 neighbourhood. Centre: 45. Corner (0,0): 1+2+4+5 = 12.
  Tensor y = F::conv2d(x, ones({1, 1, 3, 3}, kFloat64), {}, {.padding = nn::same});
  REQUIRE(y.shape() == Shape{1, 1, 3, 3});
  check_values(y, {1, 1, 3, 3}, {12, 21, 16, 27, 45, 33, 24, 39, 28});
  // 2×2 kernel, same: total padding 1 per dim, 0 before and 1 after, so output (i, j) sums rows i..i+1,
  // columns j..j+1 of the zero-extended input: [12, 16, 9, 24, 28, 15, 15, 17, 9].
  check_values(F::conv2d(x, ones({1, 1, 2, 2}, kFloat64), {}, {.padding = nn::same}), {1, 1, 3, 3},
               {12, 16, 9, 24, 28, 15, 15, 17, 9});
}

TEST_CASE("conv2d: matches the direct loop definition over strides, paddings, dilations and groups") {
  manual_seed(3);
  struct Cfg {
    Size2 s, p, d;
    std::size_t groups, c, o;
    Size2 k;
    bool bias;
  };
  const Cfg cfgs[] = {
      {1, 0, 1, 1, 3, 4, 3, true},   {2, 1, 1, 1, 3, 4, 3, false},      {1, 2, 2, 1, 2, 3, 3, true},
      {{2, 1}, {1, 0}, {1, 2}, 1, 2, 2, {2, 3}, true},   {1, 1, 1, 2, 4, 6, 3, true},
      {1, 1, 1, 4, 4, 4, 3, true},  // depthwise
      {1, 0, 1, 1, 3, 5, 1, true},  // 1×1, the im2col-free path
      {2, 0, 1, 1, 3, 5, 1, false}, // 1×1 with stride: im2col
  };
  for (const Cfg& c : cfgs) {
    CAPTURE(c.s.h);
    CAPTURE(c.p.h);
    CAPTURE(c.d.w);
    CAPTURE(c.groups);
    Tensor x = randn({2, c.c, 6, 7}, kFloat64);
    Tensor w = randn({c.o, c.c / c.groups, c.k.h, c.k.w}, kFloat64);
    Tensor b = c.bias ? randn({c.o}, kFloat64) : Tensor();
    Shape shape;
    const std::vector<double> ref = direct_conv2d(x, w, b, c.s, c.p, c.d, c.groups, &shape);
    check_values(F::conv2d(x, w, b, {.stride = c.s, .padding = c.p, .dilation = c.d, .groups = c.groups}), shape, ref, 1e-12);
  }
}

// Stride 1 runs through a zero-padded copy of each sample (im2col) and accumulates into a padded
// buffer (col2im), with whole-vector copies and a scalar tail: widths below, at and above a vector
// (4 doubles, 8 floats), no padding, asymmetric padding and dilation, against the adjoint loops.
TEST_CASE("conv2d: input and weight gradients match the direct loop adjoints, stride 1 and strided") {
  manual_seed(4);
  struct Cfg {
    Size2 s, p, d, k;
    std::size_t groups, c, o, h, w;
  };
  const Cfg cfgs[] = {
      {1, 1, 1, 3, 1, 3, 4, 6, 7},         {1, 0, 1, 3, 1, 2, 3, 5, 5},     {1, 2, 2, 3, 1, 2, 3, 7, 9},
      {1, {1, 0}, 1, {3, 2}, 1, 2, 2, 4, 3}, {1, {0, 2}, {2, 1}, {2, 3}, 1, 3, 2, 6, 12},
      {1, 1, 1, 3, 2, 4, 6, 9, 18},        {1, 1, 1, 3, 1, 1, 2, 3, 2},     {{2, 1}, 1, 1, 3, 1, 2, 3, 7, 8},
      {2, 1, 1, 3, 1, 2, 3, 7, 8},
  };
  for (const Cfg& c : cfgs) {
    CAPTURE(c.s.h);
    CAPTURE(c.p.w);
    CAPTURE(c.d.h);
    CAPTURE(c.w);
    Tensor x = randn({2, c.c, c.h, c.w}, kFloat64), w = randn({c.o, c.c / c.groups, c.k.h, c.k.w}, kFloat64);
    x.requires_grad_();
    w.requires_grad_();
    Tensor y = F::conv2d(x, w, {}, {.stride = c.s, .padding = c.p, .dilation = c.d, .groups = c.groups});
    Tensor G = randn(y.shape(), kFloat64);
    const auto grads = autograd::grad({y}, {x, w}, {G});
    std::vector<double> gx, gw;
    direct_conv2d_grads(x.detach(), w.detach(), G, c.s, c.p, c.d, c.groups, gx, gw);
    check_values(grads[0], x.shape(), gx, 1e-12);
    check_values(grads[1], w.shape(), gw, 1e-12);
    // float32 through the same kernels (8-wide vectors): against the float64 result.
    Tensor x32 = x.detach().to(kFloat32), w32 = w.detach().to(kFloat32);
    x32.requires_grad_();
    w32.requires_grad_();
    Tensor y32 = F::conv2d(x32, w32, {}, {.stride = c.s, .padding = c.p, .dilation = c.d, .groups = c.groups});
    const auto g32 = autograd::grad({y32}, {x32, w32}, {G.to(kFloat32)});
    check_values(g32[0].to(kFloat64), x.shape(), gx, 1e-4);
    check_values(g32[1].to(kFloat64), w.shape(), gw, 1e-4);
  }
}

// The kernels convolve sample by sample from a per-thread column buffer and sum the weight gradient
// over chunks of samples (about 2 MiB of columns each): 18 × 10000 float64 columns per sample are
// 1.44 MB, so each of the 3 samples is a chunk of its own. The reference is the textbook im2col
// convolution in other ops: columns by F::unfold, products by mm, the input gradient folded back.
TEST_CASE("conv2d: forward, input and weight gradients over several weight-gradient chunks match unfold + mm") {
  manual_seed(21);
  Tensor x = randn({3, 2, 100, 100}, kFloat64), w = randn({4, 2, 3, 3}, kFloat64), b = randn({4}, kFloat64);
  for (Tensor* t : {&x, &w, &b}) t->requires_grad_();
  Tensor y = F::conv2d(x, w, b, {.padding = 1});
  Tensor g = randn({3, 4, 100, 100}, kFloat64);
  const auto grads = autograd::grad({y}, {x, w, b}, {g});

  NoGradGuard no_grad;
  Tensor cols = F::unfold(x, 3, {.padding = 1});  // [3, 18, 10000]
  Tensor wm = w.reshape({4, 18}), g3 = g.reshape({3, 4, 10000});
  Tensor y_ref = (mm(wm, cols) + b.reshape({4, 1})).reshape({3, 4, 100, 100});
  Tensor gw_ref = mm(g3, cols, false, true).sum({0}).reshape({4, 2, 3, 3});
  Tensor gx_ref = F::fold(mm(wm, g3, true, false), {100, 100}, 3, {.padding = 1});
  Tensor gb_ref = g.sum({0, 2, 3});
  const auto close = [](const Tensor& a, const Tensor& r) {
    REQUIRE(a.shape() == r.shape());
    const double scale = 1 + max(abs(r)).item<double>();
    CHECK(max(abs(a - r)).item<double>() <= 1e-11 * scale);
  };
  close(y.detach(), y_ref);
  close(grads[0], gx_ref);
  close(grads[1], gw_ref);
  close(grads[2], gb_ref);
}

TEST_CASE("conv1d: values by hand, same padding with odd and even kernels, unbatched") {
  Tensor x = tensor({1.0, 2.0, 3.0, 4.0}, kFloat64).reshape({1, 1, 4});
  // Kernel [1, -1]: x[i] - x[i+1] = -1 everywhere.
  check_values(F::conv1d(x, tensor({1.0, -1.0}, kFloat64).reshape({1, 1, 2})), {1, 1, 3}, {-1, -1, -1});
  // Kernel [1, 1, 1], same: padding 1 on each side -> [0+1+2, 1+2+3, 2+3+4, 3+4+0].
  check_values(F::conv1d(x, ones({1, 1, 3}, kFloat64), {}, {.padding = nn::same}), {1, 1, 4}, {3, 6, 9, 7});
  // Kernel [1, 1], same: total padding 1, all after -> [1+2, 2+3, 3+4, 4+0].
  check_values(F::conv1d(x, ones({1, 1, 2}, kFloat64), {}, {.padding = nn::same}), {1, 1, 4}, {3, 5, 7, 4});
  // Stride 2, padding 1, kernel [1, 1]: (4 + 2 - 2)/2 + 1 = 3 windows, at -1..0, 1..2, 3..4 -> [1, 2+3, 4];
  // plus bias 10.
  check_values(F::conv1d(x, ones({1, 1, 2}, kFloat64), tensor({10.0}, kFloat64), {.stride = 2, .padding = 1}),
               {1, 1, 3}, {11, 15, 14});
  // Unbatched C×L.
  check_values(F::conv1d(x.reshape({1, 4}), ones({1, 1, 2}, kFloat64)), {1, 3}, {3, 5, 7});
}

TEST_CASE("pad: the four modes by hand, negative constant padding crops") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64).reshape({1, 1, 3});
  // (2 before, 1 after) of [1, 2, 3]:
  check_values(F::pad(x, {2, 1}, F::PadMode::Reflect), {1, 1, 6}, {3, 2, 1, 2, 3, 2});    // mirrored, edge not repeated
  check_values(F::pad(x, {2, 1}, F::PadMode::Replicate), {1, 1, 6}, {1, 1, 1, 2, 3, 3});  // edge repeated
  check_values(F::pad(x, {2, 1}, F::PadMode::Circular), {1, 1, 6}, {2, 3, 1, 2, 3, 1});   // wrapped
  check_values(F::pad(x, {1, 2}, F::PadMode::Constant, 9.0), {1, 1, 6}, {9, 1, 2, 3, 9, 9});
  check_values(F::pad(x, {-1, 0}), {1, 1, 2}, {2, 3});
  // 2-D reflect of [[1,2],[3,4]] by 1 on every side: rows [4,3,4,3], [2,1,2,1], [4,3,4,3], [2,1,2,1].
  Tensor m = tensor({{1.0, 2.0}, {3.0, 4.0}}, kFloat64).reshape({1, 1, 2, 2});
  check_values(F::pad(m, {1, 1, 1, 1}, F::PadMode::Reflect), {1, 1, 4, 4},
               {4, 3, 4, 3, 2, 1, 2, 1, 4, 3, 4, 3, 2, 1, 2, 1});
  // The last-dim pair comes first: {0, 0, 1, 0} pads one row of zeros on top only.
  check_values(F::pad(m, {0, 0, 1, 0}), {1, 1, 3, 2}, {0, 0, 1, 2, 3, 4});
}

TEST_CASE("pad: the gradient of reflect padding adds up the mirrored cells") {
  // pad([1,2,3], (2,1), reflect) reads x[2], x[1], x[0], x[1], x[2], x[1]: x[0] once, x[1] three times, x[2] twice.
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64).reshape({1, 1, 3});
  x.requires_grad_();
  F::pad(x, {2, 1}, F::PadMode::Reflect).sum().backward();
  check_values(x.grad(), {1, 1, 3}, {1, 3, 2});
}

TEST_CASE("unfold and fold: columns by hand, fold(unfold(ones)) counts the overlaps") {
  Tensor x = iota({1, 1, 3, 3});
  // 2×2 kernel positions at (0,0), (0,1), (1,0), (1,1); row (ki,kj) lists x[i+ki, j+kj] over positions.
  check_values(F::unfold(x, 2), {1, 4, 4}, {1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
  // Each cell is covered by as many 2×2 windows as contain it: corners 1, edges 2, centre 4.
  check_values(F::fold(F::unfold(ones({1, 1, 3, 3}, kFloat64), 2), {3, 3}, 2), {1, 1, 3, 3}, {1, 2, 1, 2, 4, 2, 1, 2, 1});
  // Unbatched forms: C×H×W -> C·K×L and back.
  check_values(F::unfold(x.reshape({1, 3, 3}), 3, {.padding = 0}), {9, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  check_values(F::fold(F::unfold(x.reshape({1, 3, 3}), 3), {3, 3}, 3), {1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("conv2d: 0-element batches give 0-element outputs and gradients") {
  Tensor x = zeros({0, 2, 5, 5}, kFloat64);
  x.requires_grad_();
  Tensor w = param({3, 2, 3, 3});
  Tensor y = F::conv2d(x, w, {}, {.padding = 1});
  REQUIRE(y.shape() == Shape{0, 3, 5, 5});
  y.sum().backward();
  REQUIRE(x.grad().shape() == Shape{0, 2, 5, 5});
  check_values(w.grad(), {3, 2, 3, 3}, std::vector<double>(54, 0.0));
}

TEST_CASE("conv and pad errors name the op and the shapes") {
  Tensor x = zeros({1, 4, 5, 5}), w = zeros({2, 4, 3, 3});
  // input channels != weight channels × groups
  check_error([&] { F::conv2d(x, zeros({2, 3, 3, 3})); }, {"conv2d", "input channels 4", "weight channels 3", "[1, 4, 5, 5]", "[2, 3, 3, 3]"});
  // channels not divisible by groups
  check_error([&] { F::conv2d(x, zeros({3, 1, 3, 3}), {}, {.groups = 3}); }, {"conv2d", "not divisible by groups 3"});
  check_error([&] { F::conv2d(x, zeros({3, 2, 3, 3}), {}, {.groups = 2}); }, {"conv2d", "output channels 3", "groups 2"});
  // a kernel larger than the padded input
  check_error([&] { F::conv2d(zeros({1, 4, 2, 2}), w); }, {"conv2d", "larger than the padded input", "[1, 4, 2, 2]"});
  check_error([&] { F::conv1d(zeros({1, 1, 2}), zeros({1, 1, 5}), {}, {.padding = 1}); }, {"conv1d", "larger than the padded input"});
  // same with stride > 1
  check_error([&] { F::conv2d(x, w, {}, {.stride = 2, .padding = nn::same}); }, {"conv2d", "'same'", "stride"});
  check_error([&] { F::conv1d(zeros({1, 1, 8}), zeros({1, 1, 3}), {}, {.stride = 2, .padding = nn::same}); }, {"conv1d", "'same'", "stride 2"});
  // not a 4-D input (3-D is the unbatched form)
  check_error([&] { F::conv2d(zeros({4, 5}), w); }, {"conv2d", "3-D (unbatched) or 4-D", "[4, 5]"});
  check_error([&] { F::conv2d(zeros({1, 1, 4, 5, 5}), w); }, {"conv2d", "[1, 1, 4, 5, 5]"});
  check_error([&] { F::conv1d(zeros({4, 5, 5, 5}), zeros({1, 4, 3})); }, {"conv1d", "2-D (unbatched) or 3-D"});
  check_error([&] { F::conv2d(x, w, zeros({3})); }, {"conv2d", "bias of shape [3]"});
  check_error([&] { F::conv2d(x, zeros({2, 4, 3, 3}, kFloat64)); }, {"conv2d", "dtype"});
  // pad wider than the input in reflect mode
  check_error([&] { F::pad(zeros({1, 1, 3}), {3, 0}, F::PadMode::Reflect); }, {"pad", "reflect", "(3, 0)", "size 3", "[1, 1, 3]"});
  check_error([&] { F::pad(zeros({1, 1, 3}), {1}); }, {"pad", "even"});
  check_error([&] { F::pad(zeros({3}), {1, 1, 1, 1}); }, {"pad", "[3]"});
  check_error([&] { F::unfold(zeros({4, 4}), 2); }, {"unfold", "[4, 4]"});
  check_error([&] { F::fold(zeros({1, 4, 5}), {3, 3}, 2); }, {"fold", "5", "4 kernel positions"});
  // Absurd sizes are errors before anything is allocated, never bad_alloc or wrapped-around arithmetic.
  check_error([&] { F::pad(zeros({1, 1, 3}), {std::int64_t{1} << 40, 0}); }, {"pad", "too large"});
  check_error([&] { F::pad(zeros({1, 1, 3}), {-5, 0}); }, {"pad", "negative size"});
  check_error([&] { F::conv2d(x, w, {}, {.stride = std::size_t{1} << 40}); }, {"conv2d", "stride", "too large"});
  check_error([&] { F::unfold(zeros({1, 1, 4, 4}), 2, {.dilation = std::size_t{1} << 62}); }, {"unfold", "dilation", "too large"});
  check_error([&] { F::fold(zeros({1, 4, 1}), {std::size_t{1} << 40, 2}, 2); }, {"fold", "output height", "too large"});
}
