#include "conv.hpp"

#include <cmath>

#include "init.hpp"

namespace xgrad::nn {

namespace {

void check_channels(const char* layer, std::size_t in, std::size_t out, std::size_t groups) {
  if (in == 0 || out == 0) detail::fail(layer, "(in_channels=", in, ", out_channels=", out, "): channels must be positive");
  if (groups == 0 || in % groups != 0 || out % groups != 0)
    detail::fail(layer, "(in_channels=", in, ", out_channels=", out, ", groups=", groups,
                 "): both channel counts must be divisible by groups");
}

void default_init(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double fan_in = static_cast<double>(init::calculate_fan_in_and_fan_out(weight).first);
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

const char* mode_str(functional::PadMode m) {
  switch (m) {
    case functional::PadMode::Constant: return "zeros";
    case functional::PadMode::Reflect: return "reflect";
    case functional::PadMode::Replicate: return "replicate";
    case functional::PadMode::Circular: return "circular";
  }
  return "?";
}

// The (before, after) padding of one dim for a non-zero padding_mode: the given size on both sides, or
// PyTorch's 'same' split (total d·(k-1), the odd element after).
std::pair<std::int64_t, std::int64_t> mode_padding(bool same, std::size_t size, std::size_t dilation, std::size_t kernel) {
  if (!same) return {static_cast<std::int64_t>(size), static_cast<std::int64_t>(size)};
  const auto total = static_cast<std::int64_t>(dilation * (kernel - 1));
  return {total / 2, total - total / 2};
}

}  // namespace

Conv1d::Conv1d(std::size_t in, std::size_t out, std::size_t kernel, Conv1dOptions o)
    : in_channels(in), out_channels(out), kernel_size(kernel), options(o) {
  check_channels("Conv1d", in, out, o.groups);
  if (kernel == 0) detail::fail("Conv1d: kernel_size must be positive");
  if (o.padding.is_same && o.stride != 1) detail::fail("Conv1d: padding 'same' needs stride 1, got stride ", o.stride);
  weight = register_parameter("weight", empty({out, in / o.groups, kernel}));
  if (o.bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Conv1d::reset_parameters() { default_init(weight, bias); }

Tensor Conv1d::forward(const Tensor& input) {
  if (options.padding_mode == functional::PadMode::Constant || (!options.padding.is_same && options.padding.size == 0))
    return functional::conv1d(input, weight, bias, {options.stride, options.padding, options.dilation, options.groups});
  const auto [lo, hi] = mode_padding(options.padding.is_same, options.padding.size, options.dilation, kernel_size);
  return functional::conv1d(functional::pad(input, {lo, hi}, options.padding_mode), weight, bias,
                            {options.stride, 0, options.dilation, options.groups});
}

std::string Conv1d::extra_repr() const {
  std::string s = detail::concat(in_channels, ", ", out_channels, ", kernel_size=(", kernel_size, "), stride=(",
                                 options.stride, ")");
  if (options.padding.is_same) s += ", padding=same";
  else if (options.padding.size) s += detail::concat(", padding=(", options.padding.size, ")");
  if (options.dilation != 1) s += detail::concat(", dilation=(", options.dilation, ")");
  if (options.groups != 1) s += detail::concat(", groups=", options.groups);
  if (!options.bias) s += ", bias=false";
  if (options.padding_mode != functional::PadMode::Constant) s += detail::concat(", padding_mode=", mode_str(options.padding_mode));
  return s;
}

Conv2d::Conv2d(std::size_t in, std::size_t out, Size2 kernel, Conv2dOptions o)
    : in_channels(in), out_channels(out), kernel_size(kernel), options(o) {
  check_channels("Conv2d", in, out, o.groups);
  if (kernel.h == 0 || kernel.w == 0) detail::fail("Conv2d: kernel_size must be positive");
  if (o.padding.is_same && (o.stride.h != 1 || o.stride.w != 1))
    detail::fail("Conv2d: padding 'same' needs stride 1, got stride (", o.stride.h, ", ", o.stride.w, ")");
  weight = register_parameter("weight", empty({out, in / o.groups, kernel.h, kernel.w}));
  if (o.bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Conv2d::reset_parameters() { default_init(weight, bias); }

Tensor Conv2d::forward(const Tensor& input) {
  const Size2 p = options.padding.size;
  if (options.padding_mode == functional::PadMode::Constant || (!options.padding.is_same && p.h == 0 && p.w == 0))
    return functional::conv2d(input, weight, bias, {options.stride, options.padding, options.dilation, options.groups});
  const auto [top, bottom] = mode_padding(options.padding.is_same, p.h, options.dilation.h, kernel_size.h);
  const auto [left, right] = mode_padding(options.padding.is_same, p.w, options.dilation.w, kernel_size.w);
  return functional::conv2d(functional::pad(input, {left, right, top, bottom}, options.padding_mode), weight, bias,
                            {options.stride, 0, options.dilation, options.groups});
}

std::string Conv2d::extra_repr() const {
  const auto pair = [](Size2 s) { return detail::concat("(", s.h, ", ", s.w, ")"); };
  std::string s = detail::concat(in_channels, ", ", out_channels, ", kernel_size=", pair(kernel_size),
                                 ", stride=", pair(options.stride));
  if (options.padding.is_same) s += ", padding=same";
  else if (options.padding.size.h || options.padding.size.w) s += ", padding=" + pair(options.padding.size);
  if (options.dilation != Size2(1)) s += ", dilation=" + pair(options.dilation);
  if (options.groups != 1) s += detail::concat(", groups=", options.groups);
  if (!options.bias) s += ", bias=false";
  if (options.padding_mode != functional::PadMode::Constant) s += detail::concat(", padding_mode=", mode_str(options.padding_mode));
  return s;
}

}  // namespace xgrad::nn
