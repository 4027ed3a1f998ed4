#include "init.hpp"

#include <cmath>
#include <vector>

#include "../autograd/detail/op_support.hpp"
#include "../autograd/detail/random.hpp"

namespace xgrad::nn::init {

namespace {

void check_defined(const char* fn, const Tensor& t) {
  if (!t.defined()) detail::fail("nn::init::", fn, ": the tensor is undefined");
}

// Writes `values` (one per element, in row-major order) into t's storage.
void assign(Tensor& t, const std::vector<double>& values) {
  detail::dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* out = t.data<T>().data();
    for (std::size_t i = 0; i < values.size(); ++i) out[i] = static_cast<T>(values[i]);
  });
}

Tensor fill_uniform(Tensor t, double lo, double hi) {
  std::vector<double> values(t.numel());
  detail::fill_uniform(values.data(), values.size(), lo, hi);
  assign(t, values);
  return t;
}

Tensor fill_normal(Tensor t, double mean, double stddev) {
  std::vector<double> values(t.numel());
  detail::fill_normal(values.data(), values.size(), mean, stddev);
  assign(t, values);
  return t;
}

std::size_t fan_for_mode(const char* fn, const Tensor& t, const std::string& mode) {
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  if (mode == "fan_in") return fan_in;
  if (mode == "fan_out") return fan_out;
  detail::fail("nn::init::", fn, ": mode must be \"fan_in\" or \"fan_out\", got \"", mode, "\"");
}

}  // namespace

double calculate_gain(const std::string& nonlinearity, std::optional<double> param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" || nonlinearity == "conv3d" ||
      nonlinearity == "conv_transpose1d" || nonlinearity == "conv_transpose2d" ||
      nonlinearity == "conv_transpose3d" || nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double slope = param.value_or(0.01);
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4.0;
  detail::fail("nn::init::calculate_gain: unsupported nonlinearity \"", nonlinearity, "\"");
}

std::pair<std::size_t, std::size_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  check_defined("calculate_fan_in_and_fan_out", t);
  const Shape shape = t.shape();
  if (shape.size() < 2)
    detail::fail("nn::init: fan in and fan out cannot be computed for a tensor of shape ", shape_str(shape),
                 " (fewer than 2 dimensions)");
  std::size_t receptive_field = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) receptive_field *= shape[d];
  return {shape[1] * receptive_field, shape[0] * receptive_field};
}

Tensor uniform_(Tensor t, double a, double b) {
  check_defined("uniform_", t);
  if (!(a <= b)) detail::fail("nn::init::uniform_: needs a <= b, got a = ", a, ", b = ", b);
  return fill_uniform(std::move(t), a, b);
}

Tensor normal_(Tensor t, double mean, double std) {
  check_defined("normal_", t);
  if (!(std >= 0)) detail::fail("nn::init::normal_: std must be non-negative, got ", std);
  return fill_normal(std::move(t), mean, std);
}

Tensor constant_(Tensor t, double value) {
  check_defined("constant_", t);
  detail::dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto& a = t.data<T>();
    std::fill(a.data(), a.data() + a.size(), static_cast<T>(value));
  });
  return t;
}
Tensor zeros_(Tensor t) { return constant_(std::move(t), 0.0); }
Tensor ones_(Tensor t) { return constant_(std::move(t), 1.0); }

Tensor xavier_uniform_(Tensor t, double gain) {
  check_defined("xavier_uniform_", t);
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  if (t.numel() == 0) return t;  // PyTorch: initialising a zero-element tensor is a no-op
  const double stddev = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  const double bound = std::sqrt(3.0) * stddev;
  return fill_uniform(std::move(t), -bound, bound);
}

Tensor xavier_normal_(Tensor t, double gain) {
  check_defined("xavier_normal_", t);
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  if (t.numel() == 0) return t;
  const double stddev = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  return fill_normal(std::move(t), 0.0, stddev);
}

Tensor kaiming_uniform_(Tensor t, double a, const std::string& mode, const std::string& nonlinearity) {
  check_defined("kaiming_uniform_", t);
  const std::size_t fan = fan_for_mode("kaiming_uniform_", t, mode);
  const double gain = calculate_gain(nonlinearity, a);
  if (t.numel() == 0) return t;
  const double bound = std::sqrt(3.0) * gain / std::sqrt(static_cast<double>(fan));
  return fill_uniform(std::move(t), -bound, bound);
}

Tensor kaiming_normal_(Tensor t, double a, const std::string& mode, const std::string& nonlinearity) {
  check_defined("kaiming_normal_", t);
  const std::size_t fan = fan_for_mode("kaiming_normal_", t, mode);
  const double gain = calculate_gain(nonlinearity, a);
  if (t.numel() == 0) return t;
  return fill_normal(std::move(t), 0.0, gain / std::sqrt(static_cast<double>(fan)));
}

}  // namespace xgrad::nn::init
