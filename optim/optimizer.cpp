// The generic half of every optimizer: parameter checks, the step driver, the learning rate and
// the state dict (in memory and as a safetensors file).
#include "optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_set>

#include "../autograd/detail/dispatch.hpp"
#include "../autograd/error.hpp"

namespace xgrad::optim {

namespace {

// dispatch(dtype, f): the one dtype switch (autograd/detail/dispatch.hpp); kernels live in the
// concrete optimizers.
using xgrad::detail::dispatch;

// Shape equality without building a Shape (step() must not allocate).
bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) return a.shape() == b.shape();
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto& sa = a.data<T>().shape();
    const auto& sb = b.data<T>().shape();
    return sa.size() == sb.size() && std::equal(sa.begin(), sa.end(), sb.begin());
  });
}

// A fresh tensor holding t's values in `dtype` (never sharing t's memory).
Tensor copy_as(const Tensor& t, Dtype dtype) {
  Tensor out = empty(t.shape(), dtype);
  dispatch(t.dtype(), [&](auto src_tag) {
    using S = decltype(src_tag);
    dispatch(dtype, [&](auto dst_tag) {
      using D = decltype(dst_tag);
      const S* src = t.data<S>().data();
      D* dst = out.data<D>().data();
      const std::size_t n = t.numel();
      for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<D>(src[i]);
    });
  });
  return out;
}

Tensor values_tensor(const std::vector<double>& values) {
  if (values.size() == 1) return tensor(values[0], kFloat64);
  Tensor t = empty({values.size()}, kFloat64);
  std::copy(values.begin(), values.end(), t.data<double>().data());
  return t;
}

std::vector<double> tensor_values(const Tensor& t) {
  Tensor d = copy_as(t, kFloat64);
  const double* p = d.data<double>().data();
  return std::vector<double>(p, p + d.numel());
}

constexpr const char* kGroupPrefix = "param_groups.0.";
constexpr const char* kStatePrefix = "state.";

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Parses "state.<i>.<buffer>" into (i, buffer); false when the key does not have that form.
bool parse_state_key(const std::string& key, std::size_t& index, std::string& buffer) {
  const std::string rest = key.substr(std::string(kStatePrefix).size());
  const std::size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string::npos || dot + 1 == rest.size()) return false;
  const std::string digits = rest.substr(0, dot);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  if (digits.size() > 18) return false;
  index = std::stoull(digits);
  buffer = rest.substr(dot + 1);
  return true;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += items[i];
  }
  return out;
}

}  // namespace

// ---- Construction and the learning rate ----------------------------------------------------------

Optimizer::Optimizer(std::vector<Tensor> params, double lr, std::string name)
    : params_(std::move(params)), lr_(lr), name_(std::move(name)) {
  if (params_.empty()) detail::fail(name_, ": optimizer got an empty parameter list");
  std::unordered_set<const void*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined()) detail::fail(name_, ": parameter ", i, " is an undefined tensor");
    if (!p.is_leaf())
      detail::fail(name_, ": can't optimize a non-leaf tensor (parameter ", i, " was produced by ",
                   p.grad_fn_name(), "); pass leaf tensors, e.g. t.detach().requires_grad_()");
    // Two handles of one parameter would update it twice per step.
    if (!seen.insert(p.impl()).second) detail::fail(name_, ": parameter ", i, " appears more than once in the list");
  }
  check_lr(lr);
  state_.resize(params_.size());
}

void Optimizer::fail_value(const char* what, double value, const char* requirement) const {
  detail::fail(name_, ": invalid ", what, " ", value, " (", requirement, ")");
}

void Optimizer::check_lr(double lr) const {
  if (!(lr >= 0)) fail_value("learning rate", lr, "must be >= 0");
}

void Optimizer::set_lr(double lr) {
  if (!(lr >= 0)) detail::fail(name_, ".set_lr: invalid learning rate ", lr, " (must be >= 0)");
  lr_ = lr;
}

// ---- Stepping -----------------------------------------------------------------------------------------

void Optimizer::check_step_inputs() const {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (g.dtype() != p.dtype() || !same_shape(g, p))
      detail::fail(name_, ".step: the gradient of parameter ", i, " is ", g.dtype(), " of shape ",
                   shape_str(g.shape()), " but the parameter is ", p.dtype(), " of shape ", shape_str(p.shape()));
    for (const Tensor& b : state_[i].buffers)
      if (b.defined() && (b.dtype() != p.dtype() || !same_shape(b, p)))
        detail::fail(name_, ".step: the state of parameter ", i, " is ", b.dtype(), " of shape ",
                     shape_str(b.shape()), " but the parameter is now ", p.dtype(), " of shape ",
                     shape_str(p.shape()), "; change parameters' dtype before creating the optimizer");
  }
}

