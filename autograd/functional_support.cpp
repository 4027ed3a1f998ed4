// autograd::functional's shared steps (see detail/functional_support.hpp).
#include "detail/functional_support.hpp"

#include <algorithm>

#include "detail/forward_ad.hpp"
#include "engine.hpp"
#include "error.hpp"
#include "grad_mode.hpp"
#include "ops.hpp"

namespace xgrad::autograd::functional::support {

using ::xgrad::detail::fail;

void check_inputs(const std::string& name, const Tensors& inputs) {
  if (inputs.empty()) fail(name, ": no inputs given (pass at least one tensor)");
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined()) fail(name, ": input ", i, " is an undefined tensor");
}

Tensors grad_preprocess(const Tensors& ts, bool create_graph, bool need_graph) {
  Tensors res;
  res.reserve(ts.size());
  for (const Tensor& t : ts) {
    if (!t.defined()) {  // reported by the caller's checks (validate_v)
      res.emplace_back();
    } else if (create_graph && t.requires_grad()) {
      // A new tensor object, differentiable with respect to t (PyTorch's view_as); it keeps t's
      // tangent when a dual level is open (reshape has a JVP rule).
      const Shape shape = t.shape();
      std::vector<std::int64_t> dims(shape.begin(), shape.end());
      res.push_back(reshape(t, dims));
    } else {
      Tensor d = t.detach();
      d.requires_grad_(need_graph);
      res.push_back(std::move(d));
    }
  }
  return res;
}

Tensors grad_postprocess(Tensors ts, bool create_graph) {
  if (create_graph) return ts;
  for (Tensor& t : ts)
    if (t.defined()) t = t.detach();
  return ts;
}

Tensors call(const std::string& name, const detail::UserFunction& fn, const Tensors& inputs) {
  Tensors outputs = fn.fn(inputs);
  if (outputs.empty()) fail(name, ": the user-provided function returned no tensor");
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (!outputs[i].defined()) fail(name, ": output ", i, " of the user-provided function is an undefined tensor");
  return outputs;
}

void check_outputs_require_grad(const std::string& name, const Tensors& outputs, bool strict) {
  if (!strict) return;
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (!outputs[i].requires_grad())
      fail(name, ": Output ", i,
           " of the user-provided function does not require gradients. The outputs must be computed in a "
           "differentiable manner from the input when running in strict mode.");
}

void validate_v(const std::string& name, const Tensors& v, const Tensors& refs, const char* refs_name) {
  if (v.size() != refs.size())
    fail(name, ": v is a list of invalid length: should be ", refs.size(), " (one per ", refs_name, ") but got ",
         v.size(), ".");
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!v[i].defined()) fail(name, ": Entry ", i, " in v is an undefined tensor.");
    if (v[i].shape() != refs[i].shape())
      fail(name, ": Entry ", i, " in v has invalid size: should be ", shape_str(refs[i].shape()), " but got ",
           shape_str(v[i].shape()), ".");
    if (v[i].dtype() != refs[i].dtype())
      fail(name, ": Entry ", i, " in v has dtype ", v[i].dtype(), " but should be ", refs[i].dtype(),
           " (convert with to()).");
  }
}

Tensors autograd_grad(const Tensors& outputs, const Tensors& inputs, const Tensors& grad_outputs, bool create_graph,
                      bool retain_graph) {
  Tensors outs, gouts;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined() || !outputs[i].requires_grad()) continue;
    outs.push_back(outputs[i]);
    gouts.push_back(grad_outputs.empty() || !grad_outputs[i].defined() ? ones_like(outputs[i]) : grad_outputs[i]);
  }
  if (outs.empty()) return Tensors(inputs.size());
  return autograd::grad(outs, inputs, gouts, retain_graph, create_graph, /*allow_unused=*/true);
}

Tensors fill_in_zeros(const std::string& name, Tensors grads, const Tensors& refs, bool strict, bool create_graph,
                      Stage stage) {
  for (std::size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) {
      if (strict) {
        switch (stage) {
          case Stage::Back:
            fail(name, ": The output of the user-provided function is independent of input ", i,
                 ". This is not allowed in strict mode.");
          case Stage::BackTrick:
            fail(name, ": The gradient with respect to the input is independent of entry ", i,
                 " in the grad_outputs when using the double backward trick to compute forward mode gradients. This "
                 "is not allowed in strict mode.");
          case Stage::DoubleBack:
            fail(name, ": The jacobian of the user-provided function is independent of input ", i,
                 ". This is not allowed in strict mode.");
          case Stage::DoubleBackTrick:
            fail(name, ": The hessian of the user-provided function is independent of entry ", i,
                 " in the grad_jacobian. This is not allowed in strict mode as it prevents from using the double "
                 "backward trick to replace forward mode AD.");
        }
      }
      grads[i] = zeros_like(refs[i]);
    } else if (strict && create_graph && !grads[i].requires_grad()) {
      if (stage == Stage::Back || stage == Stage::BackTrick)
        fail(name, ": The jacobian of the user-provided function is independent of input ", i,
             ". This is not allowed in strict mode when create_graph=True.");
      fail(name, ": The hessian of the user-provided function is independent of input ", i,
           ". This is not allowed in strict mode when create_graph=True.");
    }
  }
  return grads;
}

bool dual_level_open() noexcept { return ::xgrad::detail::forward_level.load(std::memory_order_relaxed) != 0; }

Tensor identity_basis(const Shape& shape, Dtype dtype) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  std::vector<std::int64_t> dims{static_cast<std::int64_t>(n)};
  dims.insert(dims.end(), shape.begin(), shape.end());
  return reshaped(eye(n, dtype), dims);
}

Tensor reshaped(const Tensor& t, const std::vector<std::int64_t>& dims) {
  const Shape shape = t.shape();
  if (shape.size() == dims.size() && std::equal(shape.begin(), shape.end(), dims.begin(),
                                                [](std::size_t a, std::int64_t b) { return static_cast<std::int64_t>(a) == b; }))
    return t;
  return reshape(t, dims);
}

std::vector<std::int64_t> concat_shapes(const Shape& a, const Shape& b) {
  std::vector<std::int64_t> s(a.begin(), a.end());
  s.insert(s.end(), b.begin(), b.end());
  return s;
}

}  // namespace xgrad::autograd::functional::support
