// Every invalid call of the core throws xgrad::Error with a message naming the op and the offending
// shapes/dtypes/values, and leaves every object as it was.
#include <doctest/doctest.h>

#include <xgrad.hpp>

using namespace xgrad;

using doctest::Contains;

TEST_CASE("errors: incompatible broadcast names the op and both shapes") {
  Tensor a = ones({2, 3});
  Tensor b = ones({4});
  CHECK_THROWS_WITH_AS(add(a, b), Contains("add: shapes [2, 3] and [4] cannot be broadcast together"), Error);
  CHECK_THROWS_WITH_AS(a - b, Contains("sub: shapes [2, 3] and [4]"), Error);
  CHECK_THROWS_WITH_AS(a * b, Contains("mul: shapes [2, 3] and [4]"), Error);
  CHECK_THROWS_WITH_AS(b / a, Contains("div: shapes [4] and [2, 3]"), Error);
  CHECK_THROWS_WITH_AS(pow(a, b), Contains("pow: shapes [2, 3] and [4]"), Error);
  CHECK_THROWS_WITH_AS(maximum(a, b), Contains("maximum: shapes [2, 3] and [4]"), Error);
  CHECK_THROWS_WITH_AS(eq(a, b), Contains("eq: shapes [2, 3] and [4]"), Error);
  CHECK_THROWS_WITH_AS(where(ones({3}), a, b), Contains("where: shapes [2, 3] and [4]"), Error);
  // (2,3) and (3,2): the failing dimension is named too
  CHECK_THROWS_WITH_AS(ones({2, 3}) + ones({3, 2}), Contains("dimension 0: 2 vs 3"), Error);
}

