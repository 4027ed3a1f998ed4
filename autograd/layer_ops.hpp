// The ops behind convolutional and normalised networks: convolution, padding, im2col/col2im,
// pooling, normalisation, embedding and the smooth activations. Layouts and semantics as PyTorch:
// N×C×L (1-d), N×C×H×W (2-d), an unbatched C×L / C×H×W accepted. nn::functional re-exports these
// under the names of API.md (nn::functional::conv2d, nn::Size2, nn::same, ...); autograd/ knows
// nothing of nn, so the types live here.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "tensor.hpp"

namespace xgrad {

// {h, w}; one size means both. Built implicitly from one size or a braced pair of any integer type
// (`2`, `{1, 2}`, `{h, w}` with int variables: the templates take them without a narrowing error).
struct Size2 {
  std::size_t h = 0, w = 0;
  Size2() = default;
  Size2(std::size_t both) : h(both), w(both) {}  // NOLINT: implicit by design (API.md)
  Size2(std::size_t h_, std::size_t w_) : h(h_), w(w_) {}
  template <std::integral I>
    requires(!std::same_as<I, std::size_t>)
  Size2(I both) : Size2(static_cast<std::size_t>(both)) {}  // NOLINT
  template <std::integral I, std::integral J>
    requires(!std::same_as<I, std::size_t> || !std::same_as<J, std::size_t>)
  Size2(I h_, J w_) : Size2(static_cast<std::size_t>(h_), static_cast<std::size_t>(w_)) {}
  bool operator==(const Size2&) const = default;
};

// A pooling stride: std::optional<Size2> (absent: the kernel size) that also takes a braced pair,
// so `Pool2dArgs{.stride = {1, 2}}` works as `.stride = 2` and `.stride = std::nullopt` do.
struct OptionalSize2 : std::optional<Size2> {
  using std::optional<Size2>::optional;
  OptionalSize2() = default;
  OptionalSize2(Size2 s) : std::optional<Size2>(s) {}  // NOLINT
  template <std::integral I, std::integral J>
  OptionalSize2(I h, J w) : std::optional<Size2>(Size2(h, w)) {}  // NOLINT
};

// nn::same: output size equal to the input size (stride 1 only, as PyTorch).
struct SamePadding {};
inline constexpr SamePadding same{};

struct Padding1 {
  std::size_t size = 0;
  bool is_same = false;
  Padding1(std::size_t s) : size(s) {}  // NOLINT
  Padding1(SamePadding) : is_same(true) {}  // NOLINT
};

struct Padding2 {
  Size2 size{0};
  bool is_same = false;
  Padding2(std::size_t s) : size(s) {}  // NOLINT
  Padding2(Size2 s) : size(s) {}  // NOLINT
  Padding2(std::size_t h, std::size_t w) : size(h, w) {}
  Padding2(SamePadding) : is_same(true) {}  // NOLINT
};

enum class PadMode { Constant, Reflect, Replicate, Circular };
enum class GeluApproximate { None, Tanh };

struct Conv1dArgs {
  std::size_t stride = 1;
  Padding1 padding = 0;
  std::size_t dilation = 1;
  std::size_t groups = 1;
};
struct Conv2dArgs {
  Size2 stride = 1;
  Padding2 padding = 0;
  Size2 dilation = 1;
  std::size_t groups = 1;
};
struct Pool2dArgs {
  OptionalSize2 stride = std::nullopt;  // std::optional<Size2>; absent: the kernel size
  Size2 padding = 0;
  Size2 dilation = 1;
  bool ceil_mode = false;
};
struct AvgPool2dArgs {
  OptionalSize2 stride = std::nullopt;  // std::optional<Size2>; absent: the kernel size
  Size2 padding = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;
};
struct UnfoldArgs {
  Size2 dilation = 1;
  Size2 padding = 0;
  Size2 stride = 1;
};

// ---- Convolution and im2col ---------------------------------------------------------------------
// input N×C×L (or C×L), weight O×(C/groups)×K, bias O or undefined.
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, const Conv1dArgs& args = {});
// input N×C×H×W (or C×H×W), weight O×(C/groups)×kH×kW, bias O or undefined.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, const Conv2dArgs& args = {});
// F.pad: `pad` holds (before, after) pairs starting from the last dim; negative values crop
// (constant mode). Reflect/Replicate/Circular pad the last 1-3 dims.
Tensor pad(const Tensor& input, const std::vector<std::int64_t>& pad, PadMode mode = PadMode::Constant,
           double value = 0);
// F.unfold: N×C×H×W (or C×H×W) -> N×(C·kH·kW)×L, L the number of kernel positions.
Tensor unfold(const Tensor& input, Size2 kernel, const UnfoldArgs& args = {});
// F.fold: the adjoint of unfold, N×(C·kH·kW)×L -> N×C×H×W (overlaps add up).
Tensor fold(const Tensor& input, Size2 output_size, Size2 kernel, const UnfoldArgs& args = {});

// ---- Pooling ---------------------------------------------------------------------------------------
Tensor max_pool2d(const Tensor& input, Size2 kernel, const Pool2dArgs& args = {});
Tensor avg_pool2d(const Tensor& input, Size2 kernel, const AvgPool2dArgs& args = {});
// PyTorch's windows: start = floor(i·In/Out), end = ceil((i+1)·In/Out).
Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size);

// ---- Normalisation ---------------------------------------------------------------------------------
// input N×C×* (or N×C). Training: batch statistics, and the running ones (when defined) updated in
// place: r = (1-momentum)·r + momentum·batch, with the unbiased batch variance. Eval: running ones.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                  double momentum = 0.1, double eps = 1e-5);
Tensor layer_norm(const Tensor& input, const std::vector<std::size_t>& normalized_shape,
                  const Tensor& weight = {}, const Tensor& bias = {}, double eps = 1e-5);
Tensor group_norm(const Tensor& input, std::size_t num_groups, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// ---- Embedding -------------------------------------------------------------------------------------
// weight[indices]: indices of any shape holding integral values (float tensor), output
// indices.shape ++ [embedding_dim]. The row padding_idx receives no gradient.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx = std::nullopt);

// ---- Activations and special functions ---------------------------------------------------------------
Tensor gelu(const Tensor& input, GeluApproximate approximate = GeluApproximate::None);
Tensor silu(const Tensor& input);
Tensor elu(const Tensor& input, double alpha = 1);
// log(1 + exp(beta·x)) / beta, and x itself where beta·x > threshold.
Tensor softplus(const Tensor& input, double beta = 1, double threshold = 20);
Tensor erf(const Tensor& input);
Tensor log1p(const Tensor& input);
Tensor expm1(const Tensor& input);

}  // namespace xgrad
