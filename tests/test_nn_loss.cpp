#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <type_traits>

#include <xgrad.hpp>

#include "helpers.hpp"

using namespace xgrad;
using test::check_values;
namespace F = xgrad::nn::functional;
using nn::Reduction;

static_assert(std::is_same_v<nn::Reduction, xgrad::Reduction>);

namespace {

bool all_finite(const Tensor& t) {
  for (double v : t.data<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

const Reduction kReductions[] = {Reduction::Mean, Reduction::Sum, Reduction::None};

}  // namespace

TEST_CASE("nn losses: MSE and L1 values by hand for each reduction") {
  Tensor input = tensor({1.0, 2.0, 3.0});
  Tensor target = tensor({0.0, 2.0, 5.0});
  // differences [1, 0, -2]: squares [1, 0, 4] (sum 5, mean 5/3); absolute values [1, 0, 2] (sum 3, mean 1).
  check_values(F::mse_loss(input, target), {}, {5.0 / 3}, 1e-6);
  check_values(F::mse_loss(input, target, Reduction::Sum), {}, {5.0}, 1e-6);
  check_values(F::mse_loss(input, target, Reduction::None), {3}, {1.0, 0.0, 4.0}, 1e-6);
  check_values(F::l1_loss(input, target), {}, {1.0}, 1e-6);
  check_values(F::l1_loss(input, target, Reduction::Sum), {}, {3.0}, 1e-6);
  check_values(F::l1_loss(input, target, Reduction::None), {3}, {1.0, 0.0, 2.0}, 1e-6);
  check_values(nn::MSELoss()(input, target), {}, {5.0 / 3}, 1e-6);
  check_values(nn::L1Loss(Reduction::Sum)(input, target), {}, {3.0}, 1e-6);
  // Loss modules are copyable callables, e.g. into a std::function.
  std::function<Tensor(const Tensor&, const Tensor&)> fn = nn::L1Loss(Reduction::Sum);
  check_values(fn(input, target), {}, {3.0}, 1e-6);
}

TEST_CASE("nn losses: BCE values, the -100 clamp at 0 and 1, and the range check") {
  // -log(0.5) for target 1 at p = 0.5; -log(1 - 0.8) = -log(0.2) for target 0 at p = 0.8.
  Tensor p = tensor({0.5, 0.8}, kFloat64);
  Tensor t = tensor({1.0, 0.0}, kFloat64);
  check_values(F::binary_cross_entropy(p, t, Reduction::None), {2}, {std::log(2.0), -std::log(0.2)}, 1e-12);
  check_values(nn::BCELoss()(p, t), {}, {(std::log(2.0) - std::log(0.2)) / 2}, 1e-12);
  // A soft target mixes both terms: t = 0.25 at p = 0.5 gives -(0.25 + 0.75)·log(0.5) = log 2.
  check_values(F::binary_cross_entropy(tensor({0.5}, kFloat64), tensor({0.25}, kFloat64), Reduction::Sum), {},
               {std::log(2.0)}, 1e-12);

  // At p exactly 0 or 1 the log is clamped at -100: a right answer costs 0, a wrong one 100.
  Tensor edge = tensor({0.0, 1.0, 0.0, 1.0}, kFloat64, true);
  Tensor labels = tensor({0.0, 1.0, 1.0, 0.0}, kFloat64);
  Tensor per_item = F::binary_cross_entropy(edge, labels, Reduction::None);
  check_values(per_item, {4}, {0.0, 0.0, 100.0, 100.0}, 1e-6);
  Tensor loss = F::binary_cross_entropy(edge, labels);
  check_values(loss, {}, {50.0}, 1e-6);
  loss.backward();
  CHECK(all_finite(edge.grad()));
  // The gradient where the clamp is active is PyTorch's: dl/dp = (p - t) / max(p(1 - p), 1e-12), times
  // 1/4 for the mean. At p = 0 or 1, p(1 - p) = 0 is clamped to 1e-12: a right answer (p = t) gets
  // 0, a wrong one (1 - 0)/1e-12/4 = 2.5e11 in the direction that corrects it. (A zero gradient, what
  // the clamped log alone would give, would leave a confidently wrong prediction stuck.)
  check_values(edge.grad(), {4}, {0.0, 0.0, -0.25e12, 0.25e12}, 1e-12);

  CHECK_THROWS_WITH_AS(F::binary_cross_entropy(tensor({0.5, 1.5}), tensor({1.0, 0.0})),
                       doctest::Contains("found 1.5 at flat index 1"), Error);
  CHECK_THROWS_WITH_AS(F::binary_cross_entropy(tensor({-0.25}), tensor({1.0})), doctest::Contains("-0.25"), Error);
  CHECK_THROWS_WITH_AS(F::binary_cross_entropy(tensor({NAN}), tensor({1.0})), doctest::Contains("nan"), Error);
}

TEST_CASE("nn losses: BCE with logits is stable at ±100") {
  // loss = max(x, 0) - x·t + log(1 + e^-|x|); e^-100 ≈ 3.7e-44 vanishes next to the other terms.
  // x = 100, t = 1: 100 - 100 = 0;  x = -100, t = 0: 0;  x = 100, t = 0: 100;  x = -100, t = 1: 100.
  Tensor x = tensor({100.0, -100.0, 100.0, -100.0}, kFloat64, true);
  Tensor t = tensor({1.0, 0.0, 0.0, 1.0}, kFloat64);
  check_values(F::binary_cross_entropy_with_logits(x, t, Reduction::None), {4}, {0.0, 0.0, 100.0, 100.0}, 1e-6);
  Tensor loss = nn::BCEWithLogitsLoss()(x, t);
  check_values(loss, {}, {50.0}, 1e-6);
  loss.backward();
  // d/dx = (sigmoid(x) - t)/4: [0, 0, 1, -1]/4.
  check_values(x.grad(), {4}, {0.0, 0.0, 0.25, -0.25}, 1e-6);
  // float32 too.
  Tensor x32 = tensor({100.0, -100.0});
  check_values(F::binary_cross_entropy_with_logits(x32, tensor({0.0, 0.0}), Reduction::Sum), {}, {100.0}, 1e-6);
  // At moderate logits it agrees with BCE of the sigmoid.
  Tensor z = tensor({-1.5, 0.2, 3.0}, kFloat64);
  Tensor y = tensor({0.0, 1.0, 1.0}, kFloat64);
  CHECK(F::binary_cross_entropy_with_logits(z, y).item() ==
        doctest::Approx(F::binary_cross_entropy(sigmoid(z), y).item()).epsilon(1e-12));
}

TEST_CASE("nn losses: cross entropy and NLL values by hand") {
  // Row [1, 2, 3] with class 2: -log(e³/(e + e² + e³)) = log(1 + e^-1 + e^-2).
  // Row [0, 0, 0] with class 0: log 3.
  Tensor logits = tensor({{1.0, 2.0, 3.0}, {0.0, 0.0, 0.0}}, kFloat64);
  Tensor target = tensor({2.0, 0.0}, kFloat64);
  const double l0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0)), l1 = std::log(3.0);
  check_values(F::cross_entropy(logits, target, Reduction::None), {2}, {l0, l1}, 1e-12);
  check_values(F::cross_entropy(logits, target), {}, {(l0 + l1) / 2}, 1e-12);
  check_values(nn::CrossEntropyLoss(Reduction::Sum)(logits, target), {}, {l0 + l1}, 1e-12);
  // cross_entropy = nll_loss of log_softmax.
  CHECK(F::nll_loss(log_softmax(logits, 1), target).item() == doctest::Approx((l0 + l1) / 2).epsilon(1e-12));

