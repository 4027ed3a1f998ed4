// Invalid optimizer construction, set_lr and step inputs: each throws xgrad::Error naming the
// optimizer and the value, and leaves everything as it was.
#include <doctest/doctest.h>

#include <vector>

#include <xgrad.hpp>

using namespace xgrad;

namespace {
std::vector<Tensor> one_param() { return {tensor({1.0, 2.0}, kFloat32, true)}; }
}  // namespace

TEST_CASE("optim errors: parameter lists") {
  CHECK_THROWS_WITH_AS(optim::SGD(std::vector<Tensor>{}), doctest::Contains("SGD: optimizer got an empty parameter list"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam(std::vector<Tensor>{}), doctest::Contains("Adam: optimizer got an empty parameter list"), Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(std::vector<Tensor>{}), doctest::Contains("AdamW: optimizer got an empty parameter list"), Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(std::vector<Tensor>{}), doctest::Contains("RMSprop: optimizer got an empty parameter list"), Error);

  Tensor p = tensor({1.0}, kFloat32, true);
  CHECK_THROWS_WITH_AS(optim::SGD({p, Tensor()}), doctest::Contains("SGD: parameter 1 is an undefined tensor"), Error);
  Tensor non_leaf = p * 2.0;
  CHECK_THROWS_WITH_AS(optim::Adam({non_leaf}), doctest::Contains("Adam: can't optimize a non-leaf tensor (parameter 0"), Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop({p, p}), doctest::Contains("RMSprop: parameter 1 appears more than once"), Error);
  // A parameter that does not require grad is allowed (as in PyTorch); it simply never gets a gradient.
  CHECK_NOTHROW(optim::SGD({tensor({1.0}, kFloat32)}));
}

TEST_CASE("optim errors: hyper-parameters") {
  CHECK_THROWS_WITH_AS(optim::SGD(one_param(), {.lr = -0.1}), doctest::Contains("SGD: invalid learning rate -0.1"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD(one_param(), {.momentum = -0.5}), doctest::Contains("SGD: invalid momentum -0.5"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD(one_param(), {.weight_decay = -1}), doctest::Contains("SGD: invalid weight_decay -1"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD(one_param(), {.nesterov = true}),
                       doctest::Contains("SGD: Nesterov momentum requires a momentum and zero dampening (momentum = 0"), Error);
  CHECK_THROWS_WITH_AS(optim::SGD(one_param(), {.momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                       doctest::Contains("dampening = 0.1"), Error);

  CHECK_THROWS_WITH_AS(optim::Adam(one_param(), {.lr = -1e-3}), doctest::Contains("Adam: invalid learning rate -0.001"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam(one_param(), {.betas = {1.0, 0.999}}), doctest::Contains("Adam: invalid beta parameter at index 0 1"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam(one_param(), {.betas = {0.9, -0.1}}), doctest::Contains("Adam: invalid beta parameter at index 1 -0.1"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam(one_param(), {.eps = -1e-8}), doctest::Contains("Adam: invalid epsilon value -1e-08"), Error);
  CHECK_THROWS_WITH_AS(optim::Adam(one_param(), {.weight_decay = -0.1}), doctest::Contains("Adam: invalid weight_decay value -0.1"), Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(one_param(), {.betas = {0.9, 1.0}}), doctest::Contains("AdamW: invalid beta parameter at index 1 1"), Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(one_param(), {.lr = -2}), doctest::Contains("AdamW: invalid learning rate -2"), Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(one_param(), {.weight_decay = -0.01}), doctest::Contains("AdamW: invalid weight_decay value -0.01"), Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(one_param(), {.eps = -1}), doctest::Contains("AdamW: invalid epsilon value -1"), Error);

  CHECK_THROWS_WITH_AS(optim::RMSprop(one_param(), {.lr = -0.01}), doctest::Contains("RMSprop: invalid learning rate -0.01"), Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(one_param(), {.alpha = -0.5}), doctest::Contains("RMSprop: invalid alpha value -0.5"), Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(one_param(), {.eps = -1e-3}), doctest::Contains("RMSprop: invalid epsilon value -0.001"), Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(one_param(), {.weight_decay = -3}), doctest::Contains("RMSprop: invalid weight_decay value -3"), Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop(one_param(), {.momentum = -0.9}), doctest::Contains("RMSprop: invalid momentum value -0.9"), Error);
}

TEST_CASE("optim errors: set_lr") {
  optim::Adam adam(one_param(), {.lr = 0.5});
  CHECK_THROWS_WITH_AS(adam.set_lr(-1), doctest::Contains("Adam.set_lr: invalid learning rate -1"), Error);
  CHECK(adam.lr() == 0.5);
  adam.set_lr(0);  // zero is allowed
  CHECK(adam.lr() == 0);
}

TEST_CASE("optim errors: a gradient of another shape, checked before any parameter changes") {
  Tensor a = tensor({1.0, 2.0}, kFloat64, true);
  Tensor b = tensor({3.0, 4.0}, kFloat64, true);
  optim::SGD sgd({a, b}, {.lr = 1.0, .momentum = 0.5});
  a.set_grad(tensor({1.0, 1.0}, kFloat64));
  b.set_grad(tensor({1.0, 1.0}, kFloat64));
  // The parameter's value changes shape behind the gradient's back (data<T>() is mutable).
  b.data<double>() = xt::xarray<double>{3.0, 4.0, 5.0};
  CHECK_THROWS_WITH_AS(sgd.step(),
                       doctest::Contains("SGD.step: the gradient of parameter 1 is float64 of shape [2] but the parameter is float64 of shape [3]"),
                       Error);
  // Parameter 0 comes first in the list and must not have moved; nor has any state been created.
  CHECK(a.data<double>()(0) == 1.0);
  CHECK(a.data<double>()(1) == 2.0);
  CHECK(sgd.state_dict().size() == 6);  // lr, 4 hyper-parameters and the parameter indices: no state
}

TEST_CASE("optim errors: state buffers that no longer fit their parameter") {
  Tensor p = tensor({1.0, 2.0}, kFloat32, true);
  optim::Adam adam({p});
  p.set_grad(tensor({1.0, 1.0}, kFloat32));
  adam.step();
  // The parameter is resized in place; its state (shape [2]) no longer fits.
  p.zero_grad();
  p.data<float>() = xt::xarray<float>{1.0f, 2.0f, 3.0f};
  p.set_grad(tensor({1.0, 1.0, 1.0}, kFloat32));
  CHECK_THROWS_WITH_AS(adam.step(), doctest::Contains("Adam.step: the state of parameter 0 is float32 of shape [2]"), Error);
  CHECK(p.data<float>()(2) == 3.0f);
}
