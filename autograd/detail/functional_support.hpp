// Shared steps of autograd::functional's transforms (autograd/functional*.cpp), after PyTorch's
// torch/autograd/functional.py helpers (_grad_preprocess, _check_requires_grad, _validate_v,
// _autograd_grad, _fill_in_zeros, _grad_postprocess). Internal.
#pragma once
#include <string>
#include <vector>

#include "../functional.hpp"

namespace xgrad::autograd::functional::support {

using Tensors = std::vector<Tensor>;

// Every input defined and floating point; at least one.
void check_inputs(const std::string& name, const Tensors& inputs);
// PyTorch's _grad_preprocess: with create_graph, a tensor that requires grad is passed on as a
// differentiable alias (results stay differentiable with respect to it); every other one is detached
// and made to require grad when need_graph.
Tensors grad_preprocess(const Tensors& ts, bool create_graph, bool need_graph);
// Detaches every defined result unless create_graph.
Tensors grad_postprocess(Tensors ts, bool create_graph);
// Runs the user function and checks what it returned (at least one tensor, all defined).
Tensors call(const std::string& name, const detail::UserFunction& fn, const Tensors& inputs);
// strict: every output must require grad.
void check_outputs_require_grad(const std::string& name, const Tensors& outputs, bool strict);
// One v per reference (output or input): count, shapes and dtypes must match.
void validate_v(const std::string& name, const Tensors& v, const Tensors& refs, const char* refs_name);
// autograd::grad over the outputs that require grad (allow_unused): undefined gradients where an
// input is not reached, all undefined when no output requires grad. Empty grad_outputs: ones.
Tensors autograd_grad(const Tensors& outputs, const Tensors& inputs, const Tensors& grad_outputs, bool create_graph,
                      bool retain_graph);

enum class Stage { Back, BackTrick, DoubleBack, DoubleBackTrick };
// Undefined gradients become zeros shaped like refs[i], or errors in strict mode.
Tensors fill_in_zeros(const std::string& name, Tensors grads, const Tensors& refs, bool strict, bool create_graph,
                      Stage stage);

// True while a forward-mode level is open (a transform nested in another one's forward-mode run):
// transforms then use reverse mode only, since levels do not nest.
bool dual_level_open() noexcept;
// The identity basis for a tensor of shape `shape`: shape [numel, shape...].
Tensor identity_basis(const Shape& shape, Dtype dtype);
// t with shape `dims`: t itself when it has that shape already (reshape copies).
Tensor reshaped(const Tensor& t, const std::vector<std::int64_t>& dims);
// a ++ b as an int64 shape vector.
std::vector<std::int64_t> concat_shapes(const Shape& a, const Shape& b);

}  // namespace xgrad::autograd::functional::support
