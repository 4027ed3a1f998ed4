// autograd::functional: vjp, jvp, hvp, vhp (jacobian and hessian: functional_jacobian.cpp).
// Semantics follow torch.autograd.functional; jvp and hvp use forward mode (forward over reverse for
// hvp) instead of PyTorch's double-backward trick, which they fall back to only when a dual level is
// already open (a transform nested in a forward-mode one: levels do not nest).
#include "functional.hpp"

#include "detail/forward_ad.hpp"
#include "detail/functional_support.hpp"
#include "engine.hpp"
#include "error.hpp"
#include "forward_ad.hpp"
#include "grad_mode.hpp"
#include "ops.hpp"

namespace xgrad::autograd::functional::detail {

using ::xgrad::detail::fail;
using namespace support;

namespace {

// The v of jvp/hvp/vhp: one per input, or ones when there is a single one-element input.
Tensors input_directions(const std::string& name, const Tensors& v, const Tensors& inputs, bool create_graph) {
  if (v.empty()) {
    if (inputs.size() != 1 || inputs[0].numel() != 1)
      fail(name, ": The vector v can only be empty if the input to the user-provided function is a single Tensor "
           "with a single element (got ", inputs.size(), " inputs, the first of shape ", shape_str(inputs[0].shape()),
           ").");
    return {ones_like(inputs[0])};
  }
  Tensors vv = grad_preprocess(v, create_graph, /*need_graph=*/false);
  validate_v(name, vv, inputs, "input");
  return vv;
}

// hvp and vhp: fn must return one Tensor with one element.
void check_scalar_output(const std::string& name, const UserFunction& fn, const Tensors& outputs) {
  if (fn.returns_list || outputs.size() != 1) fail(name, ": The function given to ", name, " should return a single Tensor");
  if (outputs[0].numel() != 1)
    fail(name, ": The Tensor returned by the function given to ", name,
         " should contain a single element (it has shape ", shape_str(outputs[0].shape()), ")");
}

// strict: a gradient that is undefined (output independent of the input) or, computed with
// create_graph, independent of the inputs (the function is linear in that input).
void check_jacobian_for_hessian(const std::string& name, const Tensors& jac, bool strict) {
  if (!strict) return;
  for (std::size_t i = 0; i < jac.size(); ++i) {
    if (!jac[i].defined())
      fail(name, ": The output of the user-provided function is independent of input ", i,
           ". This is not allowed in strict mode.");
    if (!jac[i].requires_grad())
      fail(name, ": While computing the hessian, found that the jacobian of the user-provided function with respect "
           "to input ", i, " is independent of the input. This is not allowed in strict mode. You should ensure that "
           "your function is twice differentiable and that the jacobian depends on the inputs (this would be "
           "violated by a linear function for example).");
  }
}

// PyTorch's jvp: the vjp u -> Jᵀu is linear in u, so differentiating it with respect to u (at u = 0)
// along v gives J·v. Used when forward mode is not available (a dual level is already open).
JvpResult jvp_by_double_backward(const std::string& name, const Tensors& inputs, const Tensors& v,
                                 const Tensors& outputs, const FunctionalOptions& o, bool caller_grad_mode) {
  Tensors grad_outputs;
  for (const Tensor& out : outputs) grad_outputs.push_back(zeros_like(out).requires_grad_(true));
  Tensors grad_inputs = autograd_grad(outputs, inputs, grad_outputs, /*create_graph=*/true, /*retain_graph=*/true);
  if (o.strict)
    for (std::size_t i = 0; i < grad_inputs.size(); ++i)
      if (!grad_inputs[i].defined() || !grad_inputs[i].requires_grad())
        fail(name, ": The gradient with respect to input ", i,
             " is independent of the inputs of the user-provided function. This is not allowed in strict mode.");
  Tensors result;
  {
    AutoGradMode mode(o.create_graph || caller_grad_mode);
    result = autograd_grad(grad_inputs, grad_outputs, v, o.create_graph, o.create_graph);
    result = fill_in_zeros(name, std::move(result), outputs, o.strict, o.create_graph, Stage::BackTrick);
  }
  return {grad_postprocess(outputs, o.create_graph), grad_postprocess(std::move(result), o.create_graph)};
}

}  // namespace

VjpResult vjp(const UserFunction& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
              const FunctionalOptions& o) {
  const std::string name = "autograd::functional::vjp";
  check_inputs(name, inputs);
  const bool caller_grad_mode = is_grad_enabled();
  AutoGradMode enable(true);
  Tensors in = grad_preprocess(inputs, o.create_graph, /*need_graph=*/true);
  Tensors outputs = call(name, fn, in);
  check_outputs_require_grad(name, outputs, o.strict);
  Tensors vv;
  if (!v.empty()) {
    vv = grad_preprocess(v, o.create_graph, /*need_graph=*/false);
    validate_v(name, vv, outputs, "output");
  } else if (outputs.size() != 1 || outputs[0].numel() != 1) {
    fail(name, ": The vector v can only be empty if the user-provided function returns a single Tensor with a "
         "single element (it returns ", outputs.size(), " tensors, the first of shape ",
         shape_str(outputs[0].shape()), ").");
  }
  Tensors result;
  {
    AutoGradMode mode(o.create_graph || caller_grad_mode);
    result = autograd_grad(outputs, in, vv, o.create_graph, o.create_graph);
    result = fill_in_zeros(name, std::move(result), in, o.strict, o.create_graph, Stage::Back);
  }
  return {grad_postprocess(std::move(outputs), o.create_graph), grad_postprocess(std::move(result), o.create_graph)};
}

JvpResult jvp(const UserFunction& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
              const FunctionalOptions& o) {
  const std::string name = "autograd::functional::jvp";
  check_inputs(name, inputs);
  const bool caller_grad_mode = is_grad_enabled();
  AutoGradMode enable(true);
  // The inputs require grad as in PyTorch (fn may call autograd::grad on them).
  Tensors in = grad_preprocess(inputs, o.create_graph, /*need_graph=*/true);
  Tensors vv = input_directions(name, v, in, o.create_graph);
  if (dual_level_open()) {
    Tensors outputs = call(name, fn, in);
    check_outputs_require_grad(name, outputs, o.strict);
    return jvp_by_double_backward(name, in, vv, outputs, o, caller_grad_mode);
  }
  Tensors outputs, tangents;
  {
    forward_ad::DualLevel level;
    Tensors duals;
    for (std::size_t i = 0; i < in.size(); ++i) duals.push_back(forward_ad::make_dual(in[i], vv[i]));
    Tensors raw = call(name, fn, duals);
    check_outputs_require_grad(name, raw, o.strict);
    for (const Tensor& out : raw) {
      forward_ad::UnpackedDual u = forward_ad::unpack_dual(out);
      outputs.push_back(out);
      tangents.push_back(std::move(u.tangent));
    }
  }
  for (std::size_t k = 0; k < tangents.size(); ++k) {
    if (!tangents[k].defined()) {
      if (o.strict)
        fail(name, ": Output ", k, " of the user-provided function is independent of the inputs. This is not "
             "allowed in strict mode.");
      tangents[k] = zeros_like(outputs[k]);
    } else if (o.strict && o.create_graph && !tangents[k].requires_grad()) {
      fail(name, ": The jacobian of the user-provided function is independent of the inputs for output ", k,
           ". This is not allowed in strict mode when create_graph=True.");
    }
  }
  return {grad_postprocess(std::move(outputs), o.create_graph), grad_postprocess(std::move(tangents), o.create_graph)};
}

HvpResult hvp(const UserFunction& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
              const FunctionalOptions& o) {
  const std::string name = "autograd::functional::hvp";
  check_inputs(name, inputs);
  const bool caller_grad_mode = is_grad_enabled();
  AutoGradMode enable(true);
  Tensors in = grad_preprocess(inputs, o.create_graph, /*need_graph=*/true);
  Tensors vv = input_directions(name, v, in, o.create_graph);
  // The gradient's graph is needed to tell (strict) whether it depends on the inputs.
  const bool grad_graph = o.create_graph || o.strict;
  if (dual_level_open()) {
    // PyTorch's way: double backward, then the double-backward trick for the forward product.
    Tensors outputs = call(name, fn, in);
    check_outputs_require_grad(name, outputs, o.strict);
    check_scalar_output(name, fn, outputs);
    Tensors jac = autograd_grad(outputs, in, {}, /*create_graph=*/true, /*retain_graph=*/true);
    check_jacobian_for_hessian(name, jac, o.strict);
    Tensors grad_jac;
    for (const Tensor& x : in) grad_jac.push_back(zeros_like(x).requires_grad_(true));
    Tensors double_back = autograd_grad(jac, in, grad_jac, /*create_graph=*/true, /*retain_graph=*/true);
    Tensors result;
    {
      AutoGradMode mode(o.create_graph || caller_grad_mode);
      result = autograd_grad(double_back, grad_jac, vv, o.create_graph, o.create_graph);
      result = fill_in_zeros(name, std::move(result), in, o.strict, o.create_graph, Stage::DoubleBackTrick);
    }
    return {grad_postprocess(outputs, o.create_graph)[0], grad_postprocess(std::move(result), o.create_graph)};
  }
  // Forward over reverse: the gradient computed from inputs carrying v as tangents carries H·v.
  Tensor output;
  Tensors result(in.size());
  {
    forward_ad::DualLevel level;
    Tensors duals;
    for (std::size_t i = 0; i < in.size(); ++i) duals.push_back(forward_ad::make_dual(in[i], vv[i]));
    Tensors outputs = call(name, fn, duals);
    check_outputs_require_grad(name, outputs, o.strict);
    check_scalar_output(name, fn, outputs);
    output = outputs[0];
    Tensors jac;
    {
      AutoGradMode mode(grad_graph || caller_grad_mode);
      jac = autograd_grad(outputs, duals, {}, grad_graph, grad_graph);
    }
    check_jacobian_for_hessian(name, jac, o.strict);
    for (std::size_t i = 0; i < jac.size(); ++i)
      if (jac[i].defined()) result[i] = forward_ad::unpack_dual(jac[i]).tangent;
  }
  result = fill_in_zeros(name, std::move(result), in, o.strict, o.create_graph, Stage::DoubleBack);
  return {grad_postprocess({output}, o.create_graph)[0], grad_postprocess(std::move(result), o.create_graph)};
}

VhpResult vhp(const UserFunction& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor>& v,
              const FunctionalOptions& o) {
  const std::string name = "autograd::functional::vhp";
  check_inputs(name, inputs);
  const bool caller_grad_mode = is_grad_enabled();
  AutoGradMode enable(true);
  Tensors in = grad_preprocess(inputs, o.create_graph, /*need_graph=*/true);
  Tensors vv = input_directions(name, v, in, o.create_graph);
  Tensors outputs = call(name, fn, in);
  check_outputs_require_grad(name, outputs, o.strict);
  check_scalar_output(name, fn, outputs);
  // Reverse over reverse, as PyTorch: vᵀ·H is the gradient of ⟨∇f, v⟩.
  Tensors jac = autograd_grad(outputs, in, {}, /*create_graph=*/true, /*retain_graph=*/true);
  check_jacobian_for_hessian(name, jac, o.strict);
  Tensors result;
  {
    AutoGradMode mode(o.create_graph || caller_grad_mode);
    result = autograd_grad(jac, in, vv, o.create_graph, o.create_graph);
    result = fill_in_zeros(name, std::move(result), in, o.strict, o.create_graph, Stage::DoubleBack);
  }
  return {grad_postprocess(outputs, o.create_graph)[0], grad_postprocess(std::move(result), o.create_graph)};
}

}  // namespace xgrad::autograd::functional::detail
