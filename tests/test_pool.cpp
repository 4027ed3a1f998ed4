// max_pool2d, avg_pool2d, adaptive_avg_pool2d: values by hand (derivations in comments), PyTorch's
// output sizes with ceil_mode, the argmax gradient, the table checks, 0-element batches, errors.
#include <doctest/doctest.h>

#include <xgrad.hpp>
#include <xtensor/xadapt.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "helpers.hpp"
#include "error_checks.hpp"

using namespace xgrad;
using test::check_error;
using test::check_values;

namespace F = xgrad::nn::functional;

namespace {
Tensor iota(const Shape& shape, Dtype dt = kFloat64) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  return (arange(static_cast<std::int64_t>(n), dt) + 1.0).reshape(std::vector<std::int64_t>(shape.begin(), shape.end()));
}
}  // namespace

TEST_CASE("max_pool2d: values by hand for stride, padding, dilation and ceil_mode") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    // 4×4 of 1..16, 2×2 windows with the default stride 2: each window's bottom-right is its max.
    check_values(F::max_pool2d(iota({1, 1, 4, 4}, dt), 2), {1, 1, 2, 2}, {6, 8, 14, 16});
    Tensor x3 = iota({1, 1, 3, 3}, dt);
    // Stride 1 on 3×3: windows at (0..1, 0..1) ... (1..2, 1..2): maxima 5, 6, 8, 9.
    check_values(F::max_pool2d(x3, 2, {.stride = 1}), {1, 1, 2, 2}, {5, 6, 8, 9});
    // Padding 1, stride 2: windows (-1..0, -1..0) -> 1; (-1..0, 1..2) -> 3; (1..2, -1..0) -> 7; (1..2, 1..2) -> 9.
    check_values(F::max_pool2d(x3, 2, {.padding = 1}), {1, 1, 2, 2}, {1, 3, 7, 9});
    // Dilation 2: one window on the corners 1, 3, 7, 9.
    check_values(F::max_pool2d(x3, 2, {.stride = 1, .dilation = 2}), {1, 1, 1, 1}, {9});
    // 5×5 of 1..25, 2×2 stride 2: floor gives 2×2 windows at 0 and 2; ceil_mode adds the windows starting at 4
    // (inside the input), clipped to row/column 4: maxima 10 (rows 0..1, col 4), 20, 22, 24, 25.
    Tensor x5 = iota({1, 1, 5, 5}, dt);
    check_values(F::max_pool2d(x5, 2), {1, 1, 2, 2}, {7, 9, 17, 19});
    check_values(F::max_pool2d(x5, 2, {.ceil_mode = true}), {1, 1, 3, 3}, {7, 9, 10, 17, 19, 20, 22, 24, 25});
    // Unbatched C×H×W.
    check_values(F::max_pool2d(iota({1, 4, 4}, dt), 2), {1, 2, 2}, {6, 8, 14, 16});
  }
}

TEST_CASE("pooling: a stride given as a braced pair, a single size or nothing (the kernel)") {
  // 1×1×3×4 of 1..12, 2×2 windows. Stride {1, 2}: rows start at 0 and 1, columns at 0 and 2:
  // maxima 6, 8 (rows 0..1) and 10, 12 (rows 1..2).
  Tensor x = iota({1, 1, 3, 4}, kFloat64);
  const Pool2dArgs pair{.stride = {1, 2}};
  check_values(F::max_pool2d(x, 2, pair), {1, 1, 2, 2}, {6, 8, 10, 12});
  const int sh = 1, sw = 2;  // int variables: no narrowing error
  check_values(F::max_pool2d(x, 2, {.stride = {sh, sw}}), {1, 1, 2, 2}, {6, 8, 10, 12});
  // Stride 1 everywhere: 2×3 windows.
  check_values(F::max_pool2d(x, 2, {.stride = 1}), {1, 1, 2, 3}, {6, 7, 8, 10, 11, 12});
  // No stride: the kernel's, 2: one row of windows, maxima 6 and 8.
  const Pool2dArgs none{};
  CHECK_FALSE(none.stride.has_value());
  check_values(F::max_pool2d(x, 2, none), {1, 1, 1, 2}, {6, 8});
  // avg_pool2d likewise: stride {1, 2} averages (1+2+5+6)/4 = 3.5, 5.5, 7.5, 9.5.
  check_values(F::avg_pool2d(x, 2, {.stride = {1, 2}}), {1, 1, 2, 2}, {3.5, 5.5, 7.5, 9.5});
  // The field is a std::optional<Size2>.
  const std::optional<Size2> as_optional = pair.stride;
  CHECK(as_optional == std::optional<Size2>(Size2{1, 2}));
}

