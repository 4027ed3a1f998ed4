// Helpers shared by the test files.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <xgrad.hpp>

namespace xgrad::test {

// A float64 leaf of standard-normal values that requires grad: an input for gradcheck.
inline Tensor param(const Shape& shape) {
  Tensor t = randn(shape, kFloat64);
  t.requires_grad_();
  return t;
}

// Checks the shape and every value (read as double, in row-major order): each must be finite and
// equal to the expected one, exactly when tol == 0, else within the relative tolerance tol.
inline void check_values(const Tensor& t, const Shape& shape, const std::vector<double>& expected,
                         double tol = 1e-12) {
  REQUIRE(t.shape() == shape);
  const xt::xarray<double> v = t.to(kFloat64).data<double>();
  REQUIRE(v.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(std::isfinite(v.data()[i]));
    if (tol == 0)
      CHECK(v.data()[i] == expected[i]);
    else
      CHECK(v.data()[i] == doctest::Approx(expected[i]).epsilon(tol));
  }
}

}  // namespace xgrad::test
