// autograd::functional::jacobian and hessian.
//
// Four ways to a Jacobian, all giving J[output i][input j] of shape out_i.shape ++ in_j.shape:
// - ReverseMode loop: one autograd::grad per output element (cotangent e_k), as PyTorch.
// - ReverseMode vectorized: the vjp u -> Jᵀu is linear in u, so one backward run with the cotangent
//   u = 0 carrying the whole identity basis as batched tangents (a BatchedDualLevel of numel(out_i))
//   returns gradients whose tangents are all rows of J at once (forward over reverse). One backward
//   run per output; its matrix-vector products become matrix-matrix products.
// - ForwardMode loop: one forward run per input element, with tangent e_k.
// - ForwardMode vectorized: one forward run per input with the identity basis as batched tangents.
// Under an already open dual level (a transform nested in a forward-mode one) both strategies use the
// ReverseMode loop: levels do not nest; the values are the same.
// Beyond PyTorch (which refuses these combinations): ForwardMode without vectorize, with strict or
// with create_graph, and strict together with vectorize all work here.
//
// hessian = the Jacobian of the gradient (as PyTorch): the outer Jacobian by the chosen strategy of
// x -> autograd::grad(fn(x), x). ForwardMode + vectorize is forward over reverse with the identity
// basis as tangents of x: one forward and one backward run whose tangents are H (the bench's W8).
#include <algorithm>
#include <cstdint>
#include <utility>

#include "detail/forward_ad.hpp"
#include "detail/functional_support.hpp"
#include "engine.hpp"
#include "error.hpp"
#include "forward_ad.hpp"
#include "functional.hpp"
#include "grad_mode.hpp"
#include "ops.hpp"

namespace xgrad::autograd::functional::detail {

using ::xgrad::detail::fail;
using namespace support;

namespace {

using Jacobian = std::vector<std::vector<Tensor>>;

enum class InputGrad { Keep, Require };

[[noreturn]] void independent(const std::string& name, std::size_t output, std::size_t input) {
  fail(name, ": Output ", output, " of the user-provided function is independent of input ", input,
       ". This is not allowed in strict mode.");
}

Tensor zero_block(const Tensor& out, const Tensor& in) {
  const std::vector<std::int64_t> dims = concat_shapes(out.shape(), in.shape());
  return zeros(Shape(dims.begin(), dims.end()), out.dtype());
}

// One output's rows, from the gradients of a backward run (rows: the gradient, or its batched
// tangent, of shape [numel(out), in.shape...]).
Tensor rows_to_block(const Tensor& rows, const Tensor& out, const Tensor& in) {
  return reshaped(rows, concat_shapes(out.shape(), in.shape()));
}

// Rows [n][in.shape] stacked into [n, in.shape...]. When the result will be differentiated (create_graph)
// or carries tangents (a dual level is open), by products with the basis vectors and sums: ops whose
// JVP rules, and whose backward formulas' JVP rules, forward over reverse relies on.
Tensor stack_rows(const Tensors& rows, bool differentiable) {
  if (!differentiable) return stack(rows, 0);
  const std::size_t n = rows.size();
  const Tensor basis = eye(n, rows[0].dtype());
  Tensor result;
  for (std::size_t k = 0; k < n; ++k) {
    std::vector<std::int64_t> dims{static_cast<std::int64_t>(n)};
    dims.insert(dims.end(), rows[k].shape().size(), 1);
    Tensor e = reshape(slice(basis, 0, static_cast<std::int64_t>(k), static_cast<std::int64_t>(k) + 1), dims);
    Tensor term = e * unsqueeze(rows[k], 0);
    result = result.defined() ? result + term : term;
  }
  return result;
}

void check_block(const std::string& name, const Tensor& block, std::size_t i, bool strict, bool create_graph) {
  if (strict && create_graph && !block.requires_grad())
    fail(name, ": The jacobian of the user-provided function is independent of input ", i,
         ". This is not allowed in strict mode when create_graph=True.");
}

Jacobian reverse_loop(const std::string& name, const Tensors& in, const Tensors& outputs, const JacobianOptions& o) {
  Jacobian jac(outputs.size(), Tensors(in.size()));
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    const std::size_t n = out.numel();
    std::vector<Tensors> rows(in.size());
    Tensor basis = n ? identity_basis(out.shape(), out.dtype()) : Tensor();
    for (std::size_t k = 0; k < n; ++k) {
      Tensor e = squeeze(slice(basis, 0, static_cast<std::int64_t>(k), static_cast<std::int64_t>(k) + 1), 0);
      Tensors g = autograd_grad({out}, in, {e}, o.create_graph, /*retain_graph=*/true);
      for (std::size_t j = 0; j < in.size(); ++j) {
        if (!g[j].defined()) {
          if (o.strict) independent(name, i, j);
          g[j] = zeros_like(in[j]);
        } else {
          check_block(name, g[j], i, o.strict, o.create_graph);
        }
        rows[j].push_back(std::move(g[j]));
      }
    }
    for (std::size_t j = 0; j < in.size(); ++j)
      jac[i][j] = n ? rows_to_block(stack_rows(rows[j], o.create_graph || dual_level_open()), out, in[j])
                    : zero_block(out, in[j]);
  }
  return jac;
}

Jacobian reverse_vectorized(const std::string& name, const Tensors& in, const Tensors& outputs,
                            const JacobianOptions& o) {
  Jacobian jac(outputs.size(), Tensors(in.size()));
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    const std::size_t n = out.numel();
    if (n == 0 || !out.requires_grad()) {
      for (std::size_t j = 0; j < in.size(); ++j) {
        if (o.strict && n != 0) independent(name, i, j);
        jac[i][j] = zero_block(out, in[j]);
      }
      continue;
    }
    ::xgrad::detail::BatchedDualLevel level(static_cast<std::int64_t>(n));
    Tensor u = forward_ad::make_dual(zeros_like(out), identity_basis(out.shape(), out.dtype()));
    Tensors g = autograd::grad({out}, in, {u}, /*retain_graph=*/true, o.create_graph, /*allow_unused=*/true);
    for (std::size_t j = 0; j < in.size(); ++j) {
      if (!g[j].defined()) {
        if (o.strict) independent(name, i, j);
        jac[i][j] = zero_block(out, in[j]);
        continue;
      }
      Tensor rows = forward_ad::unpack_dual(g[j]).tangent;
      if (!rows.defined()) {
        jac[i][j] = zero_block(out, in[j]);
        continue;
      }
      check_block(name, rows, i, o.strict, o.create_graph);
      jac[i][j] = rows_to_block(rows, out, in[j]);
    }
  }
  return jac;
}

