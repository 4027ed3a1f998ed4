// softmax, log_softmax and the fused losses (cross_entropy_op, nll_loss_op, bce_with_logits_op):
// forward values by hand, stability at ±1e4 / ±100, gradcheck + gradgradcheck in float64, errors.
#include <doctest/doctest.h>

#include <cmath>

#include <xgrad.hpp>

#include "helpers.hpp"

using namespace xgrad;
using test::check_values;
using test::param;

namespace {

template <class F>
void check_grads(F fn, const std::vector<Tensor>& inputs) {
  CHECK(gradcheck(fn, inputs));
  CHECK(gradgradcheck(fn, inputs));
}

const double ln2 = std::log(2.0), ln3 = std::log(3.0), ln4 = std::log(4.0);
const Reduction all_reductions[] = {Reduction::None, Reduction::Sum, Reduction::Mean};

}  // namespace

// ---- softmax / log_softmax ------------------------------------------------------------------------
TEST_CASE("softmax and log_softmax: values by hand along the last dim and along dim 0") {
  // Row [0, ln 3]: exp gives [1, 3], the sum is 4, so softmax = [1/4, 3/4] and
  // log_softmax = [0 - ln 4, ln 3 - ln 4].
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const double tol = dt == kFloat32 ? 1e-6 : 1e-12;
    Tensor x = tensor({0.0, ln3}, dt);
    check_values(softmax(x, 0), {2}, {0.25, 0.75}, tol);
    check_values(log_softmax(x, -1), {2}, {-ln4, ln3 - ln4}, tol);
    // Along dim 0 of [[0, 1], [ln 3, 1]]: column 0 is the row above, column 1 has equal entries (1/2 each).
    Tensor m = tensor({{0.0, 1.0}, {ln3, 1.0}}, dt);
    check_values(softmax(m, 0), {2, 2}, {0.25, 0.5, 0.75, 0.5}, tol);
    check_values(log_softmax(m, 0), {2, 2}, {-ln4, -ln2, ln3 - ln4, -ln2}, tol);
    // Along dim 1 of the same matrix: row [0, 1] gives [1, e]/(1+e), row [ln 3, 1] gives [3, e]/(3+e).
    const double e = std::exp(1.0);
    check_values(m.softmax(1), {2, 2}, {1 / (1 + e), e / (1 + e), 3 / (3 + e), e / (3 + e)}, tol);
    check_values(m.log_softmax(1), {2, 2}, {-std::log(1 + e), 1 - std::log(1 + e), ln3 - std::log(3 + e), 1 - std::log(3 + e)},
                 tol);
  }
}

TEST_CASE("softmax and log_softmax: a 3-D tensor along every dim matches exp(x)/sum(exp(x)) by loops") {
  manual_seed(11);
  Tensor x = randn({2, 3, 4}, kFloat64);
  const auto& xv = x.data<double>();
  for (int dim : {0, 1, 2, -1, -2}) {
    CAPTURE(dim);
    const std::size_t d = dim < 0 ? static_cast<std::size_t>(dim + 3) : static_cast<std::size_t>(dim);
    Tensor s = softmax(x, dim), ls = log_softmax(x, dim);
    REQUIRE(s.shape() == Shape{2, 3, 4});
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j)
        for (std::size_t k = 0; k < 4; ++k) {
          // the denominator: Σ exp over the index along dim, the other two fixed
          double denom = 0;
          for (std::size_t r = 0; r < xv.shape(d); ++r) {
            std::size_t idx[3] = {i, j, k};
            idx[d] = r;
            denom += std::exp(xv(idx[0], idx[1], idx[2]));
          }
          CHECK(s.data<double>()(i, j, k) == doctest::Approx(std::exp(xv(i, j, k)) / denom).epsilon(1e-12));
          CHECK(ls.data<double>()(i, j, k) == doctest::Approx(xv(i, j, k) - std::log(denom)).epsilon(1e-12));
        }
  }
}

