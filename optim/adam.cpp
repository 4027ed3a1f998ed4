// Adam and AdamW: PyTorch's _single_tensor_adam, fused into one pass per parameter.
#include "adam.hpp"

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
struct AdamScalars {
  T decay_factor;       // 1 - lr * weight_decay (AdamW)
  T weight_decay;       // L2 (Adam)
  T lerp_weight;        // 1 - beta1
  T weight_minus_one;   // lerp_weight - 1, computed in T like PyTorch's lerp_vec
  T beta2, one_minus_beta2;
  T bias_correction2_sqrt;
  T eps;
  T neg_step_size;      // -lr / (1 - beta1^t)
};

enum class Decay { None, L2, Decoupled };

// One pass over p, g, m, v (and vmax). `SmallWeight` is PyTorch's lerp branch for |weight| < 0.5.
template <class T, Decay D, bool Amsgrad, bool SmallWeight>
void adam_kernel(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, AdamScalars<T> s) {
  for_each_lane<T>(n, [&](std::size_t i, auto lanes) {
    using V = decltype(lanes);
    V param = load<V>(p + i);
    if constexpr (D == Decay::Decoupled) param = param * V(s.decay_factor);  // param.mul_(1 - lr * wd)
    V grad = load<V>(g + i);
    if constexpr (D == Decay::L2) grad = fma_of(V(s.weight_decay), param, grad);  // grad.add(param, alpha=wd)
    // exp_avg.lerp_(grad, 1 - beta1), PyTorch's two-branch lerp
    V avg = load<V>(m + i);
    if constexpr (SmallWeight) {
      avg = fma_of(V(s.lerp_weight), grad - avg, avg);
    } else {
      avg = fma_of(V(s.weight_minus_one), grad - avg, grad);
    }
    store(m + i, avg);
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    V sq = load<V>(v + i) * V(s.beta2);
    sq = fma_of(V(s.one_minus_beta2) * grad, grad, sq);
    store(v + i, sq);
    if constexpr (Amsgrad) {
      sq = nan_max(load<V>(vmax + i), sq);  // torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
      store(vmax + i, sq);
    }
    // denom = (sq.sqrt() / bias_correction2_sqrt).add_(eps); param.addcdiv_(exp_avg, denom, value=-step_size)
    const V denom = sqrt_of(sq) / V(s.bias_correction2_sqrt) + V(s.eps);
    store(p + i, param + V(s.neg_step_size) * avg / denom);
  });
}

template <class Options>
AdamOptions as_adam(const Options& o) {
  return AdamOptions{.lr = o.lr, .betas = o.betas, .eps = o.eps, .weight_decay = o.weight_decay, .amsgrad = o.amsgrad};
}

