// gradcheck / gradgradcheck: PyTorch's slow-mode algorithm (full Jacobians, central differences).
#include "gradcheck.hpp"

#include <cmath>
#include <random>

#include "detail/op_support.hpp"
#include "engine.hpp"
#include "forward_ad.hpp"
#include "grad_mode.hpp"

namespace xgrad::detail {

namespace {

std::string multi_index(std::size_t flat, const Shape& shape) {
  if (shape.empty()) return "()";
  std::vector<std::size_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::string s = "(";
  for (std::size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + ")";
}

void require_float64(const char* who, const std::vector<Tensor>& inputs) {
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) fail(who, ": input ", i, " is an undefined tensor");
    if (inputs[i].requires_grad() && inputs[i].dtype() != kFloat64)
      fail(who, ": input ", i, " (shape ", shape_str(inputs[i].shape()), ") is ", inputs[i].dtype(),
           "; finite differences in float32 are too imprecise to check gradients. Check in float64: pass "
           "x.to(xgrad::kFloat64) (and make the function compute in float64).");
  }
}

// Flattened values of the outputs that are differentiable (float64 and requiring grad).
std::vector<double> flatten_outputs(const std::vector<Tensor>& outs) {
  std::vector<double> v;
  for (const Tensor& o : outs) {
    if (!o.defined()) continue;
    const auto& a = o.data<double>();
    v.insert(v.end(), a.data(), a.data() + a.size());
  }
  return v;
}

// Forward-mode Jacobian columns: for each element j of each differentiable input i, the outputs'
// tangents when input i carries the one-hot tangent e_j, against the numerical column.
bool check_forward_columns(const GradcheckFunction& fn, const std::vector<Tensor>& inputs,
                           const std::vector<Tensor>& outputs, const std::vector<std::size_t>& diff_inputs,
                           const std::vector<std::vector<std::vector<double>>>& numerical, const GradcheckOptions& opts) {
  namespace fwd = autograd::forward_ad;
  for (std::size_t i : diff_inputs) {
    for (std::size_t j = 0; j < numerical[i].size(); ++j) {
      std::vector<double> column;
      {
        fwd::DualLevel level;
        Tensor direction = zeros(inputs[i].shape(), kFloat64);
        direction.data<double>().data()[j] = 1.0;
        std::vector<Tensor> dual_inputs = inputs;
        dual_inputs[i] = fwd::make_dual(inputs[i], direction);
        const std::vector<Tensor> outs = fn(dual_inputs);
        for (std::size_t k = 0; k < outs.size(); ++k) {
          if (!outs[k].defined()) continue;
          const Tensor tangent = fwd::unpack_dual(outs[k]).tangent;
          if (tangent.defined() && tangent.shape() != outs[k].shape())
            fail("gradcheck: the forward-mode tangent of output ", k, " has shape ", shape_str(tangent.shape()),
                 " but the output has shape ", shape_str(outs[k].shape()));
          if (tangent.defined() && tangent.dtype() != kFloat64)
            fail("gradcheck: the forward-mode tangent of output ", k, " is ", tangent.dtype(), ", not float64");
          const std::size_t n = outs[k].numel();
          for (std::size_t m = 0; m < n; ++m) column.push_back(tangent.defined() ? tangent.data<double>().data()[m] : 0.0);
        }
      }
      const std::vector<double>& num = numerical[i][j];
      std::size_t row = 0;
      for (std::size_t k = 0; k < outputs.size(); ++k) {
        const std::size_t n = outputs[k].numel();
        for (std::size_t m = 0; m < n; ++m, ++row) {
          const double fw = row < column.size() ? column[row] : 0.0;
          const double nu = num[row];
          const bool ok = std::abs(fw - nu) <= opts.atol + opts.rtol * std::abs(nu) || (std::isnan(fw) && std::isnan(nu));
          if (!ok) {
            if (!opts.raise) return false;
            fail("gradcheck: forward-mode Jacobian mismatch for output ", k, " element ", multi_index(m, outputs[k].shape()),
                 " with respect to input ", i, " element ", multi_index(j, inputs[i].shape()), ": forward AD ", fw,
                 ", numerical ", nu, " (|difference| ", std::abs(fw - nu), " > atol ", opts.atol, " + rtol ", opts.rtol,
                 " * |numerical|)");
          }
        }
      }
    }
  }
  return true;
}

}  // namespace