TEST_CASE("softmax and log_softmax: exact and finite for logits of 1e4 and -1e4") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    // max-shift: [1e4, -1e4, 0] - 1e4 = [0, -2e4, -1e4]; exp gives [1, 0, 0] (underflow), so softmax
    // is exactly [1, 0, 0] and log_softmax exactly [0, -2e4, -1e4] (log of a sum equal to 1 is 0).
    Tensor x = tensor({1e4, -1e4, 0.0}, dt);
    check_values(softmax(x, 0), {3}, {1, 0, 0}, 0);
    check_values(log_softmax(x, 0), {3}, {0, -2e4, -1e4}, 0);
    // all entries huge and equal: each gets 1/2, log 1/2 (no inf - inf)
    check_values(softmax(tensor({1e4, 1e4}, dt), 0), {2}, {0.5, 0.5}, 0);
    check_values(log_softmax(tensor({-1e4, -1e4}, dt), 0), {2}, {-ln2, -ln2}, 1e-6);
    // the same along dim 0 (strided rows): columns [1e4, -1e4] and [-1e4, 1e4]
    Tensor m = tensor({{1e4, -1e4}, {-1e4, 1e4}}, dt);
    check_values(softmax(m, 0), {2, 2}, {1, 0, 0, 1}, 0);
    check_values(log_softmax(m, 0), {2, 2}, {0, -2e4, -2e4, 0}, 0);
  }
}

TEST_CASE("softmax and log_softmax: backward by hand") {
  // y = softmax([0, ln 3]) = [1/4, 3/4]; d(y_0)/dx = y_0 (δ_0j - y_j) = [1/4·3/4, -1/4·3/4] = [3/16, -3/16]
  Tensor x = tensor({0.0, ln3}, kFloat64, true);
  (softmax(x, 0) * tensor({1.0, 0.0}, kFloat64)).sum().backward();  // picks y_0
  check_values(x.grad(), {2}, {3.0 / 16, -3.0 / 16});
  // Σ log_softmax over a row of n entries has gradient 1 - n·softmax = [1 - 2/4, 1 - 2·3/4]
  Tensor z = tensor({0.0, ln3}, kFloat64, true);
  log_softmax(z, 0).sum().backward();
  check_values(z.grad(), {2}, {0.5, -0.5});
}

TEST_CASE("softmax and log_softmax: gradcheck and gradgradcheck along dims 0, 1 and -1 of a 3-D tensor") {
  manual_seed(12);
  for (int dim : {0, 1, -1}) {
    CAPTURE(dim);
    check_grads([dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); }, {param({2, 3, 4})});
    check_grads([dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); }, {param({2, 3, 4})});
  }
  check_grads([](const std::vector<Tensor>& in) { return softmax(in[0], 0); }, {param({5})});
}

TEST_CASE("softmax and log_softmax: dim out of range") {
  CHECK_THROWS_WITH_AS(softmax(zeros({2, 3}), 2), doctest::Contains("softmax: dimension out of range"), Error);
  CHECK_THROWS_WITH_AS(log_softmax(zeros({2, 3}), -3), doctest::Contains("log_softmax: dimension out of range"), Error);
}

// ---- cross_entropy_op ------------------------------------------------------------------------------
TEST_CASE("cross_entropy: values by hand for each reduction") {
  // Row 0 [0, 0, 0], target 1: log Σ e^x = ln 3, minus x[1] = 0 -> ln 3.
  // Row 1 [ln 3, 0, 0], target 0: log(3 + 1 + 1) = ln 5, minus ln 3 -> ln(5/3).
  const double l0 = ln3, l1 = std::log(5.0 / 3.0);
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const double tol = dt == kFloat32 ? 1e-6 : 1e-12;
    Tensor logits = tensor({{0.0, 0.0, 0.0}, {ln3, 0.0, 0.0}}, dt);
    Tensor target = tensor({1.0, 0.0}, dt);
    check_values(cross_entropy_op(logits, target, Reduction::None), {2}, {l0, l1}, tol);
    check_values(cross_entropy_op(logits, target, Reduction::Sum), {}, {l0 + l1}, tol);  // = ln 5
    check_values(cross_entropy_op(logits, target), {}, {(l0 + l1) / 2}, tol);            // Mean is the default
    // one sample, (C) logits and a 0-d target: [0, 0, 0, 0] -> ln 4 whatever the class
    check_values(cross_entropy_op(tensor({0.0, 0.0, 0.0, 0.0}, dt), tensor(2.0, dt), Reduction::None), {}, {ln4}, tol);
    check_values(cross_entropy_op(tensor({0.0, 0.0, 0.0, 0.0}, dt), tensor(2.0, dt)), {}, {ln4}, tol);
  }
}

