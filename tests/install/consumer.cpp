// Uses the core, nn and optim through the installed <xgrad.hpp>; exits non-zero on a wrong gradient.
#include <xgrad.hpp>

int main() {
  using namespace xgrad;
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64, true);
  (x * x).sum().backward();  // d(Σx²)/dx = 2x = [2, 4, 6]
  const auto& g = x.grad().data<double>();
  if (g(0) != 2.0 || g(1) != 4.0 || g(2) != 6.0) return 1;
  auto layer = std::make_shared<nn::Linear>(3, 2);
  optim::SGD sgd(layer->parameters(), {.lr = 0.1});
  (*layer)(ones({1, 3})).sum().backward();
  sgd.step();
  return 0;
}
