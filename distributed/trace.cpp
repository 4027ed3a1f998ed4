#include "trace.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace xgrad::distributed::detail {

double now_us() {
  using namespace std::chrono;
  return duration<double, std::micro>(steady_clock::now().time_since_epoch()).count();
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

Trace::Trace(std::string path, int rank, int world_size) : path_(std::move(path)), rank_(rank) {
  if (path_.empty() || world_size <= 1 || rank == 0) return;
  const std::string suffix = ".rank" + std::to_string(rank) + ".json";
  const bool json = path_.size() > 5 && path_.compare(path_.size() - 5, 5, ".json") == 0;
  path_ = (json ? path_.substr(0, path_.size() - 5) : path_) + suffix;
}

void Trace::span(const char* name, int tid, double start_us, double end_us, std::int64_t bytes) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  if (events_.size() >= 1'000'000) return;  // a bound on memory for very long runs
  events_.push_back(Event{name, tid, start_us, end_us - start_us, bytes});
}

Trace::~Trace() {
  if (!enabled()) return;
  std::FILE* f = std::fopen(path_.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "xgrad: cannot write the DDP trace %s\n", path_.c_str());
    return;
  }
  std::fprintf(f, "{\"traceEvents\":[\n");
  std::fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"rank %d\"}},\n", rank_, rank_);
  std::fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":\"compute\"}},\n", rank_);
  std::fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":1,\"args\":{\"name\":\"communication\"}}",
               rank_);
  for (const Event& e : events_) {
    std::fprintf(f, ",\n{\"name\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f", e.name, rank_,
                 e.tid, e.start_us, e.dur_us);
    if (e.bytes >= 0) std::fprintf(f, ",\"args\":{\"bytes\":%lld}", static_cast<long long>(e.bytes));
    std::fprintf(f, "}");
  }
  std::fprintf(f, "\n],\"displayTimeUnit\":\"ms\"}\n");
  std::fclose(f);
}

}  // namespace xgrad::distributed::detail