TEST_CASE("cross_entropy: exact for logits of 1e4 and -1e4") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    // [1e4, -1e4]: log Σ e^x = 1e4 + log(1 + e^-2e4) = 1e4 exactly in floating point.
    // target 0: 1e4 - 1e4 = 0; target 1: 1e4 - (-1e4) = 2e4. Mean = 1e4.
    Tensor logits = tensor({{1e4, -1e4}, {1e4, -1e4}, {-1e4, -1e4}}, dt);
    Tensor target = tensor({0.0, 1.0, 0.0}, dt);
    // last row: both -1e4, so log Σ e^x = -1e4 + ln 2 and the loss is ln 2
    check_values(cross_entropy_op(logits, target, Reduction::None), {3}, {0, 2e4, ln2}, 1e-6);
    check_values(cross_entropy_op(logits, target, Reduction::Sum), {}, {2e4 + ln2}, 1e-6);
    // the gradient stays finite: softmax - onehot = [1, 0] - [1, 0] = 0, [1, 0] - [0, 1], [1/2, 1/2] - [1, 0]
    Tensor x = logits.clone().detach().requires_grad_();
    cross_entropy_op(x, target, Reduction::Sum).backward();
    check_values(x.grad(), {3, 2}, {0, 0, 1, -1, -0.5, 0.5}, 1e-6);
  }
}

TEST_CASE("cross_entropy: backward by hand, (softmax - onehot)/N for Mean") {
  // logits [[0, 0, 0]], target 1: softmax = [1/3, 1/3, 1/3], minus onehot [0, 1, 0], divided by N = 1
  Tensor x = tensor({{0.0, 0.0, 0.0}}, kFloat64, true);
  cross_entropy_op(x, tensor({1.0}, kFloat64)).backward();
  check_values(x.grad(), {1, 3}, {1.0 / 3, -2.0 / 3, 1.0 / 3});
  // two identical rows with Mean: each row gets half of that
  Tensor y = tensor({{0.0, 0.0, 0.0}, {0.0, 0.0, 0.0}}, kFloat64, true);
  cross_entropy_op(y, tensor({1.0, 1.0}, kFloat64)).backward();
  check_values(y.grad(), {2, 3}, {1.0 / 6, -1.0 / 3, 1.0 / 6, 1.0 / 6, -1.0 / 3, 1.0 / 6});
}

TEST_CASE("cross_entropy: equals nll_loss of log_softmax, for each reduction") {
  manual_seed(13);
  Tensor x = randn({4, 5}, kFloat64);
  Tensor t = tensor({0.0, 4.0, 2.0, 2.0}, kFloat64);
  for (Reduction r : all_reductions) {
    Tensor a = cross_entropy_op(x, t, r), b = nll_loss_op(log_softmax(x, 1), t, r);
    REQUIRE(a.shape() == b.shape());
    for (std::size_t i = 0; i < a.numel(); ++i)
      CHECK(a.data<double>().data()[i] == doctest::Approx(b.data<double>().data()[i]).epsilon(1e-12));
  }
}

TEST_CASE("cross_entropy: gradcheck and gradgradcheck w.r.t. logits for each reduction") {
  manual_seed(14);
  Tensor t = tensor({2.0, 0.0, 3.0}, kFloat64);
  for (Reduction r : all_reductions) {
    CAPTURE(static_cast<int>(r));
    check_grads([&t, r](const std::vector<Tensor>& in) { return cross_entropy_op(in[0], t, r); }, {param({3, 4})});
    check_grads([r](const std::vector<Tensor>& in) { return cross_entropy_op(in[0], tensor(1.0, kFloat64), r); },
                {param({4})});
  }
}

