// Anomaly mode: the first NaN/Inf of a forward op or of a backward node becomes an error naming it.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <thread>

#include <xgrad.hpp>

using namespace xgrad;
using autograd::DetectAnomalyGuard;

TEST_CASE("anomaly: off by default, so NaN flows through silently") {
  CHECK_FALSE(autograd::is_anomaly_enabled());
  Tensor x = tensor({1.0, -1.0}, kFloat64, true);
  Tensor y = log(x);  // log(-1) = NaN, no error without anomaly mode
  CHECK(std::isnan(y.data<double>()(1)));
}

TEST_CASE("anomaly: the guard turns the mode on for its scope and restores it") {
  {
    DetectAnomalyGuard guard;
    CHECK(autograd::is_anomaly_enabled());
    {
      DetectAnomalyGuard off(false);
      CHECK_FALSE(autograd::is_anomaly_enabled());
    }
    CHECK(autograd::is_anomaly_enabled());
  }
  CHECK_FALSE(autograd::is_anomaly_enabled());
  autograd::set_detect_anomaly(true);
  CHECK(autograd::is_anomaly_enabled());
  autograd::set_detect_anomaly(false);
  CHECK_FALSE(autograd::is_anomaly_enabled());
}

TEST_CASE("anomaly: log of a negative value in forward names log, the element and the input shape") {
  DetectAnomalyGuard guard;
  Tensor x = tensor({{1.0, 2.0, 3.0}, {4.0, -5.0, 6.0}}, kFloat64, true);
  // log(-5) is NaN (element [1, 1] of the 2×3 output); log of the others is finite.
  CHECK_THROWS_WITH_AS(log(x), doctest::Contains("forward op 'log'"), Error);
  CHECK_THROWS_WITH_AS(log(x), doctest::Contains("NaN at element [1, 1]"), Error);
  CHECK_THROWS_WITH_AS(log(x), doctest::Contains("inputs were [2, 3] float"), Error);
}

TEST_CASE("anomaly: ops that record no node are checked too (no grad needed, grad mode off)") {
  DetectAnomalyGuard guard;
  // No input requires grad: no node is recorded, but log(-1) = NaN is still an error naming log.
  Tensor plain = tensor({2.0, -1.0}, kFloat64);
  CHECK_THROWS_WITH_AS(log(plain), doctest::Contains("forward op 'log'"), Error);
  CHECK_THROWS_WITH_AS(log(plain), doctest::Contains("NaN at element [1]"), Error);
  // Grad mode off, even though the input requires grad.
  Tensor x = tensor({4.0, -9.0}, kFloat64, true);
  NoGradGuard no_grad;
  CHECK_THROWS_WITH_AS(sqrt(x), doctest::Contains("forward op 'sqrt'"), Error);
  // A finite result passes: sqrt(4) = 2.
  CHECK(sqrt(tensor({4.0}, kFloat64)).item() == 2.0);
}

TEST_CASE("anomaly: ops inside a backward formula are reported through their backward node") {
  // d/dx log(x) = 1/x: at x = 0 the backward formula's div yields inf. The error must name the
  // backward node LogBackward (the forward op 'log'), not a forward 'div'.
  Tensor x = tensor({0.5, 0.0}, kFloat64, true);
  Tensor z = sum(log(x));  // log(0) = -inf in forward: recorded before the mode is on
  DetectAnomalyGuard guard;
  // With create_graph the formula g / x runs as a recorded div op inside the backward.
  CHECK_THROWS_WITH_AS(z.backward({}, true, true), doctest::Contains("backward node LogBackward"), Error);
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("backward node LogBackward"), Error);
}

TEST_CASE("anomaly: division by zero in forward is reported as inf, naming div") {
  DetectAnomalyGuard guard;
  Tensor a = tensor({1.0, 2.0}, kFloat64, true);
  Tensor b = tensor({1.0, 0.0}, kFloat64);
  // 2 / 0 = +inf at element [1].
  CHECK_THROWS_WITH_AS(div(a, b), doctest::Contains("'div'"), Error);
  CHECK_THROWS_WITH_AS(div(a, b), doctest::Contains("inf at element [1]"), Error);
}

