// Grad mode: whether ops record the graph. Thread-local, like PyTorch's.
#pragma once

namespace xgrad {

bool is_grad_enabled() noexcept;
void set_grad_enabled(bool enabled) noexcept;

// Sets grad mode for a scope and restores the previous mode on exit.
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) noexcept : previous_(is_grad_enabled()) { set_grad_enabled(enabled); }
  ~AutoGradMode() { set_grad_enabled(previous_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool previous_;
};

// RAII: no graph is recorded in this scope (this thread only).
class NoGradGuard : public AutoGradMode {
 public:
  NoGradGuard() noexcept : AutoGradMode(false) {}
};

}  // namespace xgrad