// Forward mode: the inputs as fn sees them. With create_graph the caller's tensors themselves (the
// Jacobian is then differentiable with respect to them); otherwise detached, requiring grad as the
// given ones do (InputGrad::Keep, PyTorch's _jacfwd) or always (InputGrad::Require, for hessian).
Tensors forward_inputs(const Tensors& inputs, bool create_graph, InputGrad input_grad) {
  Tensors in;
  for (const Tensor& x : inputs) {
    if (create_graph && x.requires_grad()) {
      in.push_back(x);
    } else {
      Tensor d = x.detach();
      d.requires_grad_(input_grad == InputGrad::Require || x.requires_grad());
      in.push_back(std::move(d));
    }
  }
  return in;
}

// Column tangents [n, out.shape...] (n = numel of input j, the batch leading) as the block
// out.shape ++ in.shape.
Tensor columns_to_block(const Tensor& columns, const Tensor& out, const Tensor& in, bool create_graph) {
  if (create_graph) {
    // The transpose as a product with the identity (mm has a JVP rule, permute may not), so that
    // the Jacobian can be differentiated again under a dual level.
    const std::int64_t n = static_cast<std::int64_t>(in.numel()), m = static_cast<std::int64_t>(out.numel());
    Tensor t = mm(reshaped(columns, {n, m}), eye(static_cast<std::size_t>(n), columns.dtype()), true, false);
    return reshaped(t, concat_shapes(out.shape(), in.shape()));
  }
  const int rank = static_cast<int>(out.shape().size());
  std::vector<int> perm;
  for (int d = 1; d <= rank; ++d) perm.push_back(d);
  perm.push_back(0);
  return reshaped(permute(columns, perm), concat_shapes(out.shape(), in.shape()));
}

Jacobian forward_mode(const std::string& name, const UserFunction& fn, const Tensors& in, const JacobianOptions& o) {
  Jacobian jac;
  // strict: the first independent pair in [output][input] order (as the reverse strategies and
  // PyTorch report it), once every input has been pushed through.
  std::pair<std::size_t, std::size_t> first_independent{SIZE_MAX, SIZE_MAX};
  auto block_for = [&](std::size_t i, std::size_t j, const Tensor& out, Tensor columns) {
    if (!columns.defined()) {
      first_independent = std::min(first_independent, {i, j});
      return zero_block(out, in[j]);
    }
    return columns_to_block(columns, out, in[j], o.create_graph);
  };
  for (std::size_t j = 0; j < in.size(); ++j) {
    const std::size_t n = in[j].numel();
    if (n == 0) {
      // No direction to push: the outputs' shapes from a plain run.
      Tensors outputs = call(name, fn, in);
      if (jac.empty()) jac.assign(outputs.size(), Tensors(in.size()));
      for (std::size_t i = 0; i < outputs.size() && i < jac.size(); ++i) jac[i][j] = zero_block(outputs[i], in[j]);
      continue;
    }
    Tensor basis = identity_basis(in[j].shape(), in[j].dtype());
    if (o.vectorize) {
      ::xgrad::detail::BatchedDualLevel level(static_cast<std::int64_t>(n));
      Tensors duals = in;
      duals[j] = forward_ad::make_dual(in[j], basis);
      Tensors outputs = call(name, fn, duals);
      if (jac.empty()) jac.assign(outputs.size(), Tensors(in.size()));
      if (outputs.size() != jac.size())
        fail(name, ": the user-provided function returned ", outputs.size(), " tensors, then ", jac.size());
      for (std::size_t i = 0; i < outputs.size(); ++i)
        jac[i][j] = block_for(i, j, outputs[i], forward_ad::unpack_dual(outputs[i]).tangent);
      continue;
    }
    // One forward run per input element.
    std::vector<Tensors> columns;  // [output][k]
    std::vector<bool> any;
    Tensors outputs;
    for (std::size_t k = 0; k < n; ++k) {
      forward_ad::DualLevel level;
      Tensors duals = in;
      Tensor e = squeeze(slice(basis, 0, static_cast<std::int64_t>(k), static_cast<std::int64_t>(k) + 1), 0);
      duals[j] = forward_ad::make_dual(in[j], e);
      outputs = call(name, fn, duals);
      if (columns.empty()) {
        columns.resize(outputs.size());
        any.assign(outputs.size(), false);
      }
      for (std::size_t i = 0; i < outputs.size() && i < columns.size(); ++i) {
        Tensor t = forward_ad::unpack_dual(outputs[i]).tangent;
        any[i] = any[i] || t.defined();
        columns[i].push_back(t.defined() ? t : zeros_like(outputs[i]));
      }
    }
    if (jac.empty()) jac.assign(outputs.size(), Tensors(in.size()));
    for (std::size_t i = 0; i < outputs.size() && i < jac.size(); ++i)
      jac[i][j] = block_for(i, j, outputs[i], any[i] ? stack_rows(columns[i], o.create_graph) : Tensor());
  }
  if (o.strict && first_independent.first != SIZE_MAX) independent(name, first_independent.first, first_independent.second);
  return jac;
}

