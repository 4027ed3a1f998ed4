// optim::Optimizer: the base every optimizer shares. It owns the parameter list (the same Tensor
// handles the model holds), the per-parameter state (step count and named buffers such as momentum
// or Adam's moments) and everything generic around it: step() validation, zero_grad, the learning
// rate, state_dict / load_state_dict and save / load in the safetensors format.
//
// optim knows nothing of nn: an optimizer takes a std::vector<Tensor>.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/safetensors.hpp"
#include "../autograd/tensor.hpp"

namespace xgrad::optim {

// An optimizer's state as ordered (name, Tensor) pairs, named like PyTorch's flattened state dict:
//   "state.<i>.<buffer>"        a buffer of parameter i (e.g. "state.0.exp_avg"), in its dtype
//   "state.<i>.step"            the step count of parameter i (float64, 0-d), for Adam and RMSprop
//   "param_groups.0.<hyper>"    the hyper-parameters (float64; 0-d, betas of shape [2], flags 0/1)
//   "param_groups.0.params"     the parameter indices 0..n-1 (float64, 1-D), fixing the count
using StateDict = NamedTensors;

// State of one parameter. `buffers` has one slot per name of Optimizer::buffer_names(); a slot stays
// undefined until the optimizer needs it (state is allocated lazily, on the first step).
struct ParamState {
  std::int64_t step = 0;
  std::vector<Tensor> buffers;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Schedulers keep a reference and state buffers must not be shared: neither copyable nor movable.
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter whose gradient is defined (the others are skipped, like PyTorch).
  // Every gradient and state buffer is checked before any parameter changes.
  void step();
  // Drops every gradient (set_to_none, PyTorch's default); with set_to_none = false the gradients
  // become zero tensors instead.
  void zero_grad(bool set_to_none = true);

  double lr() const noexcept { return lr_; }
  void set_lr(double lr);

  const std::vector<Tensor>& parameters() const noexcept { return params_; }
  // "SGD", "Adam", "AdamW", "RMSprop".
  const std::string& name() const noexcept { return name_; }

  // A deep copy of the state: later steps do not change a returned dict.
  StateDict state_dict() const;
  // Restores buffers, step counts and hyper-parameters (learning rate included, like PyTorch).
  // Validates everything first — unknown, missing and misshaped entries are named in one Error —
  // and changes nothing when it throws. Buffers are copied (and cast to the parameter's dtype).
  void load_state_dict(const StateDict& state);
  // The state_dict in a safetensors file (atomic write); the file's metadata names the optimizer.
  void save(const std::string& path) const;
  void load(const std::string& path);

 protected:
  // Hyper-parameters by name; a scalar has one value, betas two.
  using HyperValues = std::map<std::string, std::vector<double>>;

  Optimizer(std::vector<Tensor> params, double lr, std::string name);

  // Throws "<name>: invalid learning rate ..." unless lr >= 0.
  void check_lr(double lr) const;
  // Throws "<name>: invalid <what> <value> (<requirement>)".
  [[noreturn]] void fail_value(const char* what, double value, const char* requirement) const;

  // ---- What a concrete optimizer provides ----------------------------------------------------
  // Names of the per-parameter buffers, one slot each in ParamState::buffers.
  virtual std::vector<std::string> buffer_names() const = 0;
  // Whether ParamState::step is meaningful (and saved): Adam and RMSprop count steps, SGD does not.
  virtual bool counts_steps() const = 0;
  // The hyper-parameters other than lr, in declaration order.
  virtual std::vector<std::pair<std::string, std::vector<double>>> hyper_parameters() const = 0;
  // Checks hyper-parameters read from a state dict (lr included) the way the constructor does;
  // throws on a missing or invalid value. Must not change the optimizer.
  virtual void check_hyper_parameters(const HyperValues& values) const = 0;
  // Applies values that check_hyper_parameters accepted (lr is applied by the base). Must not throw.
  virtual void apply_hyper_parameters(const HyperValues& values) noexcept = 0;
  // Buffers that must be present in a parameter's loaded state once it has stepped, given the
  // hyper-parameters being loaded (e.g. Adam's max_exp_avg_sq under amsgrad).
  virtual std::vector<std::string> required_buffers(const HyperValues& values) const = 0;
  // Updates one parameter in place from its gradient (same shape and dtype, checked), with its
  // state (step already incremented when counts_steps()). One fused pass over raw memory.
  virtual void update(Tensor& param, const Tensor& grad, ParamState& state) = 0;

  // Slot `slot` of `state`, allocated for `param` on first use (zero-filled when `zero`, else
  // uninitialised). Sets `fresh` when it was just allocated.
  Tensor& buffer(ParamState& state, std::size_t slot, const Tensor& param, bool zero, bool* fresh = nullptr);

 private:
  void check_step_inputs() const;

  std::vector<Tensor> params_;
  std::vector<ParamState> state_;
  double lr_;
  std::string name_;
};

}  // namespace xgrad::optim
