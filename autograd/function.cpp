// The machinery behind autograd::Function: the node a custom op records, its context, and the checks
// on what a user's backward returns.
#include "function.hpp"

#include <cxxabi.h>

#include <cstdlib>

#include "detail/op_support.hpp"
#include "node.hpp"

namespace xgrad::autograd {

using xgrad::detail::fail;
using xgrad::detail::SavedTensor;

namespace {
struct TensorMeta {
  Shape shape;
  Dtype dtype = kFloat32;
  bool defined = false;
};

TensorMeta meta_of(const Tensor& t) {
  if (!t.defined()) return {};
  return {t.shape(), t.dtype(), true};
}

// PyTorch's rule for a gradient whose shape differs from its input's: fine if the input broadcasts to
// it (the gradient is then summed down), an error otherwise.
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t lead = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[lead + i]) return false;
  return true;
}
}  // namespace

// ---- The node ------------------------------------------------------------------------------------
class FunctionNode final : public Node {
 public:
  FunctionNode(const std::string* name, detail::FunctionBackward backward, std::vector<bool> is_tensor_arg,
               const std::vector<Tensor>& inputs);

  std::string name() const override { return *name_; }
  TensorList apply(TensorList&& grads) override;
  void release_variables() override;
  std::string describe() const override;
  bool output_shape(std::uint32_t output_nr, Shape& shape) const override {
    if (output_nr >= output_meta.size() || !output_meta[output_nr].defined) return false;
    shape = output_meta[output_nr].shape;
    return true;
  }

  AutogradContext ctx;
  std::vector<TensorMeta> output_meta;

 private:
  // Maps what backward returned to one gradient per Tensor argument (accepting LibTorch's form with
  // one entry per forward argument).
  TensorList per_tensor_input(TensorList&& result) const;

  const std::string* name_;
  detail::FunctionBackward backward_;
  std::vector<bool> is_tensor_arg_;
  std::vector<TensorMeta> input_meta_;
};

struct AutogradContext::State {
  const std::string* name = nullptr;
  std::size_t num_tensor_inputs = 0;
  const FunctionNode* owner = nullptr;  // null when forward runs without recording
  std::vector<Tensor> to_save;          // what forward asked to save, until the node exists
  std::vector<SavedTensor> saved;       // after the node exists: outputs kept without a cycle
  std::vector<bool> saved_defined;
  std::vector<Tensor> non_differentiable;  // marked by forward, until finish() reads them
  bool converted = false;
};

AutogradContext::AutogradContext() : state_(std::make_unique<State>()) {}
AutogradContext::~AutogradContext() = default;

void AutogradContext::save_for_backward(std::vector<Tensor> tensors) {
  state_->to_save = std::move(tensors);
  state_->saved.clear();
  state_->saved_defined.clear();
  state_->converted = false;
}

std::vector<Tensor> AutogradContext::saved() const {
  const State& s = *state_;
  if (s.owner && s.owner->released()) s.owner->throw_released();
  if (!s.converted) return s.to_save;
  std::vector<Tensor> out;
  out.reserve(s.saved.size());
  for (std::size_t i = 0; i < s.saved.size(); ++i)
    out.push_back(s.saved_defined[i] ? s.saved[i].unpack(s.owner) : Tensor());
  return out;
}

void AutogradContext::mark_non_differentiable(std::vector<Tensor> outputs) {
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (!outputs[i].defined())
      fail(state_->name ? *state_->name : std::string("Function"), ": mark_non_differentiable: tensor ", i,
           " is undefined");
  state_->non_differentiable = std::move(outputs);
}

bool AutogradContext::needs_input_grad(std::size_t i) const {
  const State& s = *state_;
  if (i >= s.num_tensor_inputs)
    fail(s.name ? *s.name : std::string("Function"), ": needs_input_grad(", i, ") but forward has ",
         s.num_tensor_inputs, " Tensor argument(s)");
  return s.owner && s.owner->needs_input_grad(i);
}

FunctionNode::FunctionNode(const std::string* name, detail::FunctionBackward backward,
                           std::vector<bool> is_tensor_arg, const std::vector<Tensor>& inputs)
    : name_(name), backward_(backward), is_tensor_arg_(std::move(is_tensor_arg)) {
  input_meta_.reserve(inputs.size());
  for (const Tensor& t : inputs) input_meta_.push_back(meta_of(t));
}

