// Learning-rate schedulers, PyTorch's chainable forms: each step() (once per epoch) computes the new
// rate from the optimizer's current one, sets it with opt.set_lr, and get_last_lr() returns it. The
// values match torch.optim.lr_scheduler's get_last_lr() for the same sequence of steps.
#pragma once
#include <cstdint>
#include <string>

#include "optimizer.hpp"

namespace xgrad::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch and updates the optimizer's learning rate.
  void step();
  // The learning rate set by the last step (the constructor counts as step 0).
  double get_last_lr() const noexcept { return last_lr_; }
  // The epoch index of the last step: 0 right after construction.
  std::int64_t last_epoch() const noexcept { return last_epoch_; }
  // The learning rate the optimizer had when the scheduler was created.
  double base_lr() const noexcept { return base_lr_; }
  Optimizer& optimizer() noexcept { return optimizer_; }

  // The scheduler's progress as float64 0-d tensors, PyTorch's names: "last_epoch", "_step_count",
  // "base_lr", "last_lr" (the hyper-parameters given to the constructor are not state). Like
  // PyTorch's, loading does not touch the optimizer: its own state dict carries the learning rate.
  StateDict state_dict() const;
  // Validates every entry first (missing, unknown, misshaped or non-integral counts are named in the
  // Error) and changes nothing when it throws.
  void load_state_dict(const StateDict& state);

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  // PyTorch's constructor-time step (epoch 0); derived constructors call it last.
  void initial_step();
  // PyTorch's get_lr(): the new learning rate for last_epoch(), from the current one.
  virtual double compute_lr() const = 0;
  bool is_initial() const noexcept { return is_initial_; }
  double current_lr() const noexcept { return optimizer_.lr(); }
  std::int64_t step_count() const noexcept { return step_count_; }

 private:
  Optimizer& optimizer_;
  double base_lr_;
  double last_lr_;
  std::int64_t last_epoch_ = -1;
  std::int64_t step_count_ = 0;
  bool is_initial_ = false;
};

// lr = lr * gamma every step_size epochs.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

 protected:
  double compute_lr() const override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

// lr = lr * gamma every epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  double compute_lr() const override;

 private:
  double gamma_;
};

// Cosine annealing from the initial lr down to eta_min over T_max epochs (then back up, as PyTorch's
// recursive form does): lr_t = eta_min + (lr_0 - eta_min) * (1 + cos(pi * t / T_max)) / 2.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0);

 protected:
  double compute_lr() const override;

 private:
  std::int64_t T_max_;
  double eta_min_;
};

}  // namespace xgrad::optim