void Optimizer::step() {
  check_step_inputs();
  const bool count = counts_steps();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    ParamState& s = state_[i];
    if (count) ++s.step;
    update(params_[i], g, s);
  }
}

void Optimizer::zero_grad(bool set_to_none) {
  for (Tensor& p : params_) {
    if (set_to_none) {
      p.zero_grad();
    } else if (p.grad().defined()) {
      p.set_grad(zeros_like(p));
    }
  }
}

Tensor& Optimizer::buffer(ParamState& state, std::size_t slot, const Tensor& param, bool zero, bool* fresh) {
  if (state.buffers.size() <= slot) state.buffers.resize(buffer_names().size());
  Tensor& b = state.buffers[slot];
  if (fresh) *fresh = !b.defined();
  if (!b.defined()) b = zero ? zeros(param.shape(), param.dtype()) : empty(param.shape(), param.dtype());
  return b;
}

// ---- State dict -------------------------------------------------------------------------------------------

StateDict Optimizer::state_dict() const {
  StateDict out;
  const std::vector<std::string> names = buffer_names();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const ParamState& s = state_[i];
    const bool has_buffers =
        std::any_of(s.buffers.begin(), s.buffers.end(), [](const Tensor& b) { return b.defined(); });
    const std::string prefix = kStatePrefix + std::to_string(i) + ".";
    if (counts_steps() && (has_buffers || s.step > 0))
      out.emplace_back(prefix + "step", tensor(static_cast<double>(s.step), kFloat64));
    for (std::size_t slot = 0; slot < s.buffers.size(); ++slot)
      if (s.buffers[slot].defined()) out.emplace_back(prefix + names[slot], copy_as(s.buffers[slot], s.buffers[slot].dtype()));
  }
  out.emplace_back(std::string(kGroupPrefix) + "lr", tensor(lr_, kFloat64));
  for (const auto& [name, values] : hyper_parameters()) out.emplace_back(kGroupPrefix + name, values_tensor(values));
  std::vector<double> indices(params_.size());
  for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<double>(i);
  Tensor params = empty({indices.size()}, kFloat64);
  std::copy(indices.begin(), indices.end(), params.data<double>().data());
  out.emplace_back(std::string(kGroupPrefix) + "params", params);
  return out;
}

