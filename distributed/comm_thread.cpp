#include "comm_thread.hpp"

#include <utility>

#ifdef __linux__
#include <sys/prctl.h>
#endif

namespace xgrad::distributed::detail {

CommThread::CommThread() : thread_([this] { loop(); }) {}

CommThread::~CommThread() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void CommThread::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
    ++submitted_;
  }
  wake_.notify_one();
}

void CommThread::wait_all() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return finished_ == submitted_; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void CommThread::loop() {
#ifdef __linux__
  // Its waits sleep a few microseconds at a time: without this, Linux stretches each sleep by up to
  // the default timer slack of 50 us.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
#endif
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stop_ and nothing left
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    std::exception_ptr error;
    try {
      task();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !error_) error_ = error;
    ++finished_;
    idle_.notify_all();
  }
}

}  // namespace xgrad::distributed::detail
