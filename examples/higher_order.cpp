// Higher-order gradients with create_graph.
//
// Backward formulas in xgrad are ordinary Tensor ops. With create_graph = true the engine records
// them, so a gradient is itself a differentiable Tensor. This example uses that twice:
//   1. a Hessian-vector product, checked against the Hessian derived by hand;
//   2. a gradient penalty (the squared norm of ∂output/∂input, as in WGAN-GP), trained away by SGD.
#include <cmath>
#include <cstdio>
#include <xgrad.hpp>

using namespace xgrad;

int main() {
  // ---- 1. Hessian-vector product ----------------------------------------------------------------
  // f(x) = x0³/3 + x1³/3 + x0·x1
  // ∇f   = [x0² + x1, x1² + x0]
  // H    = [[2·x0, 1], [1, 2·x1]]
  // At x = (1, 2), v = (1, -1):  H·v = [2·1 - 1, 1 - 2·2] = [1, -3].
  Tensor x = tensor({1.0, 2.0}, kFloat64, /*requires_grad=*/true);
  Tensor v = tensor({1.0, -1.0}, kFloat64);
  auto f = [](const Tensor& x) {
    Tensor x0 = slice(x, 0, 0, 1), x1 = slice(x, 0, 1, 2);
    return sum(pow(x, 3.0) / 3.0) + sum(x0 * x1);
  };
  Tensor y = f(x);
  // First derivative, recorded so that it can be differentiated again.
  Tensor g = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  // Differentiating g·v with respect to x gives H·v without ever forming H.
  Tensor hv = autograd::grad({sum(g * v)}, {x})[0];
  std::printf("gradient           = [%g, %g]   (expected [3, 5])\n", g.data<double>()(0), g.data<double>()(1));
  std::printf("Hessian·v          = [%g, %g]   (expected [1, -3])\n", hv.data<double>()(0), hv.data<double>()(1));
  const bool hvp_ok = std::abs(hv.data<double>()(0) - 1.0) < 1e-12 && std::abs(hv.data<double>()(1) + 3.0) < 1e-12;

  // ---- 2. Gradient penalty -----------------------------------------------------------------------
  // A one-layer model y = tanh(inputs · wᵀ). The penalty is mean over samples of ||∂y/∂inputs||²;
  // minimising it with SGD on w shrinks w (for tanh, ∂y/∂x = (1 - y²)·w, so the penalty is ≈ ||w||²
  // near 0). Each step needs the gradient of a gradient.
  manual_seed(0);
  Tensor w = randn({1, 4}, kFloat64).requires_grad_(true);
  Tensor inputs = randn({8, 4}, kFloat64).requires_grad_(true);
  double first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    Tensor out = tanh(matmul(inputs, t(w)));
    Tensor dy_dx = autograd::grad({out}, {inputs}, {ones_like(out)}, std::nullopt, /*create_graph=*/true)[0];
    Tensor penalty = mean(sum(dy_dx * dy_dx, {1}));
    Tensor dw = autograd::grad({penalty}, {w})[0];
    {
      NoGradGuard no_grad;  // a plain SGD step on w's values
      w.data<double>() -= 0.1 * dw.data<double>();
    }
    if (step == 0) first = penalty.item();
    last = penalty.item();
  }
  std::printf("gradient penalty   : %.6f -> %.6f after 50 SGD steps\n", first, last);
  const bool penalty_ok = last < 0.5 * first;
  std::printf("%s\n", hvp_ok && penalty_ok ? "OK" : "FAILED");
  return hvp_ok && penalty_ok ? 0 : 1;
}
