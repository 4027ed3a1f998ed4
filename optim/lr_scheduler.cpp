// Schedulers: PyTorch's chainable get_lr() formulas, evaluated in the same order (so in double the
// values agree with torch's to the last bit).
#include "lr_scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <numbers>

#include "../autograd/error.hpp"
#include "../autograd/ops.hpp"

// Python's arithmetic exactly: no multiply-add fused by the compiler.
#pragma GCC optimize("fp-contract=off")

namespace xgrad::optim {

using xgrad::detail::fail;

LRScheduler::LRScheduler(Optimizer& optimizer)
    : optimizer_(optimizer), base_lr_(optimizer.lr()), last_lr_(optimizer.lr()) {}

void LRScheduler::initial_step() {
  is_initial_ = true;
  step();
  is_initial_ = false;
}

void LRScheduler::step() {
  ++last_epoch_;
  ++step_count_;
  double lr = 0;
  try {
    lr = compute_lr();
    optimizer_.set_lr(lr);
  } catch (...) {
    --last_epoch_;  // leave the scheduler as it was
    --step_count_;
    throw;
  }
  last_lr_ = optimizer_.lr();
}

namespace {

const char* const kSchedulerFields[] = {"last_epoch", "_step_count", "base_lr", "last_lr"};

}  // namespace

StateDict LRScheduler::state_dict() const {
  return {{"last_epoch", tensor(static_cast<double>(last_epoch_), kFloat64)},
          {"_step_count", tensor(static_cast<double>(step_count_), kFloat64)},
          {"base_lr", tensor(base_lr_, kFloat64)},
          {"last_lr", tensor(last_lr_, kFloat64)}};
}

void LRScheduler::load_state_dict(const StateDict& state) {
  std::map<std::string, double> values;
  for (const auto& [name, t] : state) {
    if (std::find(std::begin(kSchedulerFields), std::end(kSchedulerFields), name) == std::end(kSchedulerFields))
      fail("LRScheduler::load_state_dict: unknown entry '", name, "'");
    if (!t.defined() || t.numel() != 1)
      fail("LRScheduler::load_state_dict: entry '", name, "' must hold one value, got ",
           t.defined() ? shape_str(t.shape()) : std::string("undefined"));
    values[name] = t.item();
  }
  for (const char* name : kSchedulerFields)
    if (!values.count(name)) fail("LRScheduler::load_state_dict: missing entry '", name, "'");
  for (const char* name : {"last_epoch", "_step_count"}) {
    const double v = values[name];
    if (!(v >= -1 && v <= 9.0e15 && v == std::floor(v)))
      fail("LRScheduler::load_state_dict: entry '", name, "' must be an integer >= -1, got ", v);
  }
  last_epoch_ = static_cast<std::int64_t>(values["last_epoch"]);
  step_count_ = static_cast<std::int64_t>(values["_step_count"]);
  base_lr_ = values["base_lr"];
  last_lr_ = values["last_lr"];
}

// ---- StepLR ----------------------------------------------------------------------------------------
StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size < 1) fail("StepLR: invalid step_size ", step_size, " (must be >= 1)");
  if (!(gamma >= 0)) fail("StepLR: invalid gamma ", gamma, " (must be >= 0)");
  initial_step();
}

double StepLR::compute_lr() const {
  if (last_epoch() == 0 || last_epoch() % step_size_ != 0) return current_lr();
  return current_lr() * gamma_;
}

// ---- ExponentialLR ---------------------------------------------------------------------------------
ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) {
  if (!(gamma >= 0)) fail("ExponentialLR: invalid gamma ", gamma, " (must be >= 0)");
  initial_step();
}

double ExponentialLR::compute_lr() const {
  if (is_initial()) return current_lr();
  return current_lr() * gamma_;
}

// ---- CosineAnnealingLR -----------------------------------------------------------------------------
CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min)
    : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
  if (T_max < 1) fail("CosineAnnealingLR: invalid T_max ", T_max, " (must be >= 1)");
  if (!(eta_min >= 0)) fail("CosineAnnealingLR: invalid eta_min ", eta_min, " (must be >= 0)");
  initial_step();
}

double CosineAnnealingLR::compute_lr() const {
  constexpr double pi = std::numbers::pi;  // == math.pi
  const double lr = current_lr();
  const std::int64_t epoch = last_epoch();
  const auto T = static_cast<double>(T_max_);
  if (is_initial()) return lr;
  // Python's (epoch - 1 - T_max) % (2 * T_max) == 0, with a non-negative remainder.
  const std::int64_t period = 2 * T_max_;
  const std::int64_t phase = ((epoch - 1 - T_max_) % period + period) % period;
  if (phase == 0) return lr + (base_lr() - eta_min_) * (1 - std::cos(pi / T)) / 2;
  return (1 + std::cos(pi * static_cast<double>(epoch) / T)) / (1 + std::cos(pi * static_cast<double>(epoch - 1) / T)) *
             (lr - eta_min_) +
         eta_min_;
}

}  // namespace xgrad::optim