TEST_CASE("max_pool2d: ceil_mode drops a last window that would start in the right padding") {
  // In 4, kernel 2, stride 2, padding 1, ceil: (4 + 2 - 2 + 1)/2 + 1 = 3; the 3rd window starts at 2·2 - 1 = 3 < 4 + 1:
  // kept (PyTorch's test (3 - 1)·2 >= 4 + 1 fails). In 5, kernel 3, stride 3, padding 1, ceil: (5 + 2 - 3 + 2)/3 + 1 = 3,
  // but the 3rd window would start at 2·3 - 1 = 5, in the right padding ((3 - 1)·3 >= 5 + 1): dropped, 2.
  CHECK(F::max_pool2d(zeros({1, 1, 4, 4}), 2, {.padding = 1, .ceil_mode = true}).shape() == Shape{1, 1, 3, 3});
  CHECK(F::max_pool2d(zeros({1, 1, 5, 5}), 3, {.padding = 1, .ceil_mode = true}).shape() == Shape{1, 1, 2, 2});
  // In 6, kernel 2, stride 5, no padding: floor (4/5)+1 = 1; ceil (4+4)/5 + 1 = 2, and the 2nd window starts at 5 < 6: 2.
  CHECK(F::max_pool2d(zeros({1, 1, 6, 6}), 2, {.stride = 5, .ceil_mode = true}).shape() == Shape{1, 1, 2, 2});
  // In 5, kernel 2, stride 4, padding 1, ceil: (5 + 2 - 2 + 3)/4 + 1 = 3, but the 3rd window starts at 8 - 1 = 7 >= 5 + 1:
  // dropped, 2.
  CHECK(F::max_pool2d(zeros({1, 1, 5, 5}), 2, {.stride = 4, .padding = 1, .ceil_mode = true}).shape() == Shape{1, 1, 2, 2});
}

TEST_CASE("max_pool2d: the gradient goes to each window's argmax, overlapping windows add up") {
  // 3×3 of 1..9 with stride 1: argmaxes 5, 6, 8, 9 (flat 4, 5, 7, 8).
  Tensor x = iota({1, 1, 3, 3});
  x.requires_grad_();
  F::max_pool2d(x, 2, {.stride = 1}).sum().backward();
  check_values(x.grad(), {1, 1, 3, 3}, {0, 0, 0, 0, 1, 1, 0, 1, 1});
  // A constant input: the first element of each window wins (strict >), as PyTorch.
  Tensor c = ones({1, 1, 3, 3}, kFloat64);
  c.requires_grad_();
  F::max_pool2d(c, 2, {.stride = 1}).sum().backward();
  check_values(c.grad(), {1, 1, 3, 3}, {1, 1, 0, 1, 1, 0, 0, 0, 0});
  // 4×4, 3×3 windows, stride 1: the centre 11 (flat 10) and 16 win... values 1..16: window maxima at its
  // bottom-right: 11, 12, 15, 16.
  Tensor y = iota({1, 1, 4, 4});
  y.requires_grad_();
  F::max_pool2d(y, 3, {.stride = 1}).sum().backward();
  check_values(y.grad(), {1, 1, 4, 4}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1});
}

