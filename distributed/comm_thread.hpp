// A worker thread that runs communication tasks in submission order, so allreduces progress while
// the submitting thread computes (OpenMPI has no progress thread of its own).
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace xgrad::distributed::detail {

class CommThread {
 public:
  CommThread();
  ~CommThread();  // finishes queued tasks, then joins
  CommThread(const CommThread&) = delete;
  CommThread& operator=(const CommThread&) = delete;

  void submit(std::function<void()> task);
  // Blocks until every submitted task has run; rethrows the first error a task threw (once).
  void wait_all();

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable wake_;   // a task arrived, or stop
  std::condition_variable idle_;   // a task finished
  std::deque<std::function<void()>> tasks_;
  std::size_t submitted_ = 0;
  std::size_t finished_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace xgrad::distributed::detail
