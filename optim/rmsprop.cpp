// RMSprop: PyTorch's _single_tensor_rmsprop (plain and centered), fused into one pass per parameter.
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
  T lerp_weight, weight_minus_one;  // centered: 1 - alpha, and that minus 1 (computed in T, as lerp does)
};

// `Centered` 0: plain; 1: centered with PyTorch's lerp branch for |weight| < 0.5; 2: the other branch.
template <class T, bool Decay, bool Momentum, int Centered>
void rmsprop_kernel(T* p, const T* g, T* v, T* buf, T* gavg, std::size_t n, RMSpropScalars<T> s) {
  for_each_lane<T>(n, [&](std::size_t i, auto lanes) {
    using V = decltype(lanes);
    const V param = load<V>(p + i);
    V grad = load<V>(g + i);
    if constexpr (Decay) grad = fma_of(V(s.weight_decay), param, grad);  // grad.add(param, alpha=weight_decay)
    // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    V sq = load<V>(v + i) * V(s.alpha);
    sq = fma_of(V(s.one_minus_alpha) * grad, grad, sq);
    store(v + i, sq);
    V avg;
    if constexpr (Centered != 0) {
      // grad_avg.lerp_(grad, 1 - alpha), PyTorch's two-branch lerp (as Adam's exp_avg)
      V m = load<V>(gavg + i);
      if constexpr (Centered == 1) {
        m = fma_of(V(s.lerp_weight), grad - m, m);
      } else {
        m = fma_of(V(s.weight_minus_one), grad - m, grad);
      }
      store(gavg + i, m);
      // square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_().add_(eps)
      // (the same contraction of addcmul into one fused multiply-add as for square_avg above)
      avg = sqrt_of(fma_of(V(T(-1)) * m, m, sq)) + V(s.eps);
    } else {
      avg = sqrt_of(sq) + V(s.eps);  // square_avg.sqrt().add_(eps)
    }
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
                        .momentum = v.at("momentum")[0],
                        .centered = v.at("centered")[0] != 0};
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
          {"momentum", {options_.momentum}},
          {"centered", {options_.centered ? 1.0 : 0.0}}};
}

void RMSprop::check_hyper_parameters(const HyperValues& values) const {
  const double centered = values.at("centered")[0];
  if (centered != 0 && centered != 1) fail_value("centered flag", centered, "must be 0 or 1");
  check(from_values(values));
}

void RMSprop::apply_hyper_parameters(const HyperValues& values) noexcept { options_ = from_values(values); }

std::vector<std::string> RMSprop::required_buffers(const HyperValues& values) const {
  std::vector<std::string> required{"square_avg"};
  if (values.at("momentum")[0] > 0) required.push_back("momentum_buffer");
  if (values.at("centered")[0] != 0) required.push_back("grad_avg");
  return required;
}

void RMSprop::update(Tensor& param, const Tensor& grad, ParamState& state) {
  const RMSpropOptions& o = options_;
  const bool momentum = o.momentum > 0;
  Tensor& square_avg = buffer(state, 0, param, /*zero=*/true);
  Tensor* momentum_buffer = momentum ? &buffer(state, 1, param, /*zero=*/true) : nullptr;
  Tensor* grad_avg = o.centered ? &buffer(state, 2, param, /*zero=*/true) : nullptr;
  dispatch(param.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const RMSpropScalars<T> s{static_cast<T>(o.weight_decay), static_cast<T>(o.alpha),
                              static_cast<T>(1 - o.alpha),    static_cast<T>(o.eps),
                              static_cast<T>(o.momentum),     static_cast<T>(-lr()),
                              static_cast<T>(1 - o.alpha),    static_cast<T>(static_cast<T>(1 - o.alpha) - T(1))};
    T* p = ptr<T>(param);
    const T* g = cptr<T>(grad);
    T* v = ptr<T>(square_avg);
    T* b = momentum_buffer ? ptr<T>(*momentum_buffer) : nullptr;
    T* m = grad_avg ? ptr<T>(*grad_avg) : nullptr;
    const std::size_t n = param.numel();
    const int centered = !o.centered ? 0 : std::abs(s.lerp_weight) < T(0.5) ? 1 : 2;
    with_flag(o.weight_decay != 0, [&](auto decay) {
      with_flag(momentum, [&](auto mom) {
        switch (centered) {
          case 0: rmsprop_kernel<T, decay(), mom(), 0>(p, g, v, b, m, n, s); break;
          case 1: rmsprop_kernel<T, decay(), mom(), 1>(p, g, v, b, m, n, s); break;
          default: rmsprop_kernel<T, decay(), mom(), 2>(p, g, v, b, m, n, s); break;
        }
      });
    });
  });
}

}  // namespace xgrad::optim