AdamOptions from_values(const std::map<std::string, std::vector<double>>& v) {
  const std::vector<double>& betas = v.at("betas");
  return AdamOptions{.lr = v.at("lr")[0],
                     .betas = {betas[0], betas[1]},
                     .eps = v.at("eps")[0],
                     .weight_decay = v.at("weight_decay")[0],
                     .amsgrad = v.at("amsgrad")[0] != 0};
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam(std::move(params), options, false, "Adam") {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, std::string name)
    : Optimizer(std::move(params), options.lr, std::move(name)), options_(options), decoupled_(decoupled) {
  check(options_);
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options) : Adam(std::move(params), as_adam(options), true, "AdamW") {}

void Adam::check(const AdamOptions& o) const {
  check_lr(o.lr);
  if (!(o.eps >= 0)) fail_value("epsilon value", o.eps, "must be >= 0");
  if (!(o.betas[0] >= 0 && o.betas[0] < 1)) fail_value("beta parameter at index 0", o.betas[0], "must be in [0, 1)");
  if (!(o.betas[1] >= 0 && o.betas[1] < 1)) fail_value("beta parameter at index 1", o.betas[1], "must be in [0, 1)");
  if (!(o.weight_decay >= 0)) fail_value("weight_decay value", o.weight_decay, "must be >= 0");
}

AdamOptions Adam::options() const {
  AdamOptions o = options_;
  o.lr = lr();
  return o;
}

AdamWOptions AdamW::options() const {
  const AdamOptions o = Adam::options();
  return AdamWOptions{.lr = o.lr, .betas = o.betas, .eps = o.eps, .weight_decay = o.weight_decay, .amsgrad = o.amsgrad};
}

std::vector<std::pair<std::string, std::vector<double>>> Adam::hyper_parameters() const {
  return {{"betas", {options_.betas[0], options_.betas[1]}},
          {"eps", {options_.eps}},
          {"weight_decay", {options_.weight_decay}},
          {"amsgrad", {options_.amsgrad ? 1.0 : 0.0}},
          {"decoupled_weight_decay", {decoupled_ ? 1.0 : 0.0}}};
}

void Adam::check_hyper_parameters(const HyperValues& values) const {
  const double amsgrad = values.at("amsgrad")[0];
  if (amsgrad != 0 && amsgrad != 1) fail_value("amsgrad flag", amsgrad, "must be 0 or 1");
  const double decoupled = values.at("decoupled_weight_decay")[0];
  if (decoupled != (decoupled_ ? 1.0 : 0.0))
    ::xgrad::detail::fail(name(), ": the state is from ", decoupled == 1 ? "AdamW" : "Adam",
                          " (decoupled_weight_decay = ", decoupled, "), this optimizer is ", name());
  check(from_values(values));
}

void Adam::apply_hyper_parameters(const HyperValues& values) noexcept { options_ = from_values(values); }

std::vector<std::string> Adam::required_buffers(const HyperValues& values) const {
  if (values.at("amsgrad")[0] != 0) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::update(Tensor& param, const Tensor& grad, ParamState& state) {
  const AdamOptions& o = options_;
  Tensor& exp_avg = buffer(state, 0, param, /*zero=*/true);
  Tensor& exp_avg_sq = buffer(state, 1, param, /*zero=*/true);
  Tensor* max_exp_avg_sq = o.amsgrad ? &buffer(state, 2, param, /*zero=*/true) : nullptr;

  // Python floats, as in PyTorch: bias corrections and the step size in double.
  const double lr = this->lr();
  const auto step = static_cast<double>(state.step);
  const double bias_correction1 = 1 - std::pow(o.betas[0], step);
  const double bias_correction2 = 1 - std::pow(o.betas[1], step);
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  const Decay decay = o.weight_decay == 0 ? Decay::None : decoupled_ ? Decay::Decoupled : Decay::L2;

  dispatch(param.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T lerp_weight = static_cast<T>(1 - o.betas[0]);
    const AdamScalars<T> s{static_cast<T>(1 - lr * o.weight_decay),
                           static_cast<T>(o.weight_decay),
                           lerp_weight,
                           lerp_weight - T(1),
                           static_cast<T>(o.betas[1]),
                           static_cast<T>(1 - o.betas[1]),
                           static_cast<T>(bias_correction2_sqrt),
                           static_cast<T>(o.eps),
                           static_cast<T>(-step_size)};
    T* p = ptr<T>(param);
    const T* g = cptr<T>(grad);
    T* m = ptr<T>(exp_avg);
    T* v = ptr<T>(exp_avg_sq);
    T* vmax = max_exp_avg_sq ? ptr<T>(*max_exp_avg_sq) : nullptr;
    const std::size_t n = param.numel();
    const bool small_weight = std::abs(lerp_weight) < T(0.5);
    with_flag(o.amsgrad, [&](auto ams) {
      with_flag(small_weight, [&](auto small) {
        switch (decay) {
          case Decay::None: adam_kernel<T, Decay::None, ams(), small()>(p, g, m, v, vmax, n, s); break;
          case Decay::L2: adam_kernel<T, Decay::L2, ams(), small()>(p, g, m, v, vmax, n, s); break;
          case Decay::Decoupled: adam_kernel<T, Decay::Decoupled, ams(), small()>(p, g, m, v, vmax, n, s); break;
        }
      });
    });
  });
}

}  // namespace xgrad::optim