TEST_CASE("avg_pool2d: values by hand for padding, count_include_pad and ceil_mode") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    // 4×4 of 1..16, 2×2: (1+2+5+6)/4 = 3.5, (3+4+7+8)/4 = 5.5, 11.5, 13.5.
    check_values(F::avg_pool2d(iota({1, 1, 4, 4}, dt), 2), {1, 1, 2, 2}, {3.5, 5.5, 11.5, 13.5});
    Tensor x3 = iota({1, 1, 3, 3}, dt);
    // Padding 1: windows (-1..0)²: 1; (-1..0, 1..2): 2+3; (1..2, -1..0): 4+7; (1..2)²: 5+6+8+9.
    // count_include_pad divides by 4 always: 0.25, 1.25, 2.75, 7. Without: by the real cells 1, 2, 2, 4.
    check_values(F::avg_pool2d(x3, 2, {.padding = 1}), {1, 1, 2, 2}, {0.25, 1.25, 2.75, 7});
    check_values(F::avg_pool2d(x3, 2, {.padding = 1, .count_include_pad = false}), {1, 1, 2, 2}, {1, 2.5, 5.5, 7});
    // 5×5 of 1..25, ceil_mode: the last windows (start 4) hold one row/column; PyTorch's divisor is the window clipped
    // to the input plus padding (0 here): (5+10)/2 = 7.5 at (0, 2), (21+22)/2 = 21.5 at (2, 0), 25 at (2, 2).
    check_values(F::avg_pool2d(iota({1, 1, 5, 5}, dt), 2, {.ceil_mode = true}), {1, 1, 3, 3},
                 {4, 6, 7.5, 14, 16, 17.5, 21.5, 23.5, 25});
    // Stride 1, kernel 3 on 3×3: one window, the mean 5.
    check_values(F::avg_pool2d(iota({1, 3, 3}, dt), 3, {.stride = 1}), {1, 1, 1}, {5});
  }
}

TEST_CASE("adaptive_avg_pool2d: PyTorch's windows for non-divisible sizes") {
  // In 5 -> out 3: windows [floor(0·5/3), ceil(1·5/3)) = [0, 2), [1, 4), [3, 5): means of 1..5 = 1.5, 3, 4.5.
  check_values(F::adaptive_avg_pool2d(iota({1, 1, 1, 5}), {1, 3}), {1, 1, 1, 3}, {1.5, 3, 4.5});
  // In 4 -> out 2 on 4×4 of 1..16 equals avg_pool2d with kernel 2.
  check_values(F::adaptive_avg_pool2d(iota({1, 1, 4, 4}), 2), {1, 1, 2, 2}, {3.5, 5.5, 11.5, 13.5});
  // Out 1: the global mean (1+...+9)/9 = 5; unbatched.
  check_values(F::adaptive_avg_pool2d(iota({1, 3, 3}), 1), {1, 1, 1}, {5});
  // In 2 -> out 3 (upsampling): windows [0,1), [0,2), [1,2) -> 1, 1.5, 2.
  check_values(F::adaptive_avg_pool2d(iota({1, 1, 1, 2}), {1, 3}), {1, 1, 1, 3}, {1, 1.5, 2});
}

TEST_CASE("pooling: 0-element batches") {
  Tensor x = zeros({0, 3, 4, 4}, kFloat64);
  x.requires_grad_();
  Tensor y = F::max_pool2d(x, 2) + F::avg_pool2d(x, 2) + F::adaptive_avg_pool2d(x, 2);
  REQUIRE(y.shape() == Shape{0, 3, 2, 2});
  y.sum().backward();
  CHECK(x.grad().shape() == Shape{0, 3, 4, 4});
}

