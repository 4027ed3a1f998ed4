// A physics-informed neural network (PINN): the canonical research use of higher-order autodiff.
//
// We look for u on [0, 1] with
//     u''(x) = -π² sin(πx),   u(0) = u(1) = 0,
// whose solution is u(x) = sin(πx). Instead of discretising the equation, a small MLP N(x) is
// trained so that the equation's residual vanishes at collocation points. The boundary conditions
// are built into the trial function (a "hard" constraint):
//     u(x) = x (1 - x) N(x),
// so only the residual r(x) = u''(x) + π² sin(πx) is minimised. u'' is the second derivative of the
// network's output with respect to its input: two autograd::grad calls with create_graph = true,
// and the training step then differentiates through both (a third order of differentiation).
//
// Then the same network's Hessian with respect to its input is computed and checked.
//
//   build/examples/physics_informed            # full run: relative L2 error <= 1e-3 (a few seconds)
//   build/examples/physics_informed --smoke    # 300 steps (under a second), the same bound
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

const double kPi = std::acos(-1.0);

// u(x) = x (1 - x) N(x) for a column of points x (n × 1).
Tensor trial_solution(nn::Module& net, const Tensor& x) { return x * (1.0 - x) * net(x); }

// u and its first two derivatives at the points x (n × 1, requires grad). Each u(x_i) depends on
// x_i only, so the gradient of sum(u) with respect to x is the column of u'(x_i), and likewise for
// u''. With create_graph the results stay differentiable (for the training step).
struct Derivatives {
  Tensor u, du, d2u;
};
Derivatives derivatives(nn::Module& net, const Tensor& x, bool create_graph) {
  Tensor u = trial_solution(net, x);
  Tensor du = autograd::grad({u.sum()}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  Tensor d2u = autograd::grad({du.sum()}, {x}, {}, std::nullopt, create_graph)[0];
  return {u, du, d2u};
}

// n points spread over [0, 1] (interior), as an n × 1 column.
Tensor grid(std::size_t n, bool interior) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = interior ? (static_cast<double>(i) + 0.5) / static_cast<double>(n) : static_cast<double>(i) / static_cast<double>(n - 1);
  Tensor t = zeros({n, 1}, kFloat64);
  for (std::size_t i = 0; i < n; ++i) t.data<double>()(i, 0) = v[i];
  return t;
}

