// Learning-rate schedulers: the sequences of get_last_lr() that torch.optim.lr_scheduler produces
// (its chainable forms), and the optimizer's lr following them.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;

// The reference values below are torch's Python expressions, which round every operation; GCC would
// otherwise fuse a*b + c into one FMA here and differ in the last bit.
#pragma GCC optimize("fp-contract=off")

namespace {
std::vector<Tensor> one_param() { return {tensor({1.0}, kFloat32, true)}; }
}  // namespace

TEST_CASE("optim lr_scheduler: StepLR decays every step_size epochs") {
  optim::SGD sgd(one_param(), {.lr = 1.0});
  optim::StepLR sched(sgd, /*step_size=*/3, /*gamma=*/0.5);
  // Epochs 0..9: lr = 1 * 0.5^(epoch / 3): 1 1 1 0.5 0.5 0.5 0.25 0.25 0.25 0.125 (powers of two: exact).
  const std::vector<double> expected = {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125};
  CHECK(sched.last_epoch() == 0);
  CHECK(sched.get_last_lr() == expected[0]);
  for (std::size_t e = 1; e < expected.size(); ++e) {
    sched.step();
    CAPTURE(e);
    CHECK(sched.last_epoch() == static_cast<std::int64_t>(e));
    CHECK(sched.get_last_lr() == expected[e]);
    CHECK(sgd.lr() == expected[e]);
  }
}

TEST_CASE("optim lr_scheduler: StepLR's default gamma 0.1 multiplies the current lr (PyTorch's chainable form)") {
  optim::Adam adam(one_param(), {.lr = 0.1});
  optim::StepLR sched(adam, 2);
  // Epoch 2: 0.1 * 0.1; epoch 4: (0.1 * 0.1) * 0.1 — products in double, as torch computes them.
  sched.step();
  CHECK(sched.get_last_lr() == 0.1);
  sched.step();
  CHECK(sched.get_last_lr() == 0.1 * 0.1);
  sched.step();
  sched.step();
  CHECK(sched.get_last_lr() == 0.1 * 0.1 * 0.1);
  // The chain continues from the optimizer's current lr, e.g. after a manual change.
  adam.set_lr(1.0);
  sched.step();  // epoch 5: no decay
  CHECK(adam.lr() == 1.0);
  sched.step();  // epoch 6: decay
  CHECK(adam.lr() == 0.1);
}

TEST_CASE("optim lr_scheduler: ExponentialLR") {
  optim::RMSprop rms(one_param(), {.lr = 2.0});
  optim::ExponentialLR sched(rms, 0.5);
  // lr_e = 2 * 0.5^e
  double expected = 2.0;
  CHECK(sched.get_last_lr() == expected);
  for (int e = 1; e <= 6; ++e) {
    sched.step();
    expected *= 0.5;
    CHECK(sched.get_last_lr() == expected);
    CHECK(rms.lr() == expected);
  }
}

TEST_CASE("optim lr_scheduler: CosineAnnealingLR over 2*T_max epochs matches the closed form") {
  // Closed form: lr_t = eta_min + (lr_0 - eta_min) * (1 + cos(pi t / T_max)) / 2, down to eta_min at
  // t = T_max and back up to lr_0 at t = 2 T_max. With T_max = 4, lr_0 = 1:
  //   eta_min = 0:   1, 0.853553, 0.5, 0.146447, 0, 0.146447, 0.5, 0.853553, 1
  //   eta_min = 0.1: 1, 0.868198, 0.55, 0.231802, 0.1, 0.231802, 0.55, 0.868198, 1
  const double pi = std::numbers::pi;
  for (double eta_min : {0.0, 0.1}) {
    CAPTURE(eta_min);
    optim::SGD sgd(one_param(), {.lr = 1.0});
    optim::CosineAnnealingLR sched(sgd, 4, eta_min);
    CHECK(sched.get_last_lr() == 1.0);
    for (int t = 1; t <= 8; ++t) {
      sched.step();
      CAPTURE(t);
      const double closed = eta_min + (1.0 - eta_min) * (1 + std::cos(pi * t / 4)) / 2;
      CHECK(sched.get_last_lr() == doctest::Approx(closed).epsilon(1e-14));
      CHECK(sgd.lr() == sched.get_last_lr());
    }
    CHECK(sched.last_epoch() == 8);
  }
  // At t = T_max the recursive form lands on eta_min exactly (cos(pi) = -1).
  optim::SGD sgd(one_param(), {.lr = 0.3});
  optim::CosineAnnealingLR sched(sgd, 3);
  for (int t = 0; t < 3; ++t) sched.step();
  CHECK(sched.get_last_lr() == 0.0);
}

TEST_CASE("optim lr_scheduler: CosineAnnealingLR's recursive values are torch's, not the closed form's") {
  // torch computes epoch 1 as (1 + cos(pi/T)) / (1 + cos(0)) * (lr - eta_min) + eta_min, and epoch
  // T_max + 1 as lr + (lr_0 - eta_min) * (1 - cos(pi / T_max)) / 2; in double these can differ from the
  // closed form in the last bit, so check the formulas themselves.
  const double pi = std::numbers::pi;
  optim::Adam adam(one_param(), {.lr = 0.7});
  optim::CosineAnnealingLR sched(adam, 5, 0.05);
  double lr = 0.7;
  for (int t = 1; t <= 12; ++t) {
    if ((t - 1 - 5) % 10 == 0) {
      lr = lr + (0.7 - 0.05) * (1 - std::cos(pi / 5)) / 2;
    } else {
      lr = (1 + std::cos(pi * t / 5)) / (1 + std::cos(pi * (t - 1) / 5)) * (lr - 0.05) + 0.05;
    }
    sched.step();
    CAPTURE(t);
    CHECK(sched.get_last_lr() == lr);
  }
}

TEST_CASE("optim lr_scheduler errors") {
  optim::SGD sgd(one_param(), {.lr = 1.0});
  CHECK_THROWS_WITH_AS(optim::StepLR(sgd, 0), doctest::Contains("StepLR: invalid step_size 0"), Error);
  CHECK_THROWS_WITH_AS(optim::StepLR(sgd, 2, -0.5), doctest::Contains("StepLR: invalid gamma -0.5"), Error);
  CHECK_THROWS_WITH_AS(optim::ExponentialLR(sgd, -1), doctest::Contains("ExponentialLR: invalid gamma -1"), Error);
  CHECK_THROWS_WITH_AS(optim::CosineAnnealingLR(sgd, 0), doctest::Contains("CosineAnnealingLR: invalid T_max 0"), Error);
  CHECK_THROWS_WITH_AS(optim::CosineAnnealingLR(sgd, 10, -0.1), doctest::Contains("CosineAnnealingLR: invalid eta_min -0.1"), Error);
  CHECK(sgd.lr() == 1.0);
}
