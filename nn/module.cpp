// Module's registry and everything derived from it. Module trees are shallow (a handful of levels),
// so walking them recursively is fine; the autograd graph is a different matter and never is.
#include "module.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <ostream>
#include <sstream>
#include <typeinfo>
#include <unordered_set>

#include "../autograd/detail/op_support.hpp"
#include "../autograd/grad_mode.hpp"
#include "../autograd/safetensors.hpp"

namespace xgrad::nn {

// ---- Forward -----------------------------------------------------------------------------------

Tensor Module::operator()(const Tensor& input) {
  Tensor output = forward(input);
  remember_output_shape(output);
  return output;
}

void Module::remember_output_shape(const Tensor& output) {
  if (output.defined()) output_shape_ = output.shape();
}

// ---- Registration ------------------------------------------------------------------------------

void Module::check_new_name(const char* what, const std::string& name) const {
  const std::string where = std::string(what) + "(\"" + name + "\") in " + type_name();
  if (name.empty()) detail::fail(what, ": the name must not be empty (in ", type_name(), ")");
  if (name.find('.') != std::string::npos) detail::fail(where, ": a name must not contain '.'");
  for (const auto& entry : parameters_)
    if (entry.first == name) detail::fail(where, ": the name is already taken by a parameter");
  for (const auto& entry : buffers_)
    if (entry.first == name) detail::fail(where, ": the name is already taken by a buffer");
  for (const auto& entry : children_)
    if (entry.first == name) detail::fail(where, ": the name is already taken by a submodule");
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_new_name("register_parameter", name);
  if (!tensor.defined()) detail::fail("register_parameter(\"", name, "\") in ", type_name(), ": the tensor is undefined");
  if (!tensor.is_leaf())
    detail::fail("register_parameter(\"", name, "\") in ", type_name(), ": a parameter must be a leaf tensor, this one was produced by ",
                 tensor.grad_fn_name(), " (detach() it first)");
  tensor.requires_grad_(requires_grad);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name("register_buffer", name);
  if (!tensor.defined()) detail::fail("register_buffer(\"", name, "\") in ", type_name(), ": the tensor is undefined");
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name("register_module", name);
  if (!module) detail::fail("register_module(\"", name, "\") in ", type_name(), ": the module is null");
  if (module.get() == this) detail::fail("register_module(\"", name, "\") in ", type_name(), ": a module cannot contain itself");
  children_.emplace_back(name, std::move(module));
}

// ---- Listing -----------------------------------------------------------------------------------

void Module::collect(NamedTensorList& out, const std::string& prefix, bool buffers, bool recurse) const {
  for (const auto& [name, t] : buffers ? buffers_ : parameters_) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(out, prefix + name + ".", buffers, true);
}

namespace {
// Keeps the first occurrence of each tensor (a module shared by two parents lists its parameters once).
NamedTensorList unique_tensors(NamedTensorList all) {
  std::unordered_set<const detail::TensorImpl*> seen;
  NamedTensorList out;
  out.reserve(all.size());
  for (auto& entry : all)
    if (seen.insert(entry.second.impl()).second) out.push_back(std::move(entry));
  return out;
}
std::vector<Tensor> tensors_of(const NamedTensorList& named) {
  std::vector<Tensor> out;
  out.reserve(named.size());
  for (const auto& entry : named) out.push_back(entry.second);
  return out;
}
}  // namespace

NamedTensorList Module::named_parameters(bool recurse) const {
  NamedTensorList all;
  collect(all, "", false, recurse);
  return unique_tensors(std::move(all));
}
std::vector<Tensor> Module::parameters(bool recurse) const { return tensors_of(named_parameters(recurse)); }

NamedTensorList Module::named_buffers(bool recurse) const {
  NamedTensorList all;
  collect(all, "", true, recurse);
  return unique_tensors(std::move(all));
}
std::vector<Tensor> Module::buffers(bool recurse) const { return tensors_of(named_buffers(recurse)); }

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  out.reserve(children_.size());
  for (const auto& entry : children_) out.push_back(entry.second);
  return out;
}

// ---- Modes and conversion ------------------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (const auto& entry : children_) entry.second->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

Module& Module::to(Dtype dtype) {
  NamedTensorList all;
  collect(all, "", false, true);
  collect(all, "", true, true);
  all = unique_tensors(std::move(all));
  // Convert everything first (the only step that can throw, on allocation), then swap the new
  // storage into the existing TensorImpls, so that every handle on them sees the change.
  std::vector<std::pair<detail::TensorImpl*, std::shared_ptr<detail::Storage>>> converted;
  for (const auto& [name, t] : all) {
    if (t.dtype() == dtype) continue;
    NoGradGuard no_grad;
    Tensor copy = t.to(dtype);
    converted.emplace_back(t.impl(), copy.impl()->storage);
  }
  for (auto& [impl, storage] : converted) {
    impl->storage = std::move(storage);
    impl->dtype = dtype;
    impl->grad = Tensor();
  }
  return *this;
}