// ---- nll_loss_op -----------------------------------------------------------------------------------
TEST_CASE("nll_loss: values and gradient by hand for each reduction") {
  // picks -lp[i][t_i]: -(-3) = 3 for row 0 (target 2), -(-0.5) = 0.5 for row 1 (target 0)
  Tensor lp = tensor({{-1, -2, -3}, {-0.5, -1.5, -2.5}}, kFloat64);
  Tensor t = tensor({2.0, 0.0}, kFloat64);
  check_values(nll_loss_op(lp, t, Reduction::None), {2}, {3, 0.5});
  check_values(nll_loss_op(lp, t, Reduction::Sum), {}, {3.5});
  check_values(nll_loss_op(lp, t), {}, {1.75});
  check_values(nll_loss_op(tensor({-1.0, -2.0}, kFloat64), tensor(1.0, kFloat64)), {}, {2});
  // Mean: -1/N at each target position, 0 elsewhere
  Tensor x = lp.clone().detach().requires_grad_();
  nll_loss_op(x, t).backward();
  check_values(x.grad(), {2, 3}, {0, 0, -0.5, -0.5, 0, 0});
}

TEST_CASE("nll_loss: gradcheck and gradgradcheck for each reduction") {
  manual_seed(15);
  Tensor t = tensor({1.0, 0.0, 2.0}, kFloat64);
  for (Reduction r : all_reductions) {
    CAPTURE(static_cast<int>(r));
    check_grads([&t, r](const std::vector<Tensor>& in) { return nll_loss_op(in[0], t, r); }, {param({3, 3})});
    check_grads([r](const std::vector<Tensor>& in) { return nll_loss_op(in[0], tensor(0.0, kFloat64), r); }, {param({3})});
    // through log_softmax, the second derivative is not zero
    check_grads([&t, r](const std::vector<Tensor>& in) { return nll_loss_op(log_softmax(in[0], 1), t, r); }, {param({3, 3})});
  }
}

// ---- bce_with_logits_op ----------------------------------------------------------------------------
TEST_CASE("bce_with_logits: values by hand for each reduction") {
  // l = max(x,0) - x·y + log(1 + e^-|x|):
  //   x = 0,     y = 1:    0 - 0 + ln 2                       = ln 2
  //   x = ln 3,  y = 0:    ln 3 - 0 + ln(1 + 1/3)             = ln 4
  //   x = -ln 3, y = 1:    0 + ln 3 + ln(4/3)                 = ln 4
  //   x = ln 3,  y = 0.25: ln 3 - ln3/4 + ln(4/3) = ln 4 - ln 3 / 4
  const std::vector<double> expected = {ln2, ln4, ln4, ln4 - ln3 / 4};
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    const double tol = dt == kFloat32 ? 1e-6 : 1e-12;
    Tensor x = tensor({{0.0, ln3}, {-ln3, ln3}}, dt);
    Tensor y = tensor({{1.0, 0.0}, {1.0, 0.25}}, dt);
    check_values(bce_with_logits_op(x, y, Reduction::None), {2, 2}, expected, tol);
    const double total = expected[0] + expected[1] + expected[2] + expected[3];
    check_values(bce_with_logits_op(x, y, Reduction::Sum), {}, {total}, tol);
    check_values(bce_with_logits_op(x, y), {}, {total / 4}, tol);
  }
}

TEST_CASE("bce_with_logits: stable at logits of +-100") {
  for (Dtype dt : {kFloat32, kFloat64}) {
    CAPTURE(dt);
    // x = 100, y = 1: 100 - 100 + log1p(e^-100) = e^-100 (log1p(u) = u for tiny u); y = 0: 100 + e^-100 = 100.
    // x = -100, y = 0: 0 - 0 + e^-100; y = 1: 0 + 100 + e^-100 = 100.
    const double tiny = dt == kFloat32 ? static_cast<double>(std::exp(-100.0f)) : std::exp(-100.0);
    Tensor x = tensor({100.0, 100.0, -100.0, -100.0}, dt, true);
    Tensor y = tensor({1.0, 0.0, 0.0, 1.0}, dt);
    const Tensor losses = bce_with_logits_op(x, y, Reduction::None).to(kFloat64);
    // A relative check for the e^-100 entries (check_values' Approx would also accept 0 there, which
    // is what (100 + e^-100) - 100 gives). float32 holds e^-100 ≈ 3.7e-44 as a subnormal, a multiple
    // of 2^-149 ≈ 1.4e-45: there it may be off by one such step.
    const double tiny_tol = dt == kFloat32 ? 0x1p-149 : 1e-12 * tiny;
    CHECK(tiny > 0);
    CHECK(std::abs(losses.data<double>()(0) - tiny) <= tiny_tol);
    CHECK(std::abs(losses.data<double>()(2) - tiny) <= tiny_tol);
    CHECK(losses.data<double>()(1) == 100.0);  // 100 + e^-100 rounds to 100 in both dtypes
    CHECK(losses.data<double>()(3) == 100.0);
    bce_with_logits_op(x, y, Reduction::Sum).backward();
    // σ(x) - y: σ(100) = 1 and σ(-100) = e^-100 (≈ 0 at this tolerance)
    check_values(x.grad(), {4}, {0, 1, 0, -1}, 1e-6);
  }
}

