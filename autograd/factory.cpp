// Creating tensors: from arrays and literals, factories, and the seedable random generator.
#include <atomic>
#include <cmath>
#include <mutex>
#include <numeric>
#include <random>

#include "detail/op_support.hpp"
#include "detail/random.hpp"
#include "detail/threads.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

extern "C" void openblas_set_num_threads(int);

namespace xgrad {

using detail::Array;
using detail::make_tensor;

// ---- From arrays and literals ------------------------------------------------------------------
Tensor tensor(const xt::xarray<float>& values, bool requires_grad) {
  return make_tensor(Array<float>(values)).requires_grad_(requires_grad);
}
Tensor tensor(const xt::xarray<double>& values, bool requires_grad) {
  return make_tensor(Array<double>(values)).requires_grad_(requires_grad);
}
Tensor tensor(xt::xarray<float>&& values, bool requires_grad) {
  return make_tensor(std::move(values)).requires_grad_(requires_grad);
}
Tensor tensor(xt::xarray<double>&& values, bool requires_grad) {
  return make_tensor(std::move(values)).requires_grad_(requires_grad);
}

namespace {
template <class Fill>
Tensor filled(const Shape& shape, Dtype dtype, Fill&& fill) {
  return detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    Array<T> a = detail::empty_array<T>(shape);
    fill(a.data(), a.size());
    return make_tensor(std::move(a));
  });
}
}  // namespace

Tensor tensor(std::initializer_list<double> values, Dtype dtype, bool requires_grad) {
  Tensor t = filled({values.size()}, dtype, [&](auto* p, std::size_t) {
    std::size_t i = 0;
    for (double v : values) p[i++] = static_cast<std::remove_pointer_t<decltype(p)>>(v);
  });
  return t.requires_grad_(requires_grad);
}

Tensor tensor(std::initializer_list<std::initializer_list<double>> values, Dtype dtype, bool requires_grad) {
  const std::size_t rows = values.size();
  const std::size_t cols = rows ? values.begin()->size() : 0;
  std::size_t r = 0;
  for (const auto& row : values) {
    if (row.size() != cols)
      detail::fail("tensor: ragged nested list, row 0 has ", cols, " values but row ", r, " has ", row.size());
    ++r;
  }
  Tensor t = filled({rows, cols}, dtype, [&](auto* p, std::size_t) {
    std::size_t i = 0;
    for (const auto& row : values)
      for (double v : row) p[i++] = static_cast<std::remove_pointer_t<decltype(p)>>(v);
  });
  return t.requires_grad_(requires_grad);
}

Tensor tensor(double value, Dtype dtype, bool requires_grad) {
  return scalar_tensor(value, dtype).requires_grad_(requires_grad);
}

Tensor scalar_tensor(double value, Dtype dtype) {
  return filled({}, dtype, [&](auto* p, std::size_t) { *p = static_cast<std::remove_pointer_t<decltype(p)>>(value); });
}

// ---- Factories ---------------------------------------------------------------------------------
Tensor empty(const Shape& shape, Dtype dtype) {
  detail::check_allocation("empty", shape, itemsize(dtype));
  return filled(shape, dtype, [](auto*, std::size_t) {});
}
Tensor full(const Shape& shape, double value, Dtype dtype) {
  detail::check_allocation("full", shape, itemsize(dtype));
  return filled(shape, dtype, [&](auto* p, std::size_t n) {
    std::fill(p, p + n, static_cast<std::remove_pointer_t<decltype(p)>>(value));
  });
}
Tensor zeros(const Shape& shape, Dtype dtype) {
  detail::check_allocation("zeros", shape, itemsize(dtype));
  return full(shape, 0.0, dtype);
}
Tensor ones(const Shape& shape, Dtype dtype) {
  detail::check_allocation("ones", shape, itemsize(dtype));
  return full(shape, 1.0, dtype);
}

Tensor arange(std::int64_t n, Dtype dtype) {
  if (n < 0) detail::fail("arange: end must be non-negative, got ", n);
  return arange(0.0, static_cast<double>(n), 1.0, dtype);
}