// Relative L2 error of u against sin(πx) on a fine grid.
double relative_l2_error(nn::Module& net) {
  NoGradGuard no_grad;
  const Tensor x = grid(1001, false);
  const Tensor u = trial_solution(net, x);
  const Tensor exact = sin(x * kPi);
  return std::sqrt((u - exact).pow(2.0).sum().item() / exact.pow(2.0).sum().item());
}

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) {
      smoke = true;
    } else {
      std::fprintf(stderr, "usage: %s [--smoke]\n", argv[0]);
      return 2;
    }
  }
  const int steps = smoke ? 300 : 3000;

  // ---- The network: 1-32-32-1, tanh, float64 ------------------------------------------------------
  manual_seed(0);
  auto net = std::make_shared<nn::Sequential>(nn::Linear(1, 32), nn::Tanh(), nn::Linear(32, 32), nn::Tanh(),
                                              nn::Linear(32, 1));
  net->to(kFloat64);

  // ---- Training: mean squared residual at 64 collocation points, Adam with cosine annealing -------
  const Tensor x = grid(64, true).requires_grad_();
  const Tensor forcing = sin(x.detach() * kPi) * (kPi * kPi);  // -f(x) = π² sin(πx)
  optim::Adam adam(net->parameters(), {.lr = 5e-3});
  optim::CosineAnnealingLR schedule(adam, steps, 1e-5);
  const double error_before = relative_l2_error(*net);
  double loss_value = 0;
  for (int step = 1; step <= steps; ++step) {
    adam.zero_grad();
    const Derivatives d = derivatives(*net, x, /*create_graph=*/true);
    const Tensor residual = d.d2u + forcing;  // u'' + π² sin(πx)
    const Tensor loss = residual.pow(2.0).mean();
    loss.backward();
    adam.step();
    schedule.step();
    loss_value = loss.item();
    if (step % (steps / 4) == 0)
      std::printf("step %5d  residual loss %.3e  relative L2 error %.3e\n", step, loss_value, relative_l2_error(*net));
  }
  const double error = relative_l2_error(*net);
  std::printf("relative L2 error of u against sin(pi x): %.3e (before training %.3e)\n", error, error_before);

  // ---- The network's Hessian with respect to its input --------------------------------------------
  // g(p) = Σ_i u(p_i) over 5 points p: its Hessian is diagonal, H_ii = u''(p_i) (each term depends on
  // its own point only). Computed three ways, which must agree: autograd::functional::hessian
  // (reverse over reverse), forward over reverse (the jvp of the gradient along each basis vector,
  // autograd::forward_ad) and the two autograd::grad calls of the training, Derivatives::d2u; and
  // against the exact solution's -π² sin(πx) to the training accuracy.
  namespace functional = autograd::functional;
  namespace fwd = autograd::forward_ad;
  const std::int64_t n_points = 5;
  Tensor points = grid(n_points, true);
  auto g = [&](const std::vector<Tensor>& in) { return trial_solution(*net, reshape(in[0], {n_points, 1})).sum(); };
  const Tensor p = reshape(points, {n_points});
  const Tensor H = functional::hessian(g, {p})[0][0];                              // 5 × 5
  const Tensor H_vectorized = functional::hessian(g, {p}, {.vectorize = true,       // one batched run
                                                           .outer_jacobian_strategy = functional::Strategy::ForwardMode})[0][0];
  Tensor H_forward_over_reverse = zeros({5, 5}, kFloat64);
  for (std::int64_t j = 0; j < n_points; ++j) {
    fwd::DualLevel level;
    Tensor direction = zeros({5}, kFloat64);
    direction.data<double>()(j) = 1.0;
    const Tensor dual = fwd::make_dual(p.detach().requires_grad_(), direction);
    const Tensor gradient = autograd::grad({g({dual})}, {dual})[0];
    const Tensor column = fwd::unpack_dual(gradient).tangent;  // H · e_j
    for (std::int64_t i = 0; i < n_points; ++i)
      H_forward_over_reverse.data<double>()(i, j) = column.data<double>()(i);
  }
  const Derivatives at = derivatives(*net, points.requires_grad_(), /*create_graph=*/false);
  double worst = 0, disagreement = 0;
  for (std::int64_t i = 0; i < n_points; ++i) {
    const double xi = points.data<double>()(i, 0);
    const double h = H.data<double>()(i, i);
    const double exact = -kPi * kPi * std::sin(kPi * xi);
    worst = std::max(worst, std::abs(h - exact) / (kPi * kPi));
    disagreement = std::max(disagreement, std::abs(h - at.d2u.data<double>()(i, 0)));
    for (std::int64_t j = 0; j < n_points; ++j) {
      const double hij = H.data<double>()(i, j);
      disagreement = std::max({disagreement, std::abs(hij - H_forward_over_reverse.data<double>()(i, j)),
                               std::abs(hij - H_vectorized.data<double>()(i, j)), i == j ? 0.0 : std::abs(hij)});
    }
    std::printf("x = %.2f  H_ii = d2u/dx2 = %+.6f  (exact %+.6f)\n", xi, h, exact);
  }
  std::printf("Hessian: functional::hessian vs forward over reverse vs vectorized vs grad(grad): largest difference %.3e\n",
              disagreement);
  std::printf("largest Hessian error relative to pi^2: %.3e\n", worst);

  const bool ok = error <= 1e-3 && error < 0.01 * error_before && disagreement <= 1e-10;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
