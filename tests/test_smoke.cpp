#include <doctest/doctest.h>

#include <xgrad.hpp>

using namespace xgrad;

TEST_CASE("smoke: d(x*y + x)/dx = y + 1") {
  Tensor x = tensor({2.0, 3.0}, kFloat64, true);
  Tensor y = tensor({5.0, 7.0}, kFloat64, true);
  Tensor z = (x * y + x).sum();
  z.backward();
  // dz/dx = y + 1 = [6, 8]; dz/dy = x = [2, 3]
  CHECK(x.grad().data<double>()(0) == 6.0);
  CHECK(x.grad().data<double>()(1) == 8.0);
  CHECK(y.grad().data<double>()(0) == 2.0);
  CHECK(y.grad().data<double>()(1) == 3.0);
}

TEST_CASE("smoke: gradcheck and gradgradcheck on x*y + exp(x)") {
  Tensor x = tensor({0.3, -1.2, 2.0}, kFloat64, true);
  Tensor y = tensor({1.5, 0.7, -0.4}, kFloat64, true);
  auto fn = [](const std::vector<Tensor>& in) { return in[0] * in[1] + exp(in[0]); };
  CHECK(gradcheck(fn, {x, y}));
  CHECK(gradgradcheck(fn, {x, y}));
}

TEST_CASE("smoke: gradcheck reports a wrong gradient") {
  // f(x) = x * x.detach(): the value is x², whose true derivative is 2x, but detach() hides the second
  // factor from the engine, which reports x. gradcheck must catch the factor-of-two error.
  Tensor x = tensor({0.5, -2.0}, kFloat64, true);
  auto broken = [](const std::vector<Tensor>& in) { return in[0] * in[0].detach(); };  // true d/dx = 2x, engine gives x
  CHECK_FALSE(gradcheck(broken, {x}, GradcheckOptions{.raise = false}));
  CHECK_THROWS_WITH_AS(gradcheck(broken, {x}), doctest::Contains("analytical"), Error);
}

TEST_CASE("smoke: gradcheck refuses float32") {
  Tensor x = tensor({0.5, -2.0}, kFloat32, true);
  CHECK_THROWS_WITH_AS(gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {x}),
                       doctest::Contains("float64"), Error);
}