TEST_CASE("anomaly: sqrt at 0 in backward names SqrtBackward, sqrt and the forward input shape") {
  Tensor x = tensor({0.0, 4.0, 9.0}, kFloat64, true);
  Tensor loss;
  {
    DetectAnomalyGuard guard;
    // Forward is finite: sqrt(x) = [0, 2, 3]. Backward: d sqrt(x)/dx = 1 / (2 sqrt(x)) = [inf, 1/4, 1/6].
    loss = sum(sqrt(x));
    CHECK_THROWS_WITH_AS(loss.backward({}, /*retain_graph=*/true), doctest::Contains("backward node SqrtBackward"),
                         Error);
    CHECK_THROWS_WITH_AS(loss.backward({}, true), doctest::Contains("forward op 'sqrt'"), Error);
    CHECK_THROWS_WITH_AS(loss.backward({}, true), doctest::Contains("inputs were [3] float64"), Error);
    CHECK_THROWS_WITH_AS(loss.backward({}, true), doctest::Contains("inf at element [0]"), Error);
    // The bad gradient never reached the leaf.
    CHECK_FALSE(x.grad().defined());
  }
  // Without anomaly mode the same backward runs and yields inf, as IEEE arithmetic says.
  loss.backward();
  CHECK(std::isinf(x.grad().data<double>()(0)));
  CHECK(x.grad().data<double>()(1) == doctest::Approx(0.25));
}

TEST_CASE("anomaly: a graph recorded before the mode was on is still checked in backward") {
  Tensor x = tensor({0.0}, kFloat64, true);
  Tensor y = sqrt(x).sum();
  DetectAnomalyGuard guard;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("SqrtBackward"), Error);
}

TEST_CASE("anomaly: pow(x, 0.5) at 0 has an infinite derivative, caught at PowBackward") {
  DetectAnomalyGuard guard;
  // d x^0.5 / dx = 0.5 * x^(-0.5) = inf at x = 0; the upstream gradient 3 keeps it infinite.
  Tensor x = tensor({0.0, 1.0}, kFloat64, true);
  Tensor y = pow(x, 0.5);  // [0, 1]
  CHECK_THROWS_WITH_AS(sum(y * 3.0).backward(), doctest::Contains("PowBackward"), Error);
}

TEST_CASE("anomaly: a training step with finite values runs unchanged in anomaly mode") {
  manual_seed(3);
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(8, 3)});
  optim::SGD sgd(model->parameters(), {.lr = 0.1});
  Tensor x = randn({5, 4});
  Tensor target = tensor({0.0, 1.0, 2.0, 1.0, 0.0});
  DetectAnomalyGuard guard;
  double first = 0, last = 0;
  for (int step = 0; step < 5; ++step) {
    sgd.zero_grad();
    Tensor loss = nn::functional::cross_entropy((*model)(x), target);
    loss.backward();
    sgd.step();
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(std::isfinite(last));
  CHECK(last < first);  // five SGD steps on one batch lower its loss
}

TEST_CASE("anomaly: the mode is thread-local") {
  DetectAnomalyGuard guard;
  bool other_thread_sees = true;
  double other_value = 0;
  std::thread t([&] {
    other_thread_sees = autograd::is_anomaly_enabled();
    Tensor x = tensor({-1.0}, kFloat64, true);
    other_value = log(x).item();  // no error here: the mode is off in this thread
  });
  t.join();
  CHECK_FALSE(other_thread_sees);
  CHECK(std::isnan(other_value));
}

TEST_CASE("anomaly: forward op names derived from backward node names") {
  CHECK(detail::forward_op_name("LogBackward") == "log");
  CHECK(detail::forward_op_name("LeakyReluBackward") == "leaky_relu");
  CHECK(detail::forward_op_name("MmBackward") == "mm");
  CHECK(detail::forward_op_name("MyFunction") == "my_function");
}
