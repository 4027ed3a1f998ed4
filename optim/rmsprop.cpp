// RMSprop: PyTorch's _single_tensor_rmsprop (centered = False), fused into one pass per parameter.
#include "rmsprop.hpp"

#include <cmath>

#include "../autograd/error.hpp"
#include "detail/kernel_support.hpp"

// PyTorch's arithmetic exactly: no multiply-add fused by the compiler (see detail/kernel_support.hpp).
#pragma GCC optimize("fp-contract=off")

namespace xgrad::optim {

using namespace detail;

namespace {

// Scalars in the parameter's dtype, as PyTorch casts its Python floats for an in-place op.
template <class T>
struct RMSpropScalars {
  T weight_decay, alpha, one_minus_alpha, eps, momentum, neg_lr;
};

template <class T, bool Decay, bool Momentum>
void rmsprop_kernel(T* p, const T* g, T* v, T* buf, std::size_t n, RMSpropScalars<T> s) {
  for_each_lane<T>(n, [&](std::size_t i, auto lanes) {
    using V = decltype(lanes);
    const V param = load<V>(p + i);
    V grad = load<V>(g + i);
    if constexpr (Decay) grad = fma_of(V(s.weight_decay), param, grad);  // grad.add(param, alpha=weight_decay)
    // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    V sq = load<V>(v + i) * V(s.alpha);
    sq = fma_of(V(s.one_minus_alpha) * grad, grad, sq);
    store(v + i, sq);
    const V avg = sqrt_of(sq) + V(s.eps);  // square_avg.sqrt().add_(eps)
    if constexpr (Momentum) {
      // buf.mul_(momentum).addcdiv_(grad, avg); param.add_(buf, alpha=-lr)
      V b = load<V>(buf + i) * V(s.momentum);
      b = b + grad / avg;
      store(buf + i, b);
      store(p + i, fma_of(V(s.neg_lr), b, param));
    } else {
      store(p + i, param + V(s.neg_lr) * grad / avg);  // param.addcdiv_(grad, avg, value=-lr)
    }
  });
}

RMSpropOptions from_values(const std::map<std::string, std::vector<double>>& v) {
  return RMSpropOptions{.lr = v.at("lr")[0],
                        .alpha = v.at("alpha")[0],
                        .eps = v.at("eps")[0],
                        .weight_decay = v.at("weight_decay")[0],
                        .momentum = v.at("momentum")[0]};
}

}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : Optimizer(std::move(params), options.lr, "RMSprop"), options_(options) {
  check(options_);
}

void RMSprop::check(const RMSpropOptions& o) const {
  check_lr(o.lr);
  if (!(o.eps >= 0)) fail_value("epsilon value", o.eps, "must be >= 0");
  if (!(o.momentum >= 0)) fail_value("momentum value", o.momentum, "must be >= 0");
  if (!(o.weight_decay >= 0)) fail_value("weight_decay value", o.weight_decay, "must be >= 0");
  if (!(o.alpha >= 0)) fail_value("alpha value", o.alpha, "must be >= 0");
}

RMSpropOptions RMSprop::options() const {
  RMSpropOptions o = options_;
  o.lr = lr();
  return o;
}

std::vector<std::pair<std::string, std::vector<double>>> RMSprop::hyper_parameters() const {
  return {{"alpha", {options_.alpha}},
          {"eps", {options_.eps}},
          {"weight_decay", {options_.weight_decay}},
          {"momentum", {options_.momentum}}};
}

void RMSprop::check_hyper_parameters(const HyperValues& values) const { check(from_values(values)); }

void RMSprop::apply_hyper_parameters(const HyperValues& values) noexcept { options_ = from_values(values); }

std::vector<std::string> RMSprop::required_buffers(const HyperValues& values) const {
  if (values.at("momentum")[0] > 0) return {"square_avg", "momentum_buffer"};
  return {"square_avg"};
}

void RMSprop::update(Tensor& param, const Tensor& grad, ParamState& state) {
  const RMSpropOptions& o = options_;
  const bool momentum = o.momentum > 0;
  Tensor& square_avg = buffer(state, 0, param, /*zero=*/true);
  Tensor* momentum_buffer = momentum ? &buffer(state, 1, param, /*zero=*/true) : nullptr;
  dispatch(param.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const RMSpropScalars<T> s{static_cast<T>(o.weight_decay), static_cast<T>(o.alpha),
                              static_cast<T>(1 - o.alpha),    static_cast<T>(o.eps),
                              static_cast<T>(o.momentum),     static_cast<T>(-lr())};
    T* p = ptr<T>(param);
    const T* g = cptr<T>(grad);
    T* v = ptr<T>(square_avg);
    T* b = momentum_buffer ? ptr<T>(*momentum_buffer) : nullptr;
    const std::size_t n = param.numel();
    with_flag(o.weight_decay != 0, [&](auto decay) {
      with_flag(momentum, [&](auto mom) { rmsprop_kernel<T, decay(), mom()>(p, g, v, b, n, s); });
    });
  });
}

}  // namespace xgrad::optim