TensorList FunctionNode::per_tensor_input(TensorList&& result) const {
  const std::size_t n_tensors = input_meta_.size();
  const std::size_t n_args = is_tensor_arg_.size();
  if (result.size() == n_tensors) return std::move(result);
  bool extra_undefined = result.size() > n_args;
  for (std::size_t k = n_args; k < result.size(); ++k) extra_undefined = extra_undefined && !result[k].defined();
  if (result.size() == n_args || extra_undefined) {
    TensorList out;
    out.reserve(n_tensors);
    for (std::size_t k = 0; k < n_args; ++k) {
      if (is_tensor_arg_[k]) {
        out.push_back(std::move(result[k]));
      } else if (result[k].defined()) {
        fail(name(), ": backward returned a defined gradient at position ", k,
             ", but argument ", k, " of forward is not a Tensor (return an undefined Tensor there)");
      }
    }
    return out;
  }
  std::string expected = std::to_string(n_tensors) + " (one per Tensor argument of forward)";
  if (n_args != n_tensors) expected += " or " + std::to_string(n_args) + " (one per argument of forward)";
  fail(name(), ": backward returned ", result.size(), " gradient(s), expected ", expected);
}

TensorList FunctionNode::apply(TensorList&& grads) {
  // An output that received no gradient gets zeros, so backward can use every grad_output.
  for (std::size_t k = 0; k < grads.size() && k < output_meta.size(); ++k)
    if (!grads[k].defined()) grads[k] = zeros(output_meta[k].shape, output_meta[k].dtype);
  TensorList result = per_tensor_input(backward_(&ctx, std::move(grads)));
  for (std::size_t i = 0; i < result.size(); ++i) {
    Tensor& g = result[i];
    if (!g.defined()) continue;
    if (!needs_input_grad(i)) {  // nobody wants it (as in PyTorch, not validated)
      g = Tensor();
      continue;
    }
    const TensorMeta& in = input_meta_[i];
    if (g.dtype() != in.dtype)
      fail(name(), ": backward returned a gradient of dtype ", g.dtype(), " for input ", i, " of dtype ", in.dtype,
           " (shapes ", shape_str(g.shape()), " and ", shape_str(in.shape), ")");
    const Shape gs = g.shape();
    if (gs != in.shape) {
      if (!broadcasts_to(in.shape, gs))
        fail(name(), ": backward returned a gradient of shape ", shape_str(gs), " for input ", i, " of shape ",
             shape_str(in.shape));
      g = sum_to(g, in.shape);
    }
  }
  return result;
}

void FunctionNode::release_variables() {
  AutogradContext::State& s = *ctx.state_;
  s.saved.clear();
  s.saved_defined.clear();
  s.to_save.clear();
}

std::string FunctionNode::describe() const {
  std::string out;
  for (std::size_t i = 0; i < input_meta_.size(); ++i) {
    if (i) out += ", ";
    const TensorMeta& m = input_meta_[i];
    out += m.defined ? shape_str(m.shape) + " " + dtype_name(m.dtype) : std::string("undefined");
  }
  return out;
}

}  // namespace xgrad::autograd