  // NLL picks -input[n, target[n]]: [-(-2), -(-3)] = [2, 3], mean 2.5.
  Tensor log_probs = tensor({{-1.0, -2.0}, {-3.0, -0.5}});
  Tensor classes = tensor({1.0, 0.0});
  check_values(nn::NLLLoss()(log_probs, classes), {}, {2.5}, 1e-6);
  check_values(F::nll_loss(log_probs, classes, Reduction::Sum), {}, {5.0}, 1e-6);
  check_values(F::nll_loss(log_probs, classes, Reduction::None), {2}, {2.0, 3.0}, 1e-6);
}

TEST_CASE("nn losses: gradcheck for every loss and reduction") {
  Tensor a = tensor({{0.3, -1.2, 2.0}, {0.5, 0.1, -0.7}}, kFloat64, true);
  Tensor b = tensor({{1.0, -0.2, 1.4}, {-0.5, 0.9, 0.0}}, kFloat64, true);  // no tie with a (|a-b| kink)
  Tensor p = tensor({{0.2, 0.7, 0.45}, {0.9, 0.05, 0.6}}, kFloat64, true);
  Tensor soft = tensor({{1.0, 0.0, 0.3}, {0.5, 1.0, 0.0}}, kFloat64, true);
  Tensor labels = tensor({2.0, 0.0}, kFloat64);
  for (Reduction r : kReductions) {
    CAPTURE(static_cast<int>(r));
    CHECK(gradcheck([r](const std::vector<Tensor>& in) { return F::mse_loss(in[0], in[1], r); }, {a, b}));
    CHECK(gradgradcheck([r](const std::vector<Tensor>& in) { return F::mse_loss(in[0], in[1], r); }, {a, b}));
    CHECK(gradcheck([r](const std::vector<Tensor>& in) { return F::l1_loss(in[0], in[1], r); }, {a, b}));
    // |a - b| is linear away from its kink, so its second derivative is 0: gradgradcheck checks that
    // the backward graph (sign(a - b) times the incoming gradient) is differentiable and says so.
    CHECK(gradgradcheck([r](const std::vector<Tensor>& in) { return F::l1_loss(in[0], in[1], r); }, {a, b}));
    CHECK(gradcheck([r](const std::vector<Tensor>& in) { return F::binary_cross_entropy(in[0], in[1], r); },
                    {p, soft}));
    CHECK(gradgradcheck([r](const std::vector<Tensor>& in) { return F::binary_cross_entropy(in[0], in[1], r); },
                        {p, soft}));
    CHECK(gradcheck(
        [r](const std::vector<Tensor>& in) { return F::binary_cross_entropy_with_logits(in[0], in[1], r); }, {a, soft}));
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return F::cross_entropy(in[0], labels, r); }, {a}));
    CHECK(gradgradcheck([&](const std::vector<Tensor>& in) { return F::cross_entropy(in[0], labels, r); }, {a}));
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return F::nll_loss(in[0], labels, r); }, {a}));
  }
}

