// A Chrome trace (chrome://tracing, Perfetto) of DDP's spans, written when XGRAD_DDP_TRACE names a file.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace xgrad::distributed::detail {

// Microseconds on the host's monotonic clock: the same clock in every process on one host, so the
// ranks' spans line up.
double now_us();
// Processor time of the calling thread, in seconds.
double thread_cpu_seconds();

class Trace {
 public:
  // Enabled when `path` is not empty. Rank r > 0 of a multi-rank job writes "<stem>.rank<r>.json".
  Trace(std::string path, int rank, int world_size);
  ~Trace();  // writes the file
  bool enabled() const noexcept { return !path_.empty(); }
  // A complete span on thread `tid` (0 = compute, 1 = communication). Thread-safe.
  void span(const char* name, int tid, double start_us, double end_us, std::int64_t bytes = -1);

 private:
  struct Event {
    const char* name;
    int tid;
    double start_us, dur_us;
    std::int64_t bytes;
  };
  std::string path_;
  int rank_;
  std::mutex mutex_;
  std::vector<Event> events_;
};

}  // namespace xgrad::distributed::detail
