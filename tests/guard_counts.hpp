// Counters shared between tests/main.cpp's run guard and the tests that prove the guard works.
#pragma once
#include <vector>
#include <string>

namespace xgrad_test {

struct GuardCounts {
  bool run_started = false;  // false for queries (--list-test-cases, --count, --help)
  unsigned test_cases_run = 0;
  unsigned long long assertions = 0;
  std::vector<std::string> assertion_free;  // names of the test cases that made no assertion
};

inline GuardCounts& guard_counts() {
  static GuardCounts counts;
  return counts;
}

// The path of the running test executable (argv[0]), for tests that re-run it as a child process.
inline std::string& self_path_storage() {
  static std::string path;
  return path;
}
inline void set_self_path(const char* p) { self_path_storage() = p; }
inline const std::string& self_path() { return self_path_storage(); }

}  // namespace xgrad_test
