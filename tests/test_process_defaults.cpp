// What xgrad sets up by itself, checked where it happens: the glibc malloc tuning applied when the
// library loads, and the default thread cap chosen on first use from XGRAD_NUM_THREADS and the CPU
// affinity. Both are only visible in a fresh process, so these tests run the helper program
// tests/probe_process.cpp (XGRAD_PROBE_PATH) with a controlled environment and affinity and read what
// it reports. Also: a matrix product above the one-thread threshold really runs on more threads.
#include <doctest/doctest.h>

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad.hpp>

#include "autograd/detail/malloc_tuning.hpp"
#include "autograd/detail/threads.hpp"
#include "sanitizer.hpp"

extern "C" int openblas_get_num_threads(void);
extern char** environ;

using namespace xgrad;

namespace {

// Runs the probe in `mode` with this process's environment minus every variable that configures
// xgrad, glibc malloc or the BLAS threads, plus `extra` ("NAME=value"); pinned to `cpus` if given.
// Returns its output parsed as key=value pairs (empty if it failed).
std::map<std::string, std::string> run_probe(const std::string& mode, const std::vector<std::string>& extra = {},
                                             const std::optional<std::vector<int>>& cpus = std::nullopt) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string var = *e;
    const bool configures = var.rfind("XGRAD_", 0) == 0 || var.rfind("MALLOC_", 0) == 0 ||
                            var.rfind("GLIBC_TUNABLES=", 0) == 0 || var.rfind("OPENBLAS_", 0) == 0 ||
                            var.rfind("OMP_NUM_THREADS=", 0) == 0 || var.rfind("GOTO_NUM_THREADS=", 0) == 0;
    if (!configures) env.push_back(var);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  std::vector<char*> envp;
  for (std::string& v : env) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string path = XGRAD_PROBE_PATH;
  std::string mode_arg = mode;
  char* argv[] = {path.data(), mode_arg.data(), nullptr};
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpus)
    for (int c : *cpus) CPU_SET(c, &set);

  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the child: only async-signal-safe calls until execve
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    if (cpus && ::sched_setaffinity(0, sizeof(set), &set) != 0) ::_exit(126);
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  INFO("probe ", mode, " printed: ", text);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::map<std::string, std::string> fields;
  std::istringstream words(text);
  for (std::string w; words >> w;)
    if (const auto eq = w.find('='); eq != std::string::npos) fields[w.substr(0, eq)] = w.substr(eq + 1);
  return fields;
}

int as_int(const std::map<std::string, std::string>& fields, const std::string& key) {
  const auto it = fields.find(key);
  REQUIRE_MESSAGE(it != fields.end(), "the probe did not report ", key);
  return std::stoi(it->second);
}