// ---- One apply() ---------------------------------------------------------------------------------
namespace xgrad::detail {

using autograd::Edge;
using autograd::AutogradContext;
using autograd::FunctionNode;

std::string demangle(const char* mangled_name) {
  int status = 0;
  char* readable = abi::__cxa_demangle(mangled_name, nullptr, nullptr, &status);
  std::string out = status == 0 && readable ? readable : mangled_name;
  std::free(readable);
  return out;
}

FunctionCall::FunctionCall(const std::string* name, FunctionBackward backward, std::vector<Tensor> inputs,
                           std::vector<bool> is_tensor_arg, FunctionJvp jvp)
    : jvp_(jvp) {
  const std::size_t num_tensor_inputs = inputs.size();
  if (forward_ad_enabled()) [[unlikely]]
    dual_inputs_ = inputs;
  AutogradContext* ctx = nullptr;
  if (needs_grad(inputs)) {
    node_ = std::make_shared<FunctionNode>(name, backward, std::move(is_tensor_arg), inputs);
    std::vector<Edge> edges;
    edges.reserve(inputs.size());
    for (const Tensor& t : inputs) edges.push_back(autograd::gradient_edge(t));
    node_->set_next_edges(std::move(edges));
    ctx = &node_->ctx;
    ctx->state_->owner = node_.get();
    inputs_ = std::move(inputs);
  } else {
    local_context_ = std::make_unique<AutogradContext>();
    ctx = local_context_.get();
  }
  ctx->state_->name = name;
  ctx->state_->num_tensor_inputs = num_tensor_inputs;
}

FunctionCall::~FunctionCall() = default;

AutogradContext* FunctionCall::context() noexcept { return node_ ? &node_->ctx : local_context_.get(); }

std::vector<Tensor> FunctionCall::finish(std::vector<Tensor> outputs) {
  autograd::AutogradContext::State& s = *context()->state_;
  for (std::size_t k = 0; k < outputs.size(); ++k)
    if (!outputs[k].defined()) fail(*s.name, ": forward returned an undefined tensor as output ", k);
  if (outputs.empty()) fail(*s.name, ": forward returned no outputs");
  if (!node_) return with_tangents(std::move(outputs));

  // An output must be a fresh tensor to take this node as its grad_fn: one that is an input, another
  // output or already has history becomes a new handle on the same values.
  const std::vector<Tensor> returned = outputs;
  auto is_input = [&](const Tensor& t) {
    for (const Tensor& in : inputs_)
      if (in.is_same(t)) return true;
    return false;
  };
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    Tensor& out = outputs[k];
    bool alias = out.grad_fn() != nullptr || out.requires_grad() || is_input(out);
    for (std::size_t j = 0; j < k && !alias; ++j) alias = returned[j].is_same(out);
    if (alias) out = share_storage(out);
  }
  for (std::size_t m = 0; m < s.non_differentiable.size(); ++m) {
    bool found = false;
    for (const Tensor& r : returned) found = found || r.is_same(s.non_differentiable[m]);
    if (!found)
      fail(*s.name, ": mark_non_differentiable: tensor ", m, " (shape ",
           shape_str(s.non_differentiable[m].shape()), ") is not an output of forward");
  }
  auto non_differentiable = [&](std::size_t k) {
    for (const Tensor& t : s.non_differentiable)
      if (t.is_same(returned[k])) return true;
    return false;
  };
  node_->set_num_outputs(static_cast<std::uint32_t>(outputs.size()));
  node_->output_meta.reserve(outputs.size());
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    // A non-differentiable output gets no history; its gradient slot stays empty, which apply()
    // turns into zeros of its shape.
    if (!non_differentiable(k)) set_history(outputs[k], node_, static_cast<std::uint32_t>(k));
    node_->output_meta.push_back(autograd::meta_of(outputs[k]));
  }
  s.non_differentiable.clear();

  // A saved input is kept as is (its own history makes create_graph work through it). A saved output
  // keeps only its values and a weak link to this node: no node -> output -> node cycle.
  s.saved.resize(s.to_save.size());
  s.saved_defined.resize(s.to_save.size());
  for (std::size_t i = 0; i < s.to_save.size(); ++i) {
    const Tensor& t = s.to_save[i];
    s.saved_defined[i] = t.defined();
    if (!t.defined()) continue;
    std::size_t k = 0;
    while (k < returned.size() && !returned[k].is_same(t)) ++k;
    if (k < returned.size() && !is_input(t))
      s.saved[i].save_output(outputs[k]);
    else
      s.saved[i].save_input(t);
  }
  s.to_save.clear();
  s.converted = true;
  return with_tangents(std::move(outputs));
}

std::vector<Tensor> FunctionCall::with_tangents(std::vector<Tensor> outputs) {
  if (dual_inputs_.empty()) [[likely]]
    return outputs;
  bool dual = false;
  for (const Tensor& in : dual_inputs_) dual |= tangent_of(in).defined();
  if (!dual) return outputs;
  // The outputs get tangents of their own: one that is an input becomes a new handle first.
  for (Tensor& out : outputs)
    for (const Tensor& in : dual_inputs_)
      if (in.is_same(out)) out = share_storage(out);
  apply_custom_jvp(*context()->state_->name, jvp_, context(), dual_inputs_, outputs);
  return outputs;
}

}  // namespace xgrad::detail