TEST_CASE("errors: a dtype mismatch between operands is refused, naming both dtypes") {
  Tensor f = ones({2}, kFloat32);
  Tensor d = ones({2}, kFloat64);
  CHECK_THROWS_WITH_AS(f + d, Contains("add: dtype mismatch, float32 and float64"), Error);
  CHECK_THROWS_WITH_AS(d * f, Contains("mul: dtype mismatch, float64 and float32"), Error);
  CHECK_THROWS_WITH_AS(pow(f, d), Contains("pow: dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(minimum(f, d), Contains("minimum: dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(lt(f, d), Contains("lt: dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(where(ones({2}, kFloat32), d, d), Contains("where: condition has dtype float32"), Error);
  CHECK_THROWS_WITH_AS(f + d, Contains(".to(dtype)"), Error);  // and says how to fix it
}

TEST_CASE("errors: backward on a non-scalar without a gradient, or on a tensor without grad") {
  Tensor x = ones({3}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), Contains("grad can be implicitly created only for scalar outputs"), Error);
  CHECK_THROWS_WITH_AS(y.backward(), Contains("shape [3]"), Error);
  CHECK_THROWS_WITH_AS(ones({1}).backward(), Contains("does not require grad"), Error);
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("errors: backward with a gradient of the wrong shape or dtype") {
  Tensor x = ones({3}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(ones({2}, kFloat64)),
                       Contains("backward: gradient of shape [2] given for output 0 of shape [3]"), Error);
  CHECK_THROWS_WITH_AS(y.backward(ones({3}, kFloat32)),
                       Contains("gradient of dtype float32 given for output 0 of dtype float64"), Error);
  CHECK_THROWS_WITH_AS(autograd::backward({y}, {ones({3}, kFloat64), ones({3}, kFloat64)}),
                       Contains("got 2 gradients for 1 outputs"), Error);
  CHECK_FALSE(x.grad().defined());
  y.backward(ones({3}, kFloat64));  // the graph was not consumed by the failed calls
  CHECK(x.grad().data<double>()(0) == 2.0);
}

TEST_CASE("errors: backward through a released graph") {
  Tensor x = ones({2}, kFloat64).requires_grad_();
  Tensor z = (x.exp() * x).sum();
  z.backward();
  CHECK_THROWS_WITH_AS(z.backward(), Contains("trying to backward through the graph a second time"), Error);
  CHECK_THROWS_WITH_AS(autograd::grad({z}, {x}), Contains("retain_graph=true"), Error);
}

TEST_CASE("errors: item() on a multi-element tensor, data<T>() of the wrong dtype") {
  Tensor t = ones({3});
  CHECK_THROWS_WITH_AS(t.item(), Contains("item: a Tensor with 3 elements (shape [3]) cannot be converted"), Error);
  CHECK(ones({1, 1}).item() == 1.0);  // one element of any rank is fine
  CHECK_THROWS_WITH_AS(t.data<double>(), Contains("data<float64>: the tensor's dtype is float32"), Error);
  const Tensor& ct = t;
  CHECK_THROWS_WITH_AS(ct.data<double>(), Contains("data<float64>"), Error);
  CHECK_THROWS_WITH_AS(ones({2}, kFloat64).data<float>(), Contains("data<float32>: the tensor's dtype is float64"),
                       Error);
}

TEST_CASE("errors: set_grad with the wrong shape or dtype keeps the old gradient") {
  Tensor x = ones({2}, kFloat64).requires_grad_();
  x.set_grad(full({2}, 5.0, kFloat64));
  CHECK_THROWS_WITH_AS(x.set_grad(ones({3}, kFloat64)),
                       Contains("set_grad: gradient of shape [3] float64 for a tensor of shape [2] float64"), Error);
  CHECK_THROWS_WITH_AS(x.set_grad(ones({2}, kFloat32)), Contains("float32 for a tensor of shape [2] float64"), Error);
  CHECK(x.grad().data<double>()(0) == 5.0);
  x.set_grad(Tensor());  // undefined clears it
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("errors: requires_grad_(false) on a non-leaf names the op that produced it") {
  Tensor x = ones({2}).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.requires_grad_(false), Contains("requires_grad_(false): only leaf tensors"), Error);
  CHECK_THROWS_WITH_AS(y.requires_grad_(false), Contains("MulBackward"), Error);
  CHECK(y.requires_grad());
  CHECK_THROWS_WITH_AS(ones({1}).retain_grad(), Contains("retain_grad"), Error);
}

TEST_CASE("errors: undefined tensors and bad arguments") {
  Tensor u;
  CHECK_THROWS_WITH_AS(u + ones({1}), Contains("add: first operand is an undefined tensor"), Error);
  CHECK_THROWS_WITH_AS(exp(u), Contains("exp"), Error);
  CHECK_THROWS_WITH_AS(u.shape(), Contains("undefined"), Error);
  CHECK_THROWS_WITH_AS(clamp(ones({1}), 2.0, 1.0), Contains("clamp: min (2) must not exceed max (1)"), Error);
}

TEST_CASE("errors: a throwing op leaves its inputs unchanged") {
  Tensor a = tensor({1.0, 2.0}, kFloat64, true);
  a.set_grad(tensor({7.0, 8.0}, kFloat64));
  Tensor h = a * 3.0;  // a non-leaf input too
  const auto h_fn = h.grad_fn();
  const auto hooks_before = h_fn->pre_hooks().size();
  Tensor bad = ones({3}, kFloat64);

  CHECK_THROWS_AS(a + bad, Error);
  CHECK_THROWS_AS(h * bad, Error);
  CHECK_THROWS_AS(pow(h, bad), Error);
  CHECK_THROWS_AS(where(ones({2}, kFloat64), h, bad), Error);
  CHECK_THROWS_AS(a * ones({2}, kFloat32), Error);

  CHECK(a.data<double>()(0) == 1.0);
  CHECK(a.data<double>()(1) == 2.0);
  CHECK(a.grad().data<double>()(0) == 7.0);
  CHECK(a.grad().data<double>()(1) == 8.0);
  CHECK(a.is_leaf());
  CHECK(a.requires_grad());
  CHECK(h.grad_fn() == h_fn);
  CHECK(h_fn->pre_hooks().size() == hooks_before);
  CHECK(h.data<double>()(1) == 6.0);
  CHECK(bad.grad_fn() == nullptr);
  CHECK_FALSE(bad.requires_grad());

  // The graph still works after the failures: d(3a)/da = 3 on top of the old gradient (7, 8).
  h.sum().backward();
  CHECK(a.grad().data<double>()(0) == 10.0);
  CHECK(a.grad().data<double>()(1) == 11.0);
}

TEST_CASE("errors: a hook returning a gradient of the wrong shape fails before reaching the leaf") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor y = x * 2.0;
  y.register_hook([](const Tensor&) { return ones({5}, kFloat64); });
  CHECK_THROWS_WITH_AS(y.sum().backward(), Contains("returned a gradient of shape [5]"), Error);
  CHECK_FALSE(x.grad().defined());
}