TEST_CASE("bce_with_logits: backward by hand, σ(x) - y for logits and -x for targets") {
  // x = ln 3: σ = 3/4; with y = 0.25 the logit gradient is 1/2 and the target gradient -ln 3 (Sum).
  Tensor x = tensor({ln3}, kFloat64, true);
  Tensor y = tensor({0.25}, kFloat64, true);
  bce_with_logits_op(x, y, Reduction::Sum).backward();
  check_values(x.grad(), {1}, {0.5});
  check_values(y.grad(), {1}, {-ln3});
}

TEST_CASE("bce_with_logits: gradcheck and gradgradcheck w.r.t. logits and target for each reduction") {
  manual_seed(16);
  for (Reduction r : all_reductions) {
    CAPTURE(static_cast<int>(r));
    Tensor y = rand({2, 3}, kFloat64);
    y.requires_grad_();
    check_grads([r](const std::vector<Tensor>& in) { return bce_with_logits_op(in[0], in[1], r); }, {param({2, 3}), y});
    Tensor y_fixed = rand({4}, kFloat64);  // logits only
    check_grads([r](const std::vector<Tensor>& in) { return bce_with_logits_op(in[0], in[1], r); }, {param({4}), y_fixed});
  }
}

// ---- errors ---------------------------------------------------------------------------------------------
TEST_CASE("losses: bad targets and shapes are errors naming the values, positions and shapes") {
  Tensor logits = zeros({3, 4});
  CHECK_THROWS_WITH_AS(cross_entropy_op(logits, tensor({0.0, 1.5, 2.0})),
                       doctest::Contains("cross_entropy: target[1] = 1.5 is not an integral class index"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(logits, tensor({0.0, 1.0, 4.0})),
                       doctest::Contains("target[2] = 4 is out of range for 4 classes"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(logits, tensor({-1.0, 1.0, 2.0})), doctest::Contains("target[0] = -1 is out of range"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(logits, tensor({NAN, 1.0, 2.0})), doctest::Contains("target[0] = nan"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(logits, zeros({3, 1})),
                       doctest::Contains("target shape [3, 1] does not match logits shape [3, 4]"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(logits, zeros({2})), doctest::Contains("target shape [2] does not match logits shape [3, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(zeros({4}), zeros({1})), doctest::Contains("target shape [1] does not match logits shape [4]"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(logits, zeros({3}, kFloat64)), doctest::Contains("dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(zeros({2, 3, 4}), zeros({2})), doctest::Contains("(N, C) or (C), got [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy_op(tensor(1.0), tensor(0.0)), doctest::Contains("got []"), Error);

  CHECK_THROWS_WITH_AS(nll_loss_op(logits, tensor({0.0, 7.0, 2.0})), doctest::Contains("nll_loss: target[1] = 7 is out of range"),
                       Error);
  CHECK_THROWS_WITH_AS(nll_loss_op(logits, tensor({0.0, 1.0, 0.5})), doctest::Contains("target[2] = 0.5 is not an integral"),
                       Error);
  CHECK_THROWS_WITH_AS(nll_loss_op(logits, zeros({4})), doctest::Contains("target shape [4] does not match log_probs shape [3, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(nll_loss_op(logits, zeros({3}, kFloat64)), doctest::Contains("dtype mismatch"), Error);

  CHECK_THROWS_WITH_AS(bce_with_logits_op(zeros({2, 3}), zeros({3})),
                       doctest::Contains("target shape [3] must be the same as logits shape [2, 3]"), Error);
  CHECK_THROWS_WITH_AS(bce_with_logits_op(zeros({2, 3}), zeros({2, 3}, kFloat64)), doctest::Contains("dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(bce_with_logits_op(Tensor(), zeros({2, 3})), doctest::Contains("undefined"), Error);
}
