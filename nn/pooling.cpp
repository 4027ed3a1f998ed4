#include "pooling.hpp"

namespace xgrad::nn {

namespace {
std::string pair(Size2 s) { return detail::concat("(", s.h, ", ", s.w, ")"); }
}  // namespace

Tensor MaxPool2d::forward(const Tensor& input) { return functional::max_pool2d(input, kernel_size, args); }
std::string MaxPool2d::extra_repr() const {
  return detail::concat("kernel_size=", pair(kernel_size), ", stride=", pair(args.stride.value_or(kernel_size)),
                        ", padding=", pair(args.padding), ", dilation=", pair(args.dilation),
                        ", ceil_mode=", args.ceil_mode ? "true" : "false");
}

Tensor AvgPool2d::forward(const Tensor& input) { return functional::avg_pool2d(input, kernel_size, args); }
std::string AvgPool2d::extra_repr() const {
  return detail::concat("kernel_size=", pair(kernel_size), ", stride=", pair(args.stride.value_or(kernel_size)),
                        ", padding=", pair(args.padding), ", ceil_mode=", args.ceil_mode ? "true" : "false",
                        ", count_include_pad=", args.count_include_pad ? "true" : "false");
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& input) { return functional::adaptive_avg_pool2d(input, output_size); }
std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pair(output_size); }

}  // namespace xgrad::nn