// The CPUs this process may run on (its affinity mask), in increasing order.
std::vector<int> cpus_of_this_process() {
  cpu_set_t set;
  REQUIRE(::sched_getaffinity(0, sizeof(set), &set) == 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

}  // namespace

#if defined(__GLIBC__) && !XGRAD_UNDER_SANITIZER
// (A sanitizer's allocator replaces glibc malloc and refuses mallopt: nothing to observe there.)
TEST_CASE("process defaults: the malloc tuning is applied when the library loads") {
  // Untouched environment: the load-time hook ran before main. A 1 MiB block comes from the heap
  // (the mmap threshold is 32 MiB, not glibc's 128 KiB) and stays mapped after the free (the trim
  // threshold is 256 MiB). Without the hook both numbers flip, as the two runs below show.
  const auto tuned = run_probe("malloc");
  CHECK(as_int(tuned, "mmap_blocks") == 0);
  CHECK(as_int(tuned, "kept_bytes") >= (1 << 20));
  // XGRAD_MALLOC_TUNING=0: glibc's defaults, so the same block gets its own mapping.
  const auto opted_out = run_probe("malloc", {"XGRAD_MALLOC_TUNING=0"});
  CHECK(as_int(opted_out, "mmap_blocks") == 1);
  // A user who sets the mmap threshold keeps glibc's trim threshold too: the block now comes from the
  // heap but the freed top is trimmed back to the OS. (This is also what a hook that set only the
  // mmap threshold would give: the first run tells the two apart.)
  const auto user_mmap = run_probe("malloc", {"MALLOC_MMAP_THRESHOLD_=33554432"});
  CHECK(as_int(user_mmap, "mmap_blocks") == 0);
  CHECK(as_int(user_mmap, "kept_bytes") < (1 << 20));
  // GLIBC_TUNABLES with a malloc setting also counts as the user's choice.
  const auto tunables = run_probe("malloc", {"GLIBC_TUNABLES=glibc.malloc.check=0"});
  CHECK(as_int(tunables, "mmap_blocks") == 1);
}
#endif

TEST_CASE("process defaults: the thread cap rule, from XGRAD_NUM_THREADS and the CPU count") {
  using detail::default_num_threads;
  // Unset: 1 on at most 2 CPUs, else one per CPU up to 16.
  CHECK(default_num_threads(nullptr, 1) == 1);
  CHECK(default_num_threads(nullptr, 2) == 1);
  CHECK(default_num_threads(nullptr, 3) == 3);
  CHECK(default_num_threads(nullptr, 16) == 16);
  CHECK(default_num_threads(nullptr, 64) == 16);
  // A positive XGRAD_NUM_THREADS wins, even above the CPU count.
  CHECK(default_num_threads("4", 2) == 4);
  CHECK(default_num_threads("32", 64) == 32);
  // Anything else falls back to the CPU rule.
  CHECK(default_num_threads("0", 8) == 8);
  CHECK(default_num_threads("-3", 2) == 1);
  CHECK(default_num_threads("many", 3) == 3);
  CHECK(default_num_threads("", 40) == 16);
}

TEST_CASE("process defaults: the first get_num_threads reads XGRAD_NUM_THREADS and the affinity mask") {
  const std::vector<int> allowed = cpus_of_this_process();
  const int cpus = static_cast<int>(allowed.size());
  // No variable: the rule applied to this process's CPUs, and the big product follows the cap.
  const auto plain = run_probe("threads");
  CHECK(as_int(plain, "cpus") == cpus);
  CHECK(as_int(plain, "threads") == detail::default_num_threads(nullptr, cpus));
  CHECK(as_int(plain, "blas_threads") == std::min(2, as_int(plain, "threads")));
  CHECK(as_int(plain, "corner") == 512);  // a sum of 512 ones
  // XGRAD_NUM_THREADS=3: the cap is 3 whatever the CPUs; the product uses the 2 its size pays for.
  const auto three = run_probe("threads", {"XGRAD_NUM_THREADS=3"});
  CHECK(as_int(three, "threads") == 3);
  CHECK(as_int(three, "blas_threads") == 2);
  CHECK(as_int(three, "corner") == 512);
  // An unusable value is ignored.
  const auto junk = run_probe("threads", {"XGRAD_NUM_THREADS=zero"});
  CHECK(as_int(junk, "threads") == detail::default_num_threads(nullptr, cpus));
  // Pinned to one CPU: the affinity mask, not the machine's CPU count, decides: one thread, and the
  // big product stays on it.
  const auto pinned = run_probe("threads", {}, std::vector<int>{allowed[0]});
  CHECK(as_int(pinned, "cpus") == 1);
  CHECK(as_int(pinned, "threads") == 1);
  CHECK(as_int(pinned, "blas_threads") == 1);
  // Pinned to 3 CPUs where the machine has them: 3 threads (more than 2 CPUs: one per CPU).
  if (cpus >= 3) {
    const auto three_cpus = run_probe("threads", {}, std::vector<int>{allowed[0], allowed[1], allowed[2]});
    CHECK(as_int(three_cpus, "cpus") == 3);
    CHECK(as_int(three_cpus, "threads") == 3);
  }
}

TEST_CASE("process defaults: a product above the threshold runs on two threads and agrees with one") {
  const int before = get_num_threads();
  manual_seed(404);
  // 512·512·512 = 2^27 multiply-adds: two shares of 2^26, the multiply-adds each thread must get.
  const std::size_t n = 512;
  Tensor a = randn({n, n}, kFloat64).requires_grad_();
  Tensor b = randn({n, n}, kFloat64).requires_grad_();
  set_num_threads(2);
  Tensor c2 = matmul(a, b);
  CHECK(openblas_get_num_threads() == 2);  // the multi-threaded path was taken
  c2.sum().backward();                     // and the backward's two products (also 2^27 each) too
  CHECK(openblas_get_num_threads() == 2);
  const Tensor ga2 = a.grad(), gb2 = b.grad();
  // A product below the threshold stays on one thread under the same cap: 256^3 = 2^24.
  (void)matmul(ones({256, 256}), ones({256, 256}));
  CHECK(openblas_get_num_threads() == 1);

  set_num_threads(1);
  a.zero_grad();
  b.zero_grad();
  Tensor c1 = matmul(a, b);
  CHECK(openblas_get_num_threads() == 1);
  c1.sum().backward();
  set_num_threads(before);

  // Threads split rows and columns, not the sums: each entry agrees with the one-thread product and
  // with a plain loop, within the rounding bound of an n-term dot product: each of the two computations
  // is off by at most n·u·Σ|a_ik·b_kj| (u = 2^-53), so they differ by at most twice that. A wrong
  // split (a missing or doubled block) is off by O(1).
  const double u = std::ldexp(1.0, -53);
  const double* A = a.data<double>().data();
  const double* B = b.data<double>().data();
  const double* C1 = c1.data<double>().data();
  const double* C2 = c2.data<double>().data();
  std::size_t beyond_one = 0, beyond_naive = 0;
  std::vector<double> column(n);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t k = 0; k < n; ++k) column[k] = B[k * n + j];
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0, magnitude = 0;
      for (std::size_t k = 0; k < n; ++k) {
        s += A[i * n + k] * column[k];
        magnitude += std::abs(A[i * n + k] * column[k]);
      }
      const double bound = 2 * static_cast<double>(n) * u * magnitude;
      beyond_one += std::abs(C2[i * n + j] - C1[i * n + j]) > bound;
      beyond_naive += std::abs(C2[i * n + j] - s) > bound;
    }
  }
  CHECK(beyond_one == 0);
  CHECK(beyond_naive == 0);
  // d(sum(A·B))/dA = 1·Bᵀ: every row of the gradient holds the row sums of B; d/dB = Aᵀ·1: every
  // column holds the column sums of A.
  std::size_t grad_off = 0;
  for (std::size_t k = 0; k < n; ++k) {
    double row_b = 0, row_b_abs = 0, col_a = 0, col_a_abs = 0;
    for (std::size_t j = 0; j < n; ++j) row_b += B[k * n + j], row_b_abs += std::abs(B[k * n + j]);
    for (std::size_t i = 0; i < n; ++i) col_a += A[i * n + k], col_a_abs += std::abs(A[i * n + k]);
    grad_off += std::abs(ga2.data<double>()(7, k) - row_b) > 2 * static_cast<double>(n) * u * row_b_abs;
    grad_off += std::abs(gb2.data<double>()(k, 11) - col_a) > 2 * static_cast<double>(n) * u * col_a_abs;
    grad_off += std::abs(ga2.data<double>()(7, k) - a.grad().data<double>()(7, k)) > 2 * static_cast<double>(n) * u * row_b_abs;
    grad_off += std::abs(gb2.data<double>()(k, 11) - b.grad().data<double>()(k, 11)) > 2 * static_cast<double>(n) * u * col_a_abs;
  }
  CHECK(grad_off == 0);
}