bool gradcheck_impl(const GradcheckFunction& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts) {
  require_float64("gradcheck", inputs);
  std::vector<std::size_t> diff_inputs;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) diff_inputs.push_back(i);
  if (diff_inputs.empty()) fail("gradcheck: no input requires grad; nothing to check");

  std::vector<Tensor> outputs = fn(inputs);
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    if (!outputs[k].defined()) fail("gradcheck: output ", k, " is an undefined tensor");
    if (outputs[k].dtype() != kFloat64)
      fail("gradcheck: output ", k, " is ", outputs[k].dtype(), "; the function must compute in float64");
  }

  // Numerical Jacobian columns: one per input element, by central differences on the input in place.
  // numerical[i][j] = d(flattened outputs)/d(input i, element j)
  std::vector<std::vector<std::vector<double>>> numerical(inputs.size());
  for (std::size_t i : diff_inputs) {
    Tensor in = inputs[i];
    auto& values = in.data<double>();
    numerical[i].resize(values.size());
    for (std::size_t j = 0; j < values.size(); ++j) {
      const double orig = values.data()[j];
      values.data()[j] = orig + opts.eps;
      std::vector<double> plus = flatten_outputs(fn(inputs));
      values.data()[j] = orig - opts.eps;
      std::vector<double> minus = flatten_outputs(fn(inputs));
      values.data()[j] = orig;
      std::vector<double>& col = numerical[i][j];
      col.resize(plus.size());
      for (std::size_t m = 0; m < plus.size(); ++m) col[m] = (plus[m] - minus[m]) / (2 * opts.eps);
    }
  }

  if (opts.check_forward_ad && !check_forward_columns(fn, inputs, outputs, diff_inputs, numerical, opts)) return false;

  // Analytical Jacobian rows: one backward per output element, with a one-hot gradient.
  std::vector<Tensor> wrt;
  for (std::size_t i : diff_inputs) wrt.push_back(inputs[i]);
  std::size_t row_offset = 0;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& out = outputs[k];
    const std::size_t n_out = out.numel();
    if (!out.requires_grad()) {
      // The output does not depend differentiably on any input: the numerical Jacobian must be zero.
      for (std::size_t i : diff_inputs)
        for (std::size_t j = 0; j < numerical[i].size(); ++j)
          for (std::size_t m = 0; m < n_out; ++m) {
            const double num = numerical[i][j][row_offset + m];
            if (std::abs(num) > opts.atol) {
              if (!opts.raise) return false;
              fail("gradcheck: output ", k, " does not require grad, but its numerical derivative with respect to input ",
                   i, " element ", multi_index(j, inputs[i].shape()), " is ", num);
            }
          }
      row_offset += n_out;
      continue;
    }
    for (std::size_t m = 0; m < n_out; ++m) {
      Tensor onehot = zeros(out.shape(), kFloat64);
      onehot.data<double>().data()[m] = 1.0;
      std::vector<Tensor> grads = autograd::grad({out}, wrt, {onehot}, true, false, true);
      for (std::size_t w = 0; w < diff_inputs.size(); ++w) {
        const std::size_t i = diff_inputs[w];
        const Tensor& g = grads[w];
        if (g.defined() && g.shape() != inputs[i].shape())
          fail("gradcheck: the gradient for input ", i, " has shape ", shape_str(g.shape()), " but the input has shape ",
               shape_str(inputs[i].shape()));
        for (std::size_t j = 0; j < numerical[i].size(); ++j) {
          const double ana = g.defined() ? g.data<double>().data()[j] : 0.0;
          const double num = numerical[i][j][row_offset + m];
          const bool ok = std::abs(ana - num) <= opts.atol + opts.rtol * std::abs(num) ||
                          (std::isnan(ana) && std::isnan(num));
          if (!ok) {
            if (!opts.raise) return false;
            fail("gradcheck: Jacobian mismatch for output ", k, " element ", multi_index(m, out.shape()),
                 " with respect to input ", i, " element ", multi_index(j, inputs[i].shape()), ": analytical ", ana,
                 ", numerical ", num, " (|difference| ", std::abs(ana - num), " > atol ", opts.atol, " + rtol ",
                 opts.rtol, " * |numerical|)");
          }
        }
      }
    }
    row_offset += n_out;
  }
  return true;
}

bool gradgradcheck_impl(const GradcheckFunction& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opts) {
  require_float64("gradgradcheck", inputs);
  const std::vector<Tensor> outputs = fn(inputs);
  // Random weights for the outputs, from a private generator so the user's random stream is untouched.
  std::mt19937_64 gen(0x9e3779b97f4a7c15ULL);
  std::normal_distribution<double> normal;
  std::vector<Tensor> weights;
  std::vector<std::size_t> diff_outputs;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    if (!outputs[k].requires_grad()) continue;
    Tensor w = zeros(outputs[k].shape(), kFloat64);
    for (double& v : w.data<double>()) v = normal(gen);
    weights.push_back(w.requires_grad_(true));
    diff_outputs.push_back(k);
  }
  if (weights.empty()) fail("gradgradcheck: no output requires grad");
  const std::size_t n_inputs = inputs.size();
  std::vector<std::size_t> diff_inputs;
  for (std::size_t i = 0; i < n_inputs; ++i)
    if (inputs[i].requires_grad()) diff_inputs.push_back(i);

  // (inputs..., weights...) -> gradients of sum_k <weights_k, outputs_k> w.r.t. the inputs.
  GradcheckFunction first_derivative = [&](const std::vector<Tensor>& all) -> std::vector<Tensor> {
    std::vector<Tensor> xs(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n_inputs));
    std::vector<Tensor> ws(all.begin() + static_cast<std::ptrdiff_t>(n_inputs), all.end());
    std::vector<Tensor> outs = fn(xs);
    std::vector<Tensor> diff_outs, wrt;
    for (std::size_t k : diff_outputs) diff_outs.push_back(outs[k]);
    for (std::size_t i : diff_inputs) wrt.push_back(xs[i]);
    std::vector<Tensor> grads = autograd::grad(diff_outs, wrt, ws, true, true, true);
    for (std::size_t w = 0; w < grads.size(); ++w)
      if (!grads[w].defined()) grads[w] = zeros(wrt[w].shape(), kFloat64);
    return grads;
  };
  std::vector<Tensor> all = inputs;
  all.insert(all.end(), weights.begin(), weights.end());
  try {
    return gradcheck_impl(first_derivative, all, opts);
  } catch (const Error& e) {
    fail("gradgradcheck (second derivatives; inputs ", n_inputs, ".. are the output weights): ", e.what());
  }
}

}  // namespace xgrad::detail