void Optimizer::load_state_dict(const StateDict& dict) {
  const std::string fn = name_ + ".load_state_dict";
  const std::vector<std::string> names = buffer_names();
  const std::size_t n = params_.size();

  // Expected hyper-parameters and their sizes (1 = a 0-d scalar).
  std::vector<std::pair<std::string, std::size_t>> hyper_order{{"lr", 1}};
  for (const auto& [name, values] : hyper_parameters()) hyper_order.emplace_back(name, values.size());
  const std::map<std::string, std::size_t> expected_hyper(hyper_order.begin(), hyper_order.end());

  std::vector<std::string> unexpected, mismatched, missing;
  std::set<std::string> seen, hyper_seen;
  HyperValues hyper;
  const Tensor* params_entry = nullptr;
  // Per parameter: the loaded step (if any) and the loaded buffers by slot.
  std::vector<const Tensor*> steps(n, nullptr);
  std::vector<std::vector<const Tensor*>> buffers(n, std::vector<const Tensor*>(names.size(), nullptr));

  for (const auto& [key, t] : dict) {
    if (!seen.insert(key).second) detail::fail(fn, ": key '", key, "' appears more than once");
    if (!t.defined()) detail::fail(fn, ": '", key, "' is an undefined tensor");
    if (starts_with(key, kGroupPrefix)) {
      const std::string h = key.substr(std::string(kGroupPrefix).size());
      if (h == "params") {
        params_entry = &t;
        continue;
      }
      auto it = expected_hyper.find(h);
      if (it == expected_hyper.end()) {
        unexpected.push_back(key);
        continue;
      }
      hyper_seen.insert(h);
      const bool scalar_ok = it->second == 1 && t.dim() == 0;
      const bool vector_ok = it->second > 1 && t.dim() == 1 && t.numel() == it->second;
      if (!scalar_ok && !vector_ok) {
        mismatched.push_back(key + " (shape " + shape_str(t.shape()) + ", expected " +
                             (it->second == 1 ? std::string("[]") : "[" + std::to_string(it->second) + "]") + ")");
        continue;
      }
      hyper[h] = tensor_values(t);
      continue;
    }
    std::size_t index = 0;
    std::string buffer_name;
    if (!starts_with(key, kStatePrefix) || !parse_state_key(key, index, buffer_name) || index >= n) {
      unexpected.push_back(key);
      continue;
    }
    if (buffer_name == "step" && counts_steps()) {
      if (t.dim() != 0) {
        mismatched.push_back(key + " (shape " + shape_str(t.shape()) + ", expected [])");
        continue;
      }
      steps[index] = &t;
      continue;
    }
    auto slot = std::find(names.begin(), names.end(), buffer_name);
    if (slot == names.end()) {
      unexpected.push_back(key);
      continue;
    }
    if (t.shape() != params_[index].shape()) {
      mismatched.push_back(key + " (shape " + shape_str(t.shape()) + ", parameter " + std::to_string(index) +
                           " has shape " + shape_str(params_[index].shape()) + ")");
      continue;
    }
    buffers[index][static_cast<std::size_t>(slot - names.begin())] = &t;
  }
  for (const auto& [h, size] : hyper_order)
    if (!hyper_seen.count(h)) missing.push_back(kGroupPrefix + h);
  if (!params_entry) missing.push_back(std::string(kGroupPrefix) + "params");

  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = fn + ": the state dict does not fit this " + name_ + " optimizer.";
    if (!missing.empty()) msg += " Missing: " + join(missing) + ".";
    if (!unexpected.empty()) msg += " Unexpected: " + join(unexpected) + ".";
    if (!mismatched.empty()) msg += " Shape mismatch: " + join(mismatched) + ".";
    throw Error(msg);
  }

  // The parameter count (the state of a parameter that never had a gradient is absent, so the
  // buffers alone cannot tell).
  {
    const std::vector<double> idx = params_entry->dim() == 1 ? tensor_values(*params_entry) : std::vector<double>{};
    bool ok = params_entry->dim() == 1 && idx.size() == n;
    for (std::size_t i = 0; ok && i < n; ++i) ok = idx[i] == static_cast<double>(i);
    if (!ok)
      detail::fail(fn, ": the state dict is for ", params_entry->numel(), " parameters (",
                   std::string(kGroupPrefix), "params has shape ", shape_str(params_entry->shape()),
                   ") but this optimizer has ", n);
  }

  // Hyper-parameters, checked like the constructor does (names the bad value).
  const double new_lr = hyper.at("lr")[0];
  if (!(new_lr >= 0)) detail::fail(fn, ": invalid learning rate ", new_lr, " (must be >= 0)");
  try {
    check_hyper_parameters(hyper);
  } catch (const Error& e) {
    detail::fail(fn, ": ", e.what());
  }

  // Per-parameter consistency: a parameter that has stepped has every buffer the update needs.
  const std::vector<std::string> required = required_buffers(hyper);
  std::vector<ParamState> fresh(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string prefix = kStatePrefix + std::to_string(i) + ".";
    const bool any_buffer = std::any_of(buffers[i].begin(), buffers[i].end(), [](const Tensor* t) { return t; });
    std::int64_t step = 0;
    if (counts_steps()) {
      if (steps[i]) {
        const double v = steps[i]->item();
        if (!(v >= 0) || v != std::floor(v) || v > 9.0e15)
          detail::fail(fn, ": ", prefix, "step is ", v, ", expected a non-negative integer");
        step = static_cast<std::int64_t>(v);
      } else if (any_buffer) {
        detail::fail(fn, ": ", prefix, "step is missing but the parameter has buffers");
      }
    }
    const bool has_state = counts_steps() ? step > 0 : any_buffer;
    if (has_state)
      for (const std::string& r : required) {
        const auto slot = static_cast<std::size_t>(std::find(names.begin(), names.end(), r) - names.begin());
        if (!buffers[i][slot])
          detail::fail(fn, ": ", prefix, r, " is missing (parameter ", i, " has stepped",
                       counts_steps() ? " " + std::to_string(step) + " times" : std::string(), ")");
      }
    fresh[i].step = step;
    if (any_buffer) {
      fresh[i].buffers.resize(names.size());
      for (std::size_t slot = 0; slot < names.size(); ++slot)
        if (buffers[i][slot]) fresh[i].buffers[slot] = copy_as(*buffers[i][slot], params_[i].dtype());
    }
  }

  // Commit: nothing below throws.
  state_ = std::move(fresh);
  lr_ = new_lr;
  apply_hyper_parameters(hyper);
}

void Optimizer::save(const std::string& path) const {
  save_safetensors(path, state_dict(), {{"format", "xgrad.optim"}, {"optimizer", name_}});
}

void Optimizer::load(const std::string& path) {
  std::map<std::string, std::string> metadata;
  StateDict dict = load_safetensors(path, &metadata);
  auto it = metadata.find("optimizer");
  if (it != metadata.end() && it->second != name_)
    detail::fail(name_, ".load: '", path, "' holds the state of a ", it->second, " optimizer, not ", name_);
  try {
    load_state_dict(dict);
  } catch (const Error& e) {
    detail::fail(name_, ".load('", path, "'): ", e.what());
  }
}

}  // namespace xgrad::optim
