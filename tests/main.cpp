// The doctest main of every test executable, with two guards that make a silently empty test run
// impossible:
//  - a run whose filters select no test case fails. CTest runs one test case per entry, by name; a name
//    that CTest's discovery mangles (a ';' splits it into two entries) or a test case marked skip would
//    otherwise make doctest report "0 test cases" and exit 0, and CTest would count it as passed;
//  - a test case that finishes without a single assertion fails: it could not have failed either.
// Listing and counting runs (--list-test-cases, --count, used by CTest's discovery) are not test runs.
//
// With XGRAD_TEST_TALLY=<file> set, every run appends "<test cases run> <assertions>" as one line to
// that file, so scripts/xgrad.sh can report how many test cases actually ran across all CTest entries.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

#include "guard_counts.hpp"

namespace {

struct RunCounter : doctest::IReporter {
  explicit RunCounter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override { xgrad_test::guard_counts().run_started = true; }
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& tc) override {
    ++xgrad_test::guard_counts().test_cases_run;
    current_ = tc.m_name;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& st) override {
    // Called once per test case, after every pass through its subcases: the count is the total.
    auto& counts = xgrad_test::guard_counts();
    counts.assertions += static_cast<unsigned long long>(st.numAssertsCurrentTest);
    if (st.numAssertsCurrentTest == 0) counts.assertion_free.push_back(current_);
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}

 private:
  std::string current_;
};

REGISTER_LISTENER("xgrad_run_counter", 1, RunCounter);

void append_tally(unsigned cases, unsigned long long asserts) {
  const char* path = std::getenv("XGRAD_TEST_TALLY");
  if (!path || !*path) return;
  // One write(2) of a short line with O_APPEND: lines from parallel CTest entries never interleave.
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  const std::string line = std::to_string(cases) + " " + std::to_string(asserts) + "\n";
  [[maybe_unused]] const auto n = ::write(fd, line.data(), line.size());
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  xgrad_test::set_self_path(argc > 0 ? argv[0] : "");
  doctest::Context context(argc, argv);
  const int result = context.run();
  // --help, --version, --count and the listings (CTest's discovery) are queries: no test run started.
  if (context.shouldExit() || !xgrad_test::guard_counts().run_started) return result;

  const auto& counts = xgrad_test::guard_counts();
  int status = result;
  if (counts.test_cases_run == 0) {
    std::fprintf(stderr,
                 "xgrad test guard: the filters selected no test case, so nothing was tested. A CTest entry "
                 "must run exactly the test case it names (a ';' in a TEST_CASE name splits it; a skipped "
                 "test case runs nothing).\n");
    status = status ? status : 3;
  }
  for (const auto& name : counts.assertion_free) {
    std::fprintf(stderr, "xgrad test guard: test case \"%s\" made no assertion, so it could not fail.\n",
                 name.c_str());
    status = status ? status : 4;
  }
  append_tally(counts.test_cases_run, counts.assertions);
  return status;
}
