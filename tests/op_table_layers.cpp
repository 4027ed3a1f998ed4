// Op table: the layer ops of autograd/layer_ops.hpp (re-exported by nn::functional): convolution,
// pad, unfold/fold, pooling, normalisation, embedding and the smooth activations. Samples cover
// stride, padding (ints, pairs, 'same'), dilation, groups (depthwise included), ceil_mode,
// count_include_pad, unbatched inputs, and the kernels' special paths (1×1 convolution, 2×2 max
// pooling, disjoint and overlapping pooling windows).
#include "op_table.hpp"

namespace xgrad::test::optable {

namespace {

namespace F = nn::functional;
using V = std::vector<Tensor>;

Tensor e(const Shape& s) { return zeros(s, kFloat64); }

// Distinct values at least 2/n apart, in [-1, 1): max pooling needs no near-ties, or finite
// differences would step across a change of argmax.
Tensor distinct(const Shape& shape) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  Tensor t = randperm(n, kFloat64) * (2.0 / static_cast<double>(n)) - 1.0;
  return t.reshape(std::vector<std::int64_t>(shape.begin(), shape.end())).detach();
}

OpFn conv2(Conv2dArgs a, bool bias) {
  return [a, bias](const V& v) { return F::conv2d(v[0], v[1], bias ? v[2] : Tensor(), a); };
}
OpFn conv1(Conv1dArgs a, bool bias) {
  return [a, bias](const V& v) { return F::conv1d(v[0], v[1], bias ? v[2] : Tensor(), a); };
}
OpFn maxpool(Size2 k, Pool2dArgs a = {}) {
  return [k, a](const V& v) { return F::max_pool2d(v[0], k, a); };
}
OpFn avgpool(Size2 k, AvgPool2dArgs a = {}) {
  return [k, a](const V& v) { return F::avg_pool2d(v[0], k, a); };
}

const char* kTies = "equal values in a window: the argmax (the first one) is a kink";

void add_conv_ops(std::vector<OpInfo>& table) {
  table.push_back(
      {"conv2d(Tensor, Tensor, Tensor, Conv2dArgs)", "conv2d", conv2({}, true),
       {{"basic [2,2,4,4] * [3,2,3,3] + bias", {normal({2, 2, 4, 4}), normal({3, 2, 3, 3}), normal({3})}},
        {"stride 2 padding 1", {normal({1, 2, 5, 5}), normal({2, 2, 3, 3}), normal({2})}, conv2({.stride = 2, .padding = 1}, true)},
        {"stride (1, 2) padding (2, 0)", {normal({2, 1, 4, 6}), normal({2, 1, 3, 2}), normal({2})},
         conv2({.stride = {1, 2}, .padding = {2, 0}}, true)},
        {"dilation 2 padding (1, 2), no bias", {normal({1, 1, 5, 6}), normal({2, 1, 2, 3})},
         conv2({.padding = {1, 2}, .dilation = 2}, false)},
        {"groups 2", {normal({1, 4, 4, 4}), normal({4, 2, 3, 3}), normal({4})}, conv2({.padding = 1, .groups = 2}, true)},
        {"depthwise (groups 3, 2 outputs per group)", {normal({2, 3, 4, 4}), normal({6, 1, 3, 3})},
         conv2({.padding = 1, .groups = 3}, false)},
        {"1x1 (the columns are the input)", {normal({2, 3, 3, 3}), normal({2, 3, 1, 1}), normal({2})}},
        {"1x1 stride 2", {normal({2, 3, 5, 5}), normal({2, 3, 1, 1}), normal({2})}, conv2({.stride = 2}, true)},
        {"1x1 groups 3", {normal({1, 6, 2, 3}), normal({3, 2, 1, 1})}, conv2({.groups = 3}, false)},
        {"padding same, even kernel (explicit pad)", {normal({1, 2, 4, 4}), normal({2, 2, 2, 2})}, conv2({.padding = nn::same}, false)},
        {"padding same, dilation 2", {normal({1, 2, 5, 4}), normal({2, 2, 3, 3}), normal({2})},
         conv2({.padding = nn::same, .dilation = 2}, true)},
        {"unbatched, stride (2, 1)", {normal({2, 5, 4}), normal({3, 2, 2, 2}), normal({3})}, conv2({.stride = {2, 1}}, true)},
        {"kernel as large as the padded input", {normal({2, 1, 3, 3}), normal({2, 1, 5, 5}), normal({2})}, conv2({.padding = 1}, true)}},
       {{"batch of 0", {e({0, 2, 5, 5}), normal({3, 2, 3, 3}), normal({3})}, {0, 3, 5, 5}, {}, conv2({.padding = 1}, true)},
        {"batch of 0, 1x1", {e({0, 2, 3, 3}), normal({3, 2, 1, 1})}, {0, 3, 3, 3}, {}, conv2({}, false)},
        {"0 output channels", {normal({1, 2, 4, 4}), e({0, 2, 3, 3})}, {1, 0, 2, 2}, {}, conv2({}, false)}}});

  table.push_back(
      {"conv1d(Tensor, Tensor, Tensor, Conv1dArgs)", "conv1d", conv1({}, true),
       {{"basic", {normal({2, 2, 6}), normal({3, 2, 3}), normal({3})}},
        {"stride 2 padding 1 dilation 2", {normal({2, 2, 7}), normal({3, 2, 3}), normal({3})},
         conv1({.stride = 2, .padding = 1, .dilation = 2}, true)},
        {"groups 2, padding same, unbatched", {normal({4, 6}), normal({2, 2, 4})}, conv1({.padding = nn::same, .groups = 2}, false)},
        {"depthwise, kernel 1", {normal({2, 3, 5}), normal({3, 1, 1})}, conv1({.groups = 3}, false)}},
       {{"batch of 0", {e({0, 2, 7}), normal({3, 2, 3}), normal({3})}, {0, 3, 5}, {}, conv1({}, true)}}});

  const auto padf = [](std::vector<std::int64_t> p, PadMode m, double value = 0) {
    return [p, m, value](const V& v) { return F::pad(v[0], p, m, value); };
  };
  table.push_back({"pad(Tensor, std::vector<std::int64_t>, PadMode, double)", "pad",
                   padf({1, 2}, PadMode::Constant),
                   {{"constant (1, 2)", {normal({2, 3})}},
                    {"constant crop, value 0.5", {normal({2, 3, 3})}, padf({-1, 2, 1, 0}, PadMode::Constant, 0.5)},
                    {"reflect 2-d", {normal({1, 2, 3, 4})}, padf({2, 1, 1, 2}, PadMode::Reflect)},
                    {"replicate 1-d", {normal({2, 3})}, padf({1, 2}, PadMode::Replicate)},
                    {"circular 3-d", {normal({1, 2, 2, 3})}, padf({1, 1, 2, 0, 1, 1}, PadMode::Circular)}},
                   {{"[0,3] constant", {e({0, 3})}, {0, 6}, {}, padf({1, 2}, PadMode::Constant)},
                    {"[0,2,3] reflect", {e({0, 2, 3})}, {0, 2, 5}, {}, padf({1, 1}, PadMode::Reflect)}}});

  const auto unfoldf = [](Size2 k, UnfoldArgs a) { return [k, a](const V& v) { return F::unfold(v[0], k, a); }; };
  table.push_back({"unfold(Tensor, Size2, UnfoldArgs)", "unfold", unfoldf(2, {}),
                   {{"kernel 2", {normal({2, 2, 3, 4})}},
                    {"kernel (2, 3) dilation (2, 1) padding 1 stride (1, 2)", {normal({2, 2, 4, 5})},
                     unfoldf({2, 3}, {.dilation = {2, 1}, .padding = 1, .stride = {1, 2}})},
                    {"unbatched", {normal({2, 3, 3})}, unfoldf(3, {.padding = 1, .stride = 2})}},
                   {{"batch of 0", {e({0, 2, 4, 4})}, {0, 8, 9}, {}, unfoldf(2, {})}}});

  const auto foldf = [](Size2 out, Size2 k, UnfoldArgs a) {
    return [out, k, a](const V& v) { return F::fold(v[0], out, k, a); };
  };
  table.push_back({"fold(Tensor, Size2, Size2, UnfoldArgs)", "fold", foldf({3, 3}, 2, {}),
                   {{"3x3 from kernel 2", {normal({2, 8, 4})}},
                    {"(4, 5) padding 1 stride 2", {normal({2, 8, 9})}, foldf({4, 5}, 2, {.padding = 1, .stride = 2})},
                    {"unbatched, dilation 2", {normal({4, 4})}, foldf({4, 4}, 2, {.dilation = 2})}},
                   {{"batch of 0", {e({0, 8, 4})}, {0, 2, 3, 3}, {}, foldf({3, 3}, 2, {})}}});
}

void add_pool_ops(std::vector<OpInfo>& table) {
  table.push_back(
      {"max_pool2d(Tensor, Size2, Pool2dArgs)", "max_pool2d", maxpool(2),
       {{"2x2 (its own kernel, disjoint windows)", {distinct({2, 2, 4, 4})}},
        {"2x2 on 5x5 (a row and a column left out)", {distinct({1, 2, 5, 5})}},
        {"2x2 ceil_mode on 5x5 (clipped last windows)", {distinct({1, 2, 5, 5})}, maxpool(2, {.ceil_mode = true})},
        {"3x3 stride 3 (disjoint, general loop)", {distinct({1, 2, 6, 7})}, maxpool(3)},
        {"stride 3 kernel 2 (gaps between windows)", {distinct({1, 1, 7, 8})}, maxpool(2, {.stride = 3})},
        {"3x3 stride 1 padding 1 (overlapping)", {distinct({1, 2, 4, 5})}, maxpool(3, {.stride = 1, .padding = 1})},
        {"(2, 3) stride 2 dilation 2 ceil_mode", {distinct({1, 1, 7, 8})},
         maxpool({2, 3}, {.stride = 2, .dilation = 2, .ceil_mode = true})},
        {"unbatched, stride {1, 2}", {distinct({2, 3, 4})}, maxpool(2, {.stride = {1, 2}})},
        {"edge: ties and -inf", {values({1, 1, 2, 4}, {1, 1, -INFINITY, -INFINITY, 1, 0, -INFINITY, -INFINITY})}, {},
         at_kink(kTies)},
        {"edge: ties, overlapping windows", {values({1, 1, 3, 3}, {2, 2, 2, 2, 2, 2, 0, 1, 2})},
         maxpool(2, {.stride = 1}), at_kink(kTies)}},
       {{"batch of 0", {e({0, 3, 4, 4})}, {0, 3, 2, 2}},
        {"batch of 0, overlapping", {e({0, 3, 4, 4})}, {0, 3, 4, 4}, {}, maxpool(3, {.stride = 1, .padding = 1})}}});

  table.push_back(
      {"avg_pool2d(Tensor, Size2, AvgPool2dArgs)", "avg_pool2d", avgpool(2),
       {{"2x2", {normal({2, 2, 4, 4})}},
        {"3x3 stride 2 padding 1 ceil_mode, padding not counted", {normal({1, 2, 6, 5})},
         avgpool(3, {.stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false})},
        {"3x3 stride 2 padding 1, padding counted", {normal({1, 2, 5, 5})}, avgpool(3, {.stride = 2, .padding = 1})},
        {"unbatched (2, 1) stride 1 padding (1, 0)", {normal({2, 3, 3})}, avgpool({2, 1}, {.stride = 1, .padding = {1, 0}})}},
       {{"batch of 0", {e({0, 3, 4, 4})}, {0, 3, 2, 2}}}});

  const auto adaptive = [](Size2 out) { return [out](const V& v) { return F::adaptive_avg_pool2d(v[0], out); }; };
  table.push_back({"adaptive_avg_pool2d(Tensor, Size2)", "adaptive_avg_pool2d", adaptive({3, 2}),
                   {{"5x7 to 3x2 (uneven windows)", {normal({2, 2, 5, 7})}},
                    {"unbatched, to 1 (global mean)", {normal({3, 4, 4})}, adaptive(1)},
                    {"2 to 3 (upsampling, overlapping windows)", {normal({1, 2, 2, 2})}, adaptive(3)}},
                   {{"batch of 0", {e({0, 3, 4, 4})}, {0, 3, 3, 2}}}});
}

void add_norm_ops(std::vector<OpInfo>& table) {
  // Inputs: x, weight, bias, running_mean, running_var (the last two take no gradient).
  const auto bn = [](bool training, bool affine, bool running) {
    return [=](const V& v) {
      return F::batch_norm(v[0], running ? v[3] : Tensor(), running ? v[4] : Tensor(), affine ? v[1] : Tensor(),
                           affine ? v[2] : Tensor(), training, 0.1, 1e-5);
    };
  };
  const auto stats = [](std::size_t c) { return std::vector<Tensor>{normal({c}) * 0.3, positive({c})}; };
  auto with = [](std::vector<Tensor> a, const std::vector<Tensor>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  OpInfo batch_norm_op{
      "batch_norm(Tensor, Tensor, Tensor, Tensor, Tensor, bool, double, double)", "batch_norm", bn(true, true, false),
      {{"training [4,3]", {normal({4, 3}), normal({3}), normal({3})}},
       {"training [2,3,2,2]", {normal({2, 3, 2, 2}), normal({3}), normal({3})}},
       {"training, no affine, [2,3,3]", {normal({2, 3, 3})}, bn(true, false, false)},
       {"training with running statistics [3,2,4]", with({normal({3, 2, 4}), normal({2}), normal({2})}, stats(2)),
        bn(true, true, true)},
       {"eval with running statistics [2,3,2]", with({normal({2, 3, 2}), normal({3}), normal({3})}, stats(3)),
        bn(false, true, true)}},
      {{"training, batch of 0", {e({0, 3}), normal({3}), normal({3})}, {0, 3}},
       {"eval, batch of 0", with({e({0, 3, 2}), normal({3}), normal({3})}, stats(3)), {0, 3, 2}, {}, bn(false, true, true)}}};
  batch_norm_op.nondiff_inputs = {3, 4};
  table.push_back(std::move(batch_norm_op));

  const auto ln = [](std::vector<std::size_t> shape, bool affine) {
    return [shape, affine](const V& v) {
      return F::layer_norm(v[0], shape, affine ? v[1] : Tensor(), affine ? v[2] : Tensor());
    };
  };
  table.push_back({"layer_norm(Tensor, std::vector<std::size_t>, Tensor, Tensor, double)", "layer_norm", ln({4}, true),
                   {{"[3,4] over the last dim", {normal({3, 4}), normal({4}), normal({4})}},
                    {"[2,2,3] over the last 2 dims, no affine", {normal({2, 2, 3})}, ln({2, 3}, false)},
                    {"[2,3] over every dim", {normal({2, 3}), normal({2, 3}), normal({2, 3})}, ln({2, 3}, true)},
                    {"[2,3,9] (long rows)", {normal({2, 3, 9}), normal({9}), normal({9})}, ln({9}, true)}},
                   {{"[0,4]", {e({0, 4}), normal({4}), normal({4})}, {0, 4}}}});

  const auto gn = [](std::size_t groups, bool affine) {
    return [groups, affine](const V& v) {
      return F::group_norm(v[0], groups, affine ? v[1] : Tensor(), affine ? v[2] : Tensor());
    };
  };
  table.push_back({"group_norm(Tensor, std::size_t, Tensor, Tensor, double)", "group_norm", gn(2, true),
                   {{"[2,4,3] in 2 groups", {normal({2, 4, 3}), normal({4}), normal({4})}},
                    {"[2,2,2,2] in 1 group, no affine", {normal({2, 2, 2, 2})}, gn(1, false)},
                    {"[1,6,2,2] in 6 groups (one channel each)", {normal({1, 6, 2, 2}), normal({6}), normal({6})}, gn(6, true)},
                    {"[3,4] (no spatial dims)", {normal({3, 4}), normal({4}), normal({4})}, gn(2, true)}},
                   {{"batch of 0", {e({0, 4, 3}), normal({4}), normal({4})}, {0, 4, 3}}}});
}

void add_embedding_and_activations(std::vector<OpInfo>& table) {
  // Inputs: indices (integral values, no gradient), weight.
  const auto emb = [](std::optional<std::int64_t> padding_idx) {
    return [padding_idx](const V& v) { return F::embedding(v[0], v[1], padding_idx); };
  };
  OpInfo embedding_op{"embedding(Tensor, Tensor, std::optional<std::int64_t>)", "embedding", emb(std::nullopt),
                      {{"[2,3] indices into 4x3", {values({2, 3}, {0, 3, 1, 3, 3, 2}), normal({4, 3})}},
                       {"0-d index", {values({}, {1}), normal({3, 2})}},
                       // The padding row gets no gradient by design: here it is a constant, appended to
                       // the weight inside the call, so finite differences do not see it move.
                       {"padding_idx 3",
                        {values({2, 3}, {0, 3, 1, 3, 3, 2}), normal({3, 3})},
                        [](const V& v) {
                          Tensor w = cat({v[1], full({1, 3}, 0.5, v[1].dtype())}, 0);
                          return F::embedding(v[0], w, 3);
                        }}},
                      {{"no indices", {e({0}), normal({4, 3})}, {0, 3}}, {"[2,0] indices", {e({2, 0}), normal({4, 3})}, {2, 0, 3}}}};
  embedding_op.nondiff_inputs = {0};
  embedding_op.skip[Check::DtypeMismatch] =
      "the indices are positions, not values: either float dtype is accepted (PyTorch takes any integer dtype)";
  table.push_back(std::move(embedding_op));

  const std::vector<EmptySample> unary_empty{{"[0,3]", {e({0, 3})}, {0, 3}}, {"[2,0,1]", {e({2, 0, 1})}, {2, 0, 1}}};
  const auto unary_samples = [](Tensor (*make)(const Shape&)) {
    return std::vector<Sample>{{"[3,4]", {make({3, 4})}}, {"0-d", {make({})}}, {"[5,7]", {make({5, 7})}}};
  };
  const auto gelu = [](GeluApproximate a) { return [a](const V& v) { return F::gelu(v[0], a); }; };
  {
    OpInfo op{"gelu(Tensor, GeluApproximate)", "gelu", gelu(GeluApproximate::None), unary_samples(normal), unary_empty};
    op.samples.push_back({"tanh approximation", {normal({3, 4})}, gelu(GeluApproximate::Tanh)});
    op.samples.push_back({"edge: large magnitudes", {values({4}, {-30, -6, 6, 30})}});
    table.push_back(std::move(op));
  }
  table.push_back({"silu(Tensor)", "silu", [](const V& v) { return F::silu(v[0]); }, unary_samples(normal), unary_empty});
  table.back().samples.push_back({"edge: large magnitudes", {values({4}, {-40, -8, 8, 40})}});
  {
    const auto elu = [](double alpha) { return [alpha](const V& v) { return F::elu(v[0], alpha); }; };
    const auto off_zero = [](const Shape& s) { return away_from(s, 0.0); };
    OpInfo op{"elu(Tensor, double)", "elu", elu(1.0), {}, unary_empty};
    op.samples = {{"[3,4]", {off_zero({3, 4})}}, {"alpha 1.5", {off_zero({3, 4})}, elu(1.5)}, {"0-d", {off_zero({})}}};
    op.samples.push_back({"edge: 0 (a kink for alpha != 1)", {values({3}, {0, -0.0, 1})}, elu(1.5), at_kink()});
    table.push_back(std::move(op));
  }
  {
    const auto softplus = [](double beta, double threshold) {
      return [beta, threshold](const V& v) { return F::softplus(v[0], beta, threshold); };
    };
    OpInfo op{"softplus(Tensor, double, double)", "softplus", softplus(1, 20), unary_samples(normal), unary_empty};
    // beta 2, threshold 1: the switch to x itself sits at x = 0.5; samples stay clear of it.
    op.samples.push_back({"beta 2 threshold 1", {values({4}, {-1, 0.2, 0.8, 2})}, softplus(2, 1)});
    op.samples.push_back({"edge: beyond the default threshold", {values({3}, {25, 30, -25})}});
    table.push_back(std::move(op));
  }
  table.push_back({"erf(Tensor)", "erf", [](const V& v) { return xgrad::erf(v[0]); }, unary_samples(normal), unary_empty});
  table.back().samples.push_back({"edge: saturated", {values({4}, {-6, -3, 3, 6})}});
  table.push_back({"log1p(Tensor)", "log1p", [](const V& v) { return xgrad::log1p(v[0]); },
                   unary_samples([](const Shape& s) { return positive(s, -0.5, 2); }), unary_empty});
  table.back().samples.push_back({"edge: tiny values (where log(1 + x) would round)", {values({3}, {1e-12, -1e-9, 1e-5})}});
  table.push_back({"expm1(Tensor)", "expm1", [](const V& v) { return xgrad::expm1(v[0]); }, unary_samples(normal), unary_empty});
  table.back().samples.push_back({"edge: tiny and large", {values({4}, {1e-12, -1e-9, 10, -30})}});
}

}  // namespace

void add_layer_ops(std::vector<OpInfo>& table) {
  add_conv_ops(table);
  add_pool_ops(table);
  add_norm_ops(table);
  add_embedding_and_activations(table);
}

}  // namespace xgrad::test::optable
