// SGD: PyTorch's _single_tensor_sgd, fused into one pass per parameter.
#include "sgd.hpp"

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
struct SGDScalars {
  T weight_decay, momentum, one_minus_dampening, neg_lr;
};

// One pass: p += -lr * g', with g' from weight decay and momentum as in PyTorch; `First` is the step
// that creates the momentum buffer (buf = g, a clone, without dampening).
template <class T, bool Decay, bool Momentum, bool Nesterov, bool First>
void sgd_kernel(T* p, const T* g, T* buf, std::size_t n, SGDScalars<T> s) {
  for_each_lane<T>(n, [&](std::size_t i, auto lanes) {
    using V = decltype(lanes);
    V param = load<V>(p + i);
    V grad = load<V>(g + i);
    if constexpr (Decay) grad = fma_of(V(s.weight_decay), param, grad);  // grad.add(param, alpha=weight_decay)
    if constexpr (Momentum) {
      V b;
      if constexpr (First) {
        b = grad;  // torch.clone(grad)
      } else {
        b = load<V>(buf + i) * V(s.momentum);           // buf.mul_(momentum)
        b = fma_of(V(s.one_minus_dampening), grad, b);  //    .add_(grad, alpha=1 - dampening)
      }
      store(buf + i, b);
      if constexpr (Nesterov) {
        grad = fma_of(V(s.momentum), b, grad);  // grad.add(buf, alpha=momentum)
      } else {
        grad = b;
      }
    }
    store(p + i, fma_of(V(s.neg_lr), grad, param));  // param.add_(grad, alpha=-lr)
  });
}

SGDOptions from_values(const std::map<std::string, std::vector<double>>& v) {
  return SGDOptions{.lr = v.at("lr")[0],
                    .momentum = v.at("momentum")[0],
                    .dampening = v.at("dampening")[0],
                    .weight_decay = v.at("weight_decay")[0],
                    .nesterov = v.at("nesterov")[0] != 0};
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : Optimizer(std::move(params), options.lr, "SGD"), options_(options) {
  check(options_);
}

void SGD::check(const SGDOptions& o) const {
  check_lr(o.lr);
  if (!(o.momentum >= 0)) fail_value("momentum", o.momentum, "must be >= 0");
  if (!(o.weight_decay >= 0)) fail_value("weight_decay", o.weight_decay, "must be >= 0");
  if (!std::isfinite(o.dampening)) fail_value("dampening", o.dampening, "must be finite");
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    ::xgrad::detail::fail("SGD: Nesterov momentum requires a momentum and zero dampening (momentum = ", o.momentum,
                          ", dampening = ", o.dampening, ")");
}

SGDOptions SGD::options() const {
  SGDOptions o = options_;
  o.lr = lr();
  return o;
}

std::vector<std::pair<std::string, std::vector<double>>> SGD::hyper_parameters() const {
  return {{"momentum", {options_.momentum}},
          {"dampening", {options_.dampening}},
          {"weight_decay", {options_.weight_decay}},
          {"nesterov", {options_.nesterov ? 1.0 : 0.0}}};
}

void SGD::check_hyper_parameters(const HyperValues& values) const {
  const double nesterov = values.at("nesterov")[0];
  if (nesterov != 0 && nesterov != 1) fail_value("nesterov flag", nesterov, "must be 0 or 1");
  check(from_values(values));
}

void SGD::apply_hyper_parameters(const HyperValues& values) noexcept { options_ = from_values(values); }

void SGD::update(Tensor& param, const Tensor& grad, ParamState& state) {
  const SGDOptions& o = options_;
  const bool momentum = o.momentum != 0;
  bool first = false;
  Tensor* buf = momentum ? &buffer(state, 0, param, /*zero=*/false, &first) : nullptr;
  dispatch(param.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const SGDScalars<T> s{static_cast<T>(o.weight_decay), static_cast<T>(o.momentum),
                          static_cast<T>(1 - o.dampening), static_cast<T>(-lr())};
    T* p = ptr<T>(param);
    const T* g = cptr<T>(grad);
    T* b = buf ? ptr<T>(*buf) : nullptr;
    const std::size_t n = param.numel();
    with_flag(o.weight_decay != 0, [&](auto decay) {
      with_flag(momentum, [&](auto mom) {
        with_flag(o.nesterov, [&](auto nesterov) {
          with_flag(first, [&](auto fresh) {
            sgd_kernel<T, decay(), mom(), nesterov(), fresh()>(p, g, b, n, s);
          });
        });
      });
    });
  });
}

}  // namespace xgrad::optim