TEST_CASE("pooling errors name the op and the shapes") {
  check_error([] { F::max_pool2d(zeros({4, 4}), 2); }, {"max_pool2d", "3-D (unbatched) or 4-D", "[4, 4]"});
  check_error([] { F::avg_pool2d(zeros({1, 1, 1, 4, 4}), 2); }, {"avg_pool2d", "[1, 1, 1, 4, 4]"});
  check_error([] { F::adaptive_avg_pool2d(zeros({4}), 2); }, {"adaptive_avg_pool2d", "[4]"});
  check_error([] { F::max_pool2d(zeros({1, 1, 2, 2}), 3); }, {"max_pool2d", "larger than the padded input", "[1, 1, 2, 2]"});
  check_error([] { F::max_pool2d(zeros({1, 1, 4, 4}), 2, {.padding = 2}); }, {"max_pool2d", "padding 2", "half the kernel size 2"});
  check_error([] { F::avg_pool2d(zeros({1, 1, 4, 4}), 0); }, {"avg_pool2d", "positive"});
  check_error([] { F::adaptive_avg_pool2d(zeros({1, 1, 4, 4}), {0, 2}); }, {"adaptive_avg_pool2d", "(0, 2)"});
  // Absurd sizes are errors before anything is allocated.
  check_error([] { F::adaptive_avg_pool2d(zeros({1, 1, 4, 4}), {std::size_t{1} << 40, 2}); }, {"adaptive_avg_pool2d", "too large"});
  check_error([] { F::max_pool2d(zeros({1, 1, 4, 4}), 2, {.stride = Size2(std::size_t{1} << 50)}); }, {"max_pool2d", "stride", "too large"});
}

// The 2×2, stride-2 kernel runs 8 windows at a time (AVX2), 4 at a time for rows of 4 to 7 windows,
// one at a time below: every row length from 1 to 17 windows, an odd last row and column (dropped),
// many ties, NaNs and signed zeros, float32, against PyTorch's rule written out: scan the window
// row-major, take a value if it is greater than the best so far or NaN (the first of equal values
// wins, the last NaN wins). The gradient of sum(out ⊙ G) puts G at each window's argmax.
TEST_CASE("max_pool2d: the vectorised 2x2 kernel follows the scalar rule for ties, NaNs and every row length") {
  std::mt19937 rng(17);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float pool[] = {-1.0f, 0.0f, -0.0f, 1.0f, 2.0f, 2.0f, nan};
  for (std::size_t w = 2; w <= 35; ++w) {
    CAPTURE(w);
    const std::size_t h = 5, ow = w / 2, oh = h / 2, planes = 2;
    std::vector<float> xv(planes * h * w);
    for (float& v : xv) v = pool[rng() % 7];
    xt::xarray<float> xa = xt::adapt(xv, std::vector<std::size_t>{1, planes, h, w});
    Tensor x = tensor(xa);
    x.requires_grad_();
    Tensor out = F::max_pool2d(x, 2);
    REQUIRE(out.shape() == Shape{1, planes, oh, ow});
    Tensor G = (arange(static_cast<std::int64_t>(planes * oh * ow), kFloat32) + 1.0).reshape({1, static_cast<std::int64_t>(planes),
                                                                                              static_cast<std::int64_t>(oh), static_cast<std::int64_t>(ow)});
    (out * G).sum().backward();
    const xt::xarray<float> o = out.detach().data<float>();
    const xt::xarray<float> gx = x.grad().data<float>();
    std::vector<float> expected_grad(xv.size(), 0.0f);
    for (std::size_t p = 0; p < planes; ++p)
      for (std::size_t i = 0; i < oh; ++i)
        for (std::size_t j = 0; j < ow; ++j) {
          std::size_t arg = (p * h + 2 * i) * w + 2 * j;
          for (std::size_t k : {(p * h + 2 * i) * w + 2 * j + 1, (p * h + 2 * i + 1) * w + 2 * j, (p * h + 2 * i + 1) * w + 2 * j + 1})
            if (xv[k] > xv[arg] || std::isnan(xv[k])) arg = k;
          const float got = o.data()[(p * oh + i) * ow + j];
          CAPTURE(i);
          CAPTURE(j);
          if (std::isnan(xv[arg])) {
            CHECK(std::isnan(got));
          } else {
            CHECK(got == xv[arg]);
            CHECK(std::signbit(got) == std::signbit(xv[arg]));
          }
          expected_grad[arg] += static_cast<float>((p * oh + i) * ow + j + 1);
        }
    for (std::size_t k = 0; k < xv.size(); ++k) {
      CAPTURE(k);
      CHECK(gx.data()[k] == expected_grad[k]);
    }
  }
}
