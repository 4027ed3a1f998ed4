#include "normalization.hpp"

#include "../autograd/detail/op_support.hpp"
#include "init.hpp"

namespace xgrad::nn {

BatchNormBase::BatchNormBase(std::size_t c, BatchNormOptions o, std::size_t min_rank, std::size_t max_rank, const char* name)
    : num_features(c), options(o), min_rank_(min_rank), max_rank_(max_rank), name_(name) {
  if (c == 0) detail::fail(name, ": num_features must be positive");
  if (o.affine) {
    weight = register_parameter("weight", ones({c}));
    bias = register_parameter("bias", zeros({c}));
  }
  if (o.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({c}));
    running_var = register_buffer("running_var", ones({c}));
    // PyTorch keeps an int64 count; here it is held in the module's float dtype (exact to 2^24 in float32).
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}));
  }
}

void BatchNormBase::reset_running_stats() {
  if (!running_mean.defined()) return;
  init::zeros_(running_mean);
  init::ones_(running_var);
  init::zeros_(num_batches_tracked);
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (weight.defined()) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNormBase::forward(const Tensor& input) {
  if (!input.defined()) detail::fail(name_, ": the input is undefined");
  const Shape s = input.shape();
  if (s.size() < min_rank_ || s.size() > max_rank_)
    detail::fail(name_, ": expected a ", min_rank_ == max_rank_ ? detail::concat(min_rank_, "-D")
                                                              : detail::concat(min_rank_, "-D or ", max_rank_, "-D"),
                 " input, got shape ", shape_str(s));
  if (s[1] != num_features)
    detail::fail(name_, "(", num_features, "): input of shape ", shape_str(s), " has ", s[1],
                 " channels (dim 1), expected ", num_features);
  const bool training = is_training();
  if (training && num_batches_tracked.defined()) {
    // In place, through the handle the module owns (a buffer, not differentiated).
    detail::dispatch(num_batches_tracked.dtype(), [&](auto tag) {
      using T = decltype(tag);
      num_batches_tracked.data<T>().data()[0] += T(1);
    });
  }
  return functional::batch_norm(input, running_mean, running_var, weight, bias,
                                training || !running_mean.defined(), options.momentum, options.eps);
}

std::string BatchNormBase::extra_repr() const {
  return detail::concat(num_features, ", eps=", options.eps, ", momentum=", options.momentum,
                        ", affine=", options.affine ? "true" : "false",
                        ", track_running_stats=", options.track_running_stats ? "true" : "false");
}

LayerNorm::LayerNorm(std::vector<std::size_t> ns, LayerNormOptions o) : normalized_shape(std::move(ns)), options(o) {
  if (normalized_shape.empty()) detail::fail("LayerNorm: normalized_shape must not be empty");
  const Shape s(normalized_shape.begin(), normalized_shape.end());
  if (o.elementwise_affine) {
    weight = register_parameter("weight", ones(s));
    bias = register_parameter("bias", zeros(s));
  }
}

Tensor LayerNorm::forward(const Tensor& input) {
  return functional::layer_norm(input, normalized_shape, weight, bias, options.eps);
}

std::string LayerNorm::extra_repr() const {
  return detail::concat(shape_str(Shape(normalized_shape.begin(), normalized_shape.end())), ", eps=", options.eps,
                        ", elementwise_affine=", options.elementwise_affine ? "true" : "false");
}

GroupNorm::GroupNorm(std::size_t g, std::size_t c, GroupNormOptions o) : num_groups(g), num_channels(c), options(o) {
  if (g == 0 || c % g != 0)
    detail::fail("GroupNorm(", g, ", ", c, "): num_channels must be divisible by num_groups");
  if (o.affine) {
    weight = register_parameter("weight", ones({c}));
    bias = register_parameter("bias", zeros({c}));
  }
}

Tensor GroupNorm::forward(const Tensor& input) {
  if (input.defined() && input.dim() >= 2 && input.shape()[1] != num_channels)
    detail::fail("GroupNorm(", num_groups, ", ", num_channels, "): input of shape ", shape_str(input.shape()), " has ",
                 input.shape()[1], " channels, expected ", num_channels);
  return functional::group_norm(input, num_groups, weight, bias, options.eps);
}

std::string GroupNorm::extra_repr() const {
  return detail::concat(num_groups, ", ", num_channels, ", eps=", options.eps, ", affine=", options.affine ? "true" : "false");
}

}  // namespace xgrad::nn