// ---- State ---------------------------------------------------------------------------------------

namespace {
// The live (name, tensor) pairs behind a state dict: parameters then buffers, module by module.
void collect_state(const Module& m, const std::string& prefix, NamedTensorList& out) {
  for (const auto& [name, t] : m.named_parameters(false)) out.emplace_back(prefix + name, t);
  for (const auto& [name, t] : m.named_buffers(false)) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : m.named_children()) collect_state(*child, prefix + name + ".", out);
}

template <class Dst, class Src>
void convert_copy(Dst* dst, const Src* src, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<Dst>(src[i]);
}

// dst := src, element by element with dtype conversion; shapes are equal. Never throws.
void copy_values(const Tensor& dst, const Tensor& src) noexcept {
  detail::dispatch(dst.dtype(), [&](auto dst_tag) {
    using D = decltype(dst_tag);
    D* out = detail::arr<D>(dst).data();
    detail::dispatch(src.dtype(), [&](auto src_tag) {
      using S = decltype(src_tag);
      const auto& in = detail::arr<S>(src);
      convert_copy(out, in.data(), in.size());
    });
  });
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "\"" : ", \"") + n + "\"";
  return out;
}
}  // namespace

StateDict Module::state_dict() const {
  NamedTensorList live;
  collect_state(*this, "", live);
  StateDict out;
  for (auto& [name, t] : live) out.insert(name, t.detach());
  return out;
}

LoadStateDictResult Module::load_state_dict(const StateDict& dict, bool strict) {
  NamedTensorList live;
  collect_state(*this, "", live);

  LoadStateDictResult result;
  std::vector<std::string> problems;  // shape mismatches and undefined tensors: errors even when not strict
  std::unordered_set<std::string> own_names;
  for (const auto& [name, t] : live) {
    own_names.insert(name);
    if (!dict.contains(name)) {
      result.missing_keys.push_back(name);
      continue;
    }
    const Tensor& src = dict.at(name);
    if (!src.defined())
      problems.push_back("\"" + name + "\" is undefined in the state dict");
    else if (src.shape() != t.shape())
      problems.push_back("\"" + name + "\" has shape " + shape_str(src.shape()) + " in the state dict but " +
                         shape_str(t.shape()) + " in the model");
  }
  for (const auto& [name, t] : dict)
    if (!own_names.count(name)) result.unexpected_keys.push_back(name);

  const bool key_errors = strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty());
  if (key_errors || !problems.empty()) {
    std::ostringstream msg;
    msg << "load_state_dict: error(s) loading the state dict of " << type_name() << ", nothing was changed";
    if (strict && !result.missing_keys.empty()) msg << "; missing keys: " << quoted_list(result.missing_keys);
    if (strict && !result.unexpected_keys.empty()) msg << "; unexpected keys: " << quoted_list(result.unexpected_keys);
    for (const auto& p : problems) msg << "; size mismatch: " << p;
    throw Error(msg.str());
  }
  for (const auto& [name, t] : live)
    if (dict.contains(name)) copy_values(t, dict.at(name));
  return result;
}

void Module::save(const std::string& path) const { save_safetensors(path, state_dict().items()); }

void Module::load(const std::string& path) {
  StateDict dict(load_safetensors(path));
  try {
    load_state_dict(dict, true);
  } catch (const Error& e) {
    detail::fail("load('", path, "'): ", e.what());
  }
}

// ---- Description ---------------------------------------------------------------------------------

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  // Drop namespaces ("xgrad::nn::Linear" -> "Linear"), but not inside template arguments.
  const std::size_t template_start = name.find('<');
  const std::size_t last_colon = name.rfind("::", template_start);
  if (last_colon != std::string::npos) name.erase(0, last_colon + 2);
  return name;
}

namespace {
// Indents every line after the first by two spaces (PyTorch's _addindent).
std::string indent_continuation(const std::string& text) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  return out;
}
}  // namespace

std::string to_string(const Module& module) {
  std::vector<std::string> extra_lines;
  const std::string extra = module.extra_repr();
  if (!extra.empty()) {
    std::istringstream in(extra);
    for (std::string line; std::getline(in, line);) extra_lines.push_back(line);
  }
  std::vector<std::string> child_lines;
  for (const auto& [name, child] : module.named_children())
    child_lines.push_back("(" + name + "): " + indent_continuation(to_string(*child)));

  std::string out = module.type_name() + "(";
  if (extra_lines.size() == 1 && child_lines.empty()) {
    out += extra_lines.front();
  } else if (!extra_lines.empty() || !child_lines.empty()) {
    for (const auto& line : extra_lines) out += "\n  " + line;
    for (const auto& line : child_lines) out += "\n  " + line;
    out += "\n";
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << to_string(module); }

}  // namespace xgrad::nn
