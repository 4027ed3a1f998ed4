// nn::Module: the base of every layer and model. It owns a registry of named parameters, buffers and
// submodules, from which everything generic follows: parameter lists for optimizers, train/eval,
// dtype conversion, state dicts, saving and loading, printing.
#pragma once
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../autograd/tensor.hpp"
#include "state_dict.hpp"

namespace xgrad::nn {

class Module;
using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;
using NamedModuleList = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

// What a non-strict load_state_dict skipped (a strict one throws instead).
struct LoadStateDictResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // A module is held by std::shared_ptr and never copied: a copy would share its parameters.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  virtual Tensor forward(const Tensor& input) = 0;
  // Runs forward and remembers the output's shape (shown by nn::summary).
  Tensor operator()(const Tensor& input);

  // ---- Registry ------------------------------------------------------------------------------
  // Parameters with dotted names ("fc1.weight"), own ones first, then each child's, in registration
  // order. A tensor registered in two places is listed once.
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensorList named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensorList named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  const NamedModuleList& named_children() const noexcept { return children_; }

  // ---- Modes and conversion -------------------------------------------------------------------
  void train(bool on = true);  // this module and every descendant
  void eval() { train(false); }
  bool is_training() const noexcept { return training_; }
  void zero_grad();  // drops every parameter's gradient
  // Converts every parameter and buffer in place: existing handles (the `weight` member, tensors
  // from an earlier parameters() call, optimizers) see the new dtype. Gradients are dropped.
  Module& to(Dtype dtype);

  // ---- State -----------------------------------------------------------------------------------
  // Parameters then buffers of each module, children after their parent, with dotted names. The
  // tensors share storage with the module's (detached: no gradient history).
  StateDict state_dict() const;
  // Copies `dict` into the existing tensors (converting dtypes). A shape mismatch always throws;
  // with `strict`, a missing or unexpected key throws too. The error lists every bad key at once,
  // and a throwing call changes nothing.
  LoadStateDictResult load_state_dict(const StateDict& dict, bool strict = true);
  void save(const std::string& path) const;  // state_dict() as a safetensors file
  void load(const std::string& path);        // strict load_state_dict from a safetensors file

  // ---- Description ---------------------------------------------------------------------------
  // The class name as printed ("Linear"); by default the demangled C++ type without namespaces.
  virtual std::string type_name() const;
  // The arguments shown inside the parentheses when printing, e.g. "in_features=3, out_features=2, bias=true".
  virtual std::string extra_repr() const { return {}; }
  // The shape of the last output of operator(), if it ran.
  const std::optional<Shape>& output_shape() const noexcept { return output_shape_; }

 protected:
  // Registers a leaf tensor as a parameter (and makes it require grad); returns the same handle.
  // A name that is empty, contains '.', or is already used by a parameter, buffer or submodule throws.
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  // A tensor that is part of the state (saved, converted by to()) but not trained.
  Tensor register_buffer(const std::string& name, Tensor tensor);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from nn::Module");
    add_child(name, module);
    return module;
  }
  // Records the output shape; for modules that override operator()-like entry points (losses).
  void remember_output_shape(const Tensor& output);

 private:
  void check_new_name(const char* what, const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  // Appends this subtree's entries to `out` with `prefix`; `which` selects parameters or buffers.
  void collect(NamedTensorList& out, const std::string& prefix, bool buffers, bool recurse) const;

  NamedTensorList parameters_;
  NamedTensorList buffers_;
  NamedModuleList children_;
  std::optional<Shape> output_shape_;
  bool training_ = true;
};

// Prints the module tree like PyTorch:
//   Sequential(
//     (0): Linear(in_features=784, out_features=256, bias=true)
//     (1): ReLU()
//   )
std::ostream& operator<<(std::ostream& os, const Module& module);
std::string to_string(const Module& module);

}  // namespace xgrad::nn
