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