TEST_CASE("nn losses: bad targets and misuse") {
  CHECK_THROWS_WITH_AS(F::mse_loss(ones({2, 3}), ones({3})), doctest::Contains("input shape [2, 3] and target shape [3]"),
                       Error);
  CHECK_THROWS_WITH_AS(F::l1_loss(ones({4, 1}), ones({4})), doctest::Contains("[4, 1]"), Error);
  CHECK_THROWS_WITH_AS(F::binary_cross_entropy(full({2}, 0.5), ones({2, 1})), doctest::Contains("[2, 1]"), Error);
  CHECK_THROWS_WITH_AS(F::binary_cross_entropy_with_logits(ones({3}), ones({2})),
                       doctest::Contains("input shape [3] and target shape [2]"), Error);
  CHECK_THROWS_WITH_AS(F::mse_loss(ones({2}), ones({2}, kFloat64)), doctest::Contains("float64"), Error);

  Tensor logits = zeros({2, 3});
  CHECK_THROWS_WITH_AS(F::cross_entropy(logits, tensor({0.0, 3.0})), doctest::Contains("3"), Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(logits, tensor({0.0, 3.0})), doctest::Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(logits, tensor({0.5, 1.0})), doctest::Contains("0.5"), Error);
  CHECK_THROWS_WITH_AS(F::nll_loss(logits, tensor({-1.0, 1.0})), doctest::Contains("-1"), Error);
  CHECK_THROWS_WITH_AS(F::cross_entropy(logits, tensor({0.0, 1.0, 2.0})), doctest::Contains("[3]"), Error);

  // A loss module needs a target.
  nn::MSELoss mse;
  nn::Module& as_module = mse;
  CHECK_THROWS_WITH_AS(as_module(ones({2})), doctest::Contains("MSELoss: a loss takes (input, target)"), Error);
}