Jacobian jacobian_core(const std::string& name, const UserFunction& fn, const Tensors& inputs,
                       const JacobianOptions& o, InputGrad input_grad) {
  check_inputs(name, inputs);
  AutoGradMode enable(true);
  if (o.strategy == Strategy::ForwardMode && !dual_level_open()) {
    Jacobian jac = forward_mode(name, fn, forward_inputs(inputs, o.create_graph, input_grad), o);
    for (Tensors& row : jac) row = grad_postprocess(std::move(row), o.create_graph);
    return jac;
  }
  Tensors in = grad_preprocess(inputs, o.create_graph, /*need_graph=*/true);
  Tensors outputs = call(name, fn, in);
  check_outputs_require_grad(name, outputs, o.strict);
  Jacobian jac = o.vectorize && !dual_level_open() ? reverse_vectorized(name, in, outputs, o)
                                                  : reverse_loop(name, in, outputs, o);
  for (Tensors& row : jac) row = grad_postprocess(std::move(row), o.create_graph);
  return jac;
}

}  // namespace

std::vector<std::vector<Tensor>> jacobian(const UserFunction& fn, const std::vector<Tensor>& inputs,
                                          const JacobianOptions& options) {
  return jacobian_core("autograd::functional::jacobian", fn, inputs, options, InputGrad::Keep);
}

std::vector<std::vector<Tensor>> hessian(const UserFunction& fn, const std::vector<Tensor>& inputs,
                                         const HessianOptions& o) {
  const std::string name = "autograd::functional::hessian";
  check_inputs(name, inputs);
  // The inner gradient needs its own graph when the outer Jacobian is taken in reverse mode, when the
  // result must be differentiable, or (strict) to tell whether it depends on the inputs. Forward over
  // reverse needs none: the tangents flow through the backward formulas as they run.
  const bool inner_graph = o.create_graph || o.strict || o.outer_jacobian_strategy == Strategy::ReverseMode ||
                           dual_level_open();
  UserFunction gradient;
  gradient.returns_list = true;
  gradient.fn = [&](const Tensors& x) -> Tensors {
    Tensors outputs = fn.fn(x);
    check_outputs_require_grad(name, outputs, o.strict);
    if (fn.returns_list || outputs.size() != 1 || !outputs[0].defined())
      fail(name, ": The function given to hessian should return a single Tensor");
    if (outputs[0].numel() != 1)
      fail(name, ": The Tensor returned by the function given to hessian should contain a single element (it has "
           "shape ", shape_str(outputs[0].shape()), ")");
    Tensors g = autograd_grad(outputs, x, {}, inner_graph, inner_graph);
    g = fill_in_zeros(name, std::move(g), x, /*strict=*/false, /*create_graph=*/true, Stage::Back);
    if (o.strict)
      for (std::size_t i = 0; i < g.size(); ++i)
        if (!g[i].requires_grad())
          fail(name, ": While computing the hessian, found that the jacobian of the user-provided function with "
               "respect to input ", i, " is independent of the input. This is not allowed in strict mode. You "
               "should ensure that your function is twice differentiable and that the jacobian depends on the "
               "inputs (this would be violated by a linear function for example).");
    return g;
  };
  const JacobianOptions outer{.create_graph = o.create_graph, .strict = o.strict, .vectorize = o.vectorize,
                              .strategy = o.outer_jacobian_strategy};
  return jacobian_core(name, gradient, inputs, outer, InputGrad::Require);
}

}  // namespace xgrad::autograd::functional::detail