Tensor arange(double start, double end, double step, Dtype dtype) {
  if (step == 0 || !std::isfinite(step)) detail::fail("arange: step must be finite and nonzero, got ", step);
  if ((end - start) / step < 0)
    detail::fail("arange: upper bound and step are inconsistent (start ", start, ", end ", end, ", step ", step, ")");
  // NaN bounds, or a count beyond any real tensor, would make the size_t conversion below undefined.
  if (!(std::ceil((end - start) / step) <= 0x1p62))
    detail::fail("arange: cannot make a range from start ", start, " to end ", end, " with step ", step);
  detail::check_allocation("arange", Shape{static_cast<std::size_t>(std::ceil((end - start) / step))}, itemsize(dtype));
  const auto n = static_cast<std::size_t>(std::ceil((end - start) / step));
  return filled({n}, dtype, [&](auto* p, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      p[i] = static_cast<std::remove_pointer_t<decltype(p)>>(start + static_cast<double>(i) * step);
  });
}

Tensor eye(std::size_t n, Dtype dtype) { return eye(n, n, dtype); }
Tensor eye(std::size_t n, std::size_t m, Dtype dtype) {
  detail::check_allocation("eye", Shape{n, m}, itemsize(dtype));
  return filled({n, m}, dtype, [&](auto* p, std::size_t count) {
    std::fill(p, p + count, 0);
    for (std::size_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = 1;
  });
}

Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor rand_like(const Tensor& t) { return rand(t.shape(), t.dtype()); }
Tensor randn_like(const Tensor& t) { return randn(t.shape(), t.dtype()); }

// ---- Random ------------------------------------------------------------------------------------
namespace detail {
namespace {
std::mutex generator_mutex;
std::mt19937_64& generator_unlocked() {
  static std::mt19937_64 gen(0);
  return gen;
}
// 53 random bits -> [0, 1)
double next_uniform(std::mt19937_64& g) { return static_cast<double>(g() >> 11) * 0x1.0p-53; }
}  // namespace

void with_generator(const std::function<void(std::mt19937_64&)>& fn) {
  std::lock_guard<std::mutex> lock(generator_mutex);
  fn(generator_unlocked());
}

void fill_uniform(double* out, std::size_t n, double lo, double hi) {
  with_generator([&](std::mt19937_64& g) {
    for (std::size_t i = 0; i < n; ++i) out[i] = lo + (hi - lo) * next_uniform(g);
  });
}

void fill_normal(double* out, std::size_t n, double mean, double stddev) {
  // Box–Muller: two uniforms give two independent normals; written out so the stream is the same
  // on every standard library.
  with_generator([&](std::mt19937_64& g) {
    for (std::size_t i = 0; i < n; i += 2) {
      double u1 = next_uniform(g);
      const double u2 = next_uniform(g);
      if (u1 < 1e-300) u1 = 1e-300;
      const double r = std::sqrt(-2.0 * std::log(u1));
      out[i] = mean + stddev * r * std::cos(2.0 * M_PI * u2);
      if (i + 1 < n) out[i + 1] = mean + stddev * r * std::sin(2.0 * M_PI * u2);
    }
  });
}

std::uint64_t random_u64() {
  std::uint64_t v = 0;
  with_generator([&](std::mt19937_64& g) { v = g(); });
  return v;
}

void shuffle_indices(std::vector<std::size_t>& idx, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  for (std::size_t i = idx.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(g() % i);
    std::swap(idx[i - 1], idx[j]);
  }
}
}  // namespace detail

void manual_seed(std::uint64_t seed) {
  detail::with_generator([&](std::mt19937_64& g) { g.seed(seed); });
}

namespace {
Tensor from_doubles(const Shape& shape, Dtype dtype, const std::vector<double>& v) {
  return filled(shape, dtype, [&](auto* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::remove_pointer_t<decltype(p)>>(v[i]);
  });
}
}  // namespace

Tensor rand(const Shape& shape, Dtype dtype) {
  detail::check_allocation("rand", shape, sizeof(double));  // the draws are made in double first
  std::vector<double> v(detail::numel_of(shape));
  detail::fill_uniform(v.data(), v.size(), 0.0, 1.0);
  return from_doubles(shape, dtype, v);
}

Tensor randn(const Shape& shape, Dtype dtype) {
  detail::check_allocation("randn", shape, sizeof(double));
  std::vector<double> v(detail::numel_of(shape));
  detail::fill_normal(v.data(), v.size(), 0.0, 1.0);
  return from_doubles(shape, dtype, v);
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Dtype dtype) {
  if (high <= low) detail::fail("randint: empty range [", low, ", ", high, ")");
  detail::check_allocation("randint", shape, sizeof(double));
  std::vector<double> v(detail::numel_of(shape));
  const auto span = static_cast<std::uint64_t>(high - low);
  detail::with_generator([&](std::mt19937_64& g) {
    for (double& x : v) x = static_cast<double>(low + static_cast<std::int64_t>(g() % span));
  });
  return from_doubles(shape, dtype, v);
}

Tensor randperm(std::size_t n, Dtype dtype) {
  detail::check_allocation("randperm", Shape{n}, sizeof(std::size_t));
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  detail::shuffle_indices(idx, detail::random_u64());
  std::vector<double> v(idx.begin(), idx.end());
  return from_doubles({n}, dtype, v);
}

// ---- Threads -----------------------------------------------------------------------------------
// xgrad's only threads are OpenBLAS's: set_num_threads(n) caps them, and each GEMM asks for as many
// as its size pays for (detail::prepare_blas_threads), so small and medium products stay on one
// thread whatever the cap.
namespace {
std::atomic<int> num_threads{0};    // 0: not chosen yet, default_threads() on first use
std::atomic<int> blas_threads{0};   // what OpenBLAS was last told (0: not yet)

// CPUs this process may run on (its affinity mask: taskset, cpusets), at least 1.
int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// XGRAD_NUM_THREADS when set to a positive number. Otherwise 1 on a machine with at most 2 CPUs: there
// the second CPU is usually busy with something else (the OS, a data loader, another job on a shared VM),
// and a BLAS thread that has to wait for it costs more than it saves (measured on a 2-vCPU VM: W1 per
// step 6% slower with 2 threads while another process used one CPU). With more CPUs, one thread per
// CPU up to 16: beyond that a GEMM of the sizes a training step runs stops scaling.
int default_threads() { return detail::default_num_threads(std::getenv("XGRAD_NUM_THREADS"), available_cpus()); }

// Multiply-adds each BLAS thread must get before another one is worth starting: waking a sleeping
// OpenBLAS worker and joining it costs tens of µs, and a contended CPU makes the split a loss. Measured
// on a 2-vCPU VM, W1's largest GEMM (128x784x256, 2.6e7 multiply-adds) was slower on 2 threads inside
// a training step even with 8e6 per thread; 6.7e7 keeps every product of such a model on one thread
// and splits a 1024^3 product 16 ways.
constexpr double kFlopsPerBlasThread = 1 << 26;
}  // namespace

void set_num_threads(int n) {
  if (n < 1) detail::fail("set_num_threads: expected a positive number of threads, got ", n);
  num_threads = n;
}

int get_num_threads() {
  int n = num_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  int expected = 0;
  num_threads.compare_exchange_strong(expected, default_threads());
  return num_threads.load(std::memory_order_relaxed);
}

namespace detail {
int default_num_threads(const char* env_value, int cpus) noexcept {
  if (env_value) {
    const int n = std::atoi(env_value);
    if (n > 0) return n;
  }
  return cpus <= 2 ? 1 : std::min(cpus, 16);
}

void prepare_blas_threads(double flops) noexcept {
  const int cap = get_num_threads();
  const int want = static_cast<int>(std::clamp(flops / kFlopsPerBlasThread, 1.0, static_cast<double>(cap)));
  if (blas_threads.load(std::memory_order_relaxed) != want) {
    openblas_set_num_threads(want);  // a few ns: only records the count (the pool stays)
    blas_threads.store(want, std::memory_order_relaxed);
  }
}
}  // namespace detail

}  // namespace xgrad
