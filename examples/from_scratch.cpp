// What the library automates: a two-layer network trained by hand, next to the same network in xgrad.
//
// Notation (one column per sample, as in most course notes):
//   X  : n_x × m inputs,  Y : 1 × m labels in {0, 1}
//   Z1 = W1·X + b1,   A1 = tanh(Z1)       (W1: n_h × n_x, b1: n_h × 1)
//   Z2 = W2·A1 + b2,  A2 = σ(Z2)          (W2: 1 × n_h,   b2: 1 × 1)
//   J  = -1/m · Σ [Y·log(A2) + (1-Y)·log(1-A2)]
// Backward pass derived by hand (chain rule, σ' = σ(1-σ), tanh' = 1 - tanh²):
//   dZ2 = A2 - Y                      (the σ and the cross-entropy terms cancel)
//   dW2 = 1/m · dZ2·A1ᵀ,   db2 = 1/m · Σ_columns dZ2
//   dZ1 = (W2ᵀ·dZ2) ∗ (1 - A1²)
//   dW1 = 1/m · dZ1·Xᵀ,    db1 = 1/m · Σ_columns dZ1
// and gradient descent: W ← W - lr·dW.
//
// The program computes these gradients in plain xtensor, computes the same gradients with xgrad's
// backward(), prints the largest difference, then trains both copies side by side: the two loss
// curves agree to rounding.
//
// Usage: from_scratch [--epochs N]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <xgrad.hpp>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xrandom.hpp>

using namespace xgrad;
using Matrix = xt::xarray<double>;

// ---- The hand-written network ------------------------------------------------------------------
struct Params {
  Matrix W1, b1, W2, b2;
};
struct Grads {
  Matrix dW1, db1, dW2, db2;
  double loss;
};

Grads forward_backward_by_hand(const Params& p, const Matrix& X, const Matrix& Y) {
  const double m = static_cast<double>(X.shape()[1]);
  Matrix Z1 = xt::linalg::dot(p.W1, X) + p.b1;
  Matrix A1 = xt::tanh(Z1);
  Matrix Z2 = xt::linalg::dot(p.W2, A1) + p.b2;
  Matrix A2 = 1.0 / (1.0 + xt::exp(-Z2));
  Grads g;
  g.loss = -xt::sum(Y * xt::log(A2) + (1.0 - Y) * xt::log(1.0 - A2))() / m;
  Matrix dZ2 = A2 - Y;
  g.dW2 = xt::linalg::dot(dZ2, xt::transpose(A1)) / m;
  g.db2 = xt::sum(dZ2, {1}, xt::keep_dims) / m;
  Matrix dZ1 = xt::linalg::dot(xt::transpose(p.W2), dZ2) * (1.0 - A1 * A1);
  g.dW1 = xt::linalg::dot(dZ1, xt::transpose(X)) / m;
  g.db1 = xt::sum(dZ1, {1}, xt::keep_dims) / m;
  return g;
}

// ---- The same network in xgrad: only the forward pass is written --------------------------------
Tensor loss_with_xgrad(const Tensor& W1, const Tensor& b1, const Tensor& W2, const Tensor& b2, const Tensor& X,
                       const Tensor& Y) {
  Tensor A1 = tanh(matmul(W1, X) + b1);
  Tensor A2 = sigmoid(matmul(W2, A1) + b2);
  return -mean(Y * log(A2) + (1.0 - Y) * log(1.0 - A2));
}

double max_abs_diff(const Matrix& a, const Tensor& b) { return xt::amax(xt::abs(a - b.data<double>()))(); }

int main(int argc, char** argv) {
  int epochs = 200;
  for (int i = 1; i + 1 < argc; i += 2)
    if (!std::strcmp(argv[i], "--epochs")) epochs = std::stoi(argv[i + 1]);
  const double lr = 0.5;
  const std::size_t n_x = 2, n_h = 8, m = 200;

  // Data: points in the square [-1, 1]², labelled 1 inside the circle of radius 0.6.
  xt::random::seed(0);
  Matrix X = xt::random::rand<double>({n_x, m}, -1.0, 1.0);
  Matrix Y = xt::cast<double>(xt::sum(X * X, {0}, xt::keep_dims) < 0.36);

  // Small random weights, zero biases: the same starting point for both copies.
  Params p{xt::random::randn<double>({n_h, n_x}) * 0.5, xt::zeros<double>({n_h, std::size_t{1}}),
           xt::random::randn<double>({std::size_t{1}, n_h}) * 0.5, xt::zeros<double>({std::size_t{1}, std::size_t{1}})};
  Tensor W1 = tensor(p.W1, true), b1 = tensor(p.b1, true), W2 = tensor(p.W2, true), b2 = tensor(p.b2, true);
  Tensor Xt = tensor(X), Yt = tensor(Y);

  // 1. Same gradients?
  Grads by_hand = forward_backward_by_hand(p, X, Y);
  Tensor J = loss_with_xgrad(W1, b1, W2, b2, Xt, Yt);
  J.backward();
  double diff = std::max({max_abs_diff(by_hand.dW1, W1.grad()), max_abs_diff(by_hand.db1, b1.grad()),
                          max_abs_diff(by_hand.dW2, W2.grad()), max_abs_diff(by_hand.db2, b2.grad())});
  std::printf("loss by hand %.12f, with xgrad %.12f\n", by_hand.loss, J.item());
  std::printf("max |gradient by hand - gradient from backward()| = %.3g\n", diff);

  // 2. Same training curve?
  std::printf("%6s %14s %14s\n", "epoch", "loss by hand", "loss xgrad");
  double worst_gap = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    Grads g = forward_backward_by_hand(p, X, Y);
    p.W1 -= lr * g.dW1;
    p.b1 -= lr * g.db1;
    p.W2 -= lr * g.dW2;
    p.b2 -= lr * g.db2;

    for (Tensor* w : {&W1, &b1, &W2, &b2}) w->zero_grad();
    Tensor loss = loss_with_xgrad(W1, b1, W2, b2, Xt, Yt);
    loss.backward();
    {
      NoGradGuard no_grad;
      for (Tensor* w : {&W1, &b1, &W2, &b2}) w->data<double>() -= lr * w->grad().data<double>();
    }
    worst_gap = std::max(worst_gap, std::abs(g.loss - loss.item()));
    if (epoch % std::max(1, epochs / 10) == 0 || epoch == epochs - 1)
      std::printf("%6d %14.8f %14.8f\n", epoch, g.loss, loss.item());
  }
  std::printf("largest loss difference over training: %.3g\n", worst_gap);
  const bool ok = diff < 1e-12 && worst_gap < 1e-9;
  std::printf("%s\n", ok ? "OK: both give the same gradients and the same curve" : "FAILED");
  return ok ? 0 : 1;
}
