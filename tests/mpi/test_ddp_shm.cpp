// DDP's shared-memory averaging (distributed/shm_allreduce.hpp) against the MPI_Allreduce path and
// against the exact average: odd sizes, slices of nothing, several pieces, back-to-back averages.
#include <distributed/shm_allreduce.hpp>
#include <numeric>

#include "helpers.hpp"

using namespace xgrad;
using namespace xgrad::mpi_test;
using distributed::DDPOptions;
using distributed::DDPReduction;
using distributed::DistributedDataParallel;
using distributed::detail::Piece;
using distributed::detail::ShmAllreduce;

namespace {

// Rank r's value at element i: distinct per rank and element, with rounding in the sum.
template <class T>
T contribution(int r, std::size_t i, int round) {
  return T(0.1) * T(r + 1) + T(1e-3) * T(i % 977) + T(round) / T(7);
}

// The average every rank must produce: the sum in rank order times 1/N, as the implementation
// documents (so bitwise equality is the expectation, not a tolerance).
template <class T>
T expected_average(std::size_t i, int round) {
  T acc = contribution<T>(0, i, round) + contribution<T>(1, i, round);
  for (int r = 2; r < world(); ++r) acc += contribution<T>(r, i, round);
  return acc * (T(1) / T(world()));
}

template <class T>
void check_shm_average(const std::vector<std::size_t>& piece_sizes, int rounds) {
  const std::size_t n = std::accumulate(piece_sizes.begin(), piece_sizes.end(), std::size_t(0));
  // Two regions, used alternately: consecutive averages must not disturb each other.
  auto shm = ShmAllreduce::create(MPI_COMM_WORLD, {n * sizeof(T), n * sizeof(T) + 8});
  REQUIRE(shm != nullptr);  // mpirun on this one machine
  CHECK(shm->size() == world());
  std::vector<std::vector<T>> buffers;
  for (std::size_t c : piece_sizes) buffers.emplace_back(c);
  std::size_t wrong = 0;
  for (int round = 0; round < rounds; ++round) {
    std::vector<Piece> pieces;
    std::size_t at = 0;
    for (auto& b : buffers) {
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = contribution<T>(me(), at + i, round);
      pieces.push_back({b.data(), b.size()});
      at += b.size();
    }
    shm->average(std::size_t(round % 2), std::is_same_v<T, float> ? kFloat32 : kFloat64, pieces, [](int) {});
    at = 0;
    for (const auto& b : buffers) {
      for (std::size_t i = 0; i < b.size(); ++i) {
        const T want = expected_average<T>(at + i, round);
        if (std::memcmp(&b[i], &want, sizeof(T)) != 0) ++wrong;
      }
      at += b.size();
    }
  }
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("ddp shm: averages bitwise equal to the rank-order sum times 1/N, for sizes not divisible by N") {
  // 1 element: every slice but the last is empty; 15, 17, 33, 4099: slices on 16-element boundaries
  // with a remainder; 4096 * 3 + 5: several 2048-element chunks per slice.
  for (std::size_t n : {std::size_t(1), std::size_t(2), std::size_t(3), std::size_t(15), std::size_t(17),
                        std::size_t(33), std::size_t(4099), std::size_t(4096 * 3 + 5)}) {
    CAPTURE(n);
    check_shm_average<float>({n}, 3);
    check_shm_average<double>({n}, 3);
  }
}

TEST_CASE("ddp shm: a bucket of several pieces, some empty, crossing slice boundaries") {
  check_shm_average<float>({3, 0, 17, 1, 2048 + 7, 5}, 4);
  check_shm_average<double>({0, 1, 31, 1000}, 4);
}

TEST_CASE("ddp shm: many back-to-back averages in two regions stay consistent") {
  // The ranks run ahead of each other by up to one average: a rank may copy its next bucket in while
  // another still copies out the previous one.
  check_shm_average<float>({1000, 24}, 200);
}

TEST_CASE("ddp shm: bad region or size is an error") {
  auto shm = ShmAllreduce::create(MPI_COMM_WORLD, {16});
  REQUIRE(shm != nullptr);
  std::vector<float> v(5);
  CHECK_THROWS_WITH_AS(shm->average(1, kFloat32, {{v.data(), v.size()}}, [](int) {}),
                       doctest::Contains("shared-memory region 1"), Error);
  CHECK_THROWS_WITH_AS(shm->average(0, kFloat32, {{v.data(), v.size()}}, [](int) {}),
                       doctest::Contains("cannot hold 20 bytes"), Error);
}

TEST_CASE("ddp shm: ranks averaging different buffers all throw instead of mixing them") {
  // Rank 0 averages 10 elements of region 0 while the others average 12 (or region 1): a rank that
  // skipped or reordered a bucket. Without the check each rank would sum its slice with the other
  // ranks' unrelated bytes and carry on; with it every rank throws, naming the mismatch.
  auto shm = ShmAllreduce::create(MPI_COMM_WORLD, {64 * sizeof(float), 64 * sizeof(float)});
  REQUIRE(shm != nullptr);
  std::vector<float> v(12, float(me()));
  const std::size_t count = me() == 0 ? 10 : 12;
  CHECK_THROWS_WITH_AS(shm->average(0, kFloat32, {{v.data(), count}}, [](int) {}),
                       doctest::Contains("is averaging another buffer than rank"), Error);
  // The buffer is untouched past the copy into shared memory: no rank summed anything.
  for (float x : v) CHECK(x == float(me()));
  auto shm2 = ShmAllreduce::create(MPI_COMM_WORLD, {64 * sizeof(float), 64 * sizeof(float)});
  REQUIRE(shm2 != nullptr);
  CHECK_THROWS_WITH_AS(shm2->average(me() == 0 ? 0 : 1, kFloat32, {{v.data(), 12}}, [](int) {}),
                       doctest::Contains("the ranks' buckets differ"), Error);
  // The same call everywhere still works on a fresh instance.
  auto shm3 = ShmAllreduce::create(MPI_COMM_WORLD, {64 * sizeof(float)});
  REQUIRE(shm3 != nullptr);
  std::vector<float> w(12, 1.0f);
  shm3->average(0, kFloat32, {{w.data(), w.size()}}, [](int) {});
  for (float x : w) CHECK(x == 1.0f);  // (1 + 1 + ...) / N = 1 exactly
}

namespace {
bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.dtype() == kFloat32) return std::memcmp(a.data<float>().data(), b.data<float>().data(), a.numel() * 4) == 0;
  return std::memcmp(a.data<double>().data(), b.data<double>().data(), a.numel() * 8) == 0;
}

// Trains 4 Adam steps with DDP over `reduction` from identical initial values and returns every
// parameter's gradient after each backward, concatenated.
std::vector<Tensor> ddp_gradients(Dtype dtype, DDPOptions options, std::size_t in, std::size_t hidden) {
  manual_seed(77);  // the same initial values on every rank and for both paths
  auto model = small_mlp(dtype, in, hidden);
  auto ddp = std::make_shared<DistributedDataParallel>(model, options);
  optim::Adam adam(ddp->parameters(), optim::AdamOptions{.lr = 0.01});
  std::vector<Tensor> grads;
  const std::size_t rows = 4 * std::size_t(world());
  for (int step = 0; step < 4; ++step) {
    const GlobalBatch batch = global_batch(300 + std::uint64_t(step), rows, dtype, in);
    adam.zero_grad();
    nn::functional::mse_loss(ddp->forward(my_rows(batch.x, 4)), my_rows(batch.y, 4)).backward();
    for (const Tensor& p : model->parameters()) grads.push_back(p.grad().detach().clone());
    adam.step();
  }
  return grads;
}
}  // namespace

TEST_CASE("ddp shm: the shared-memory path gives the MPI_Allreduce path's gradients") {
  // Sizes: the default small MLP (buckets of 3 to 35 elements, biases of 3 and 7), and Linear(400,
  // 201) whose 80 400-value weight is averaged in place in its .grad and whose 201-value bias does
  // not divide by 2 or 4; bucket caps: one bucket per parameter, and everything in one bucket.
  struct Shape {
    std::size_t in, hidden;
  };
  for (Dtype dtype : {kFloat64, kFloat32}) {
    for (Shape s : {Shape{5, 7}, Shape{400, 201}}) {
      for (double cap : {0.0, 25.0}) {
        CAPTURE(dtype);
        CAPTURE(s.in);
        CAPTURE(cap);
        const auto shm = ddp_gradients(dtype, {.bucket_cap_mb = cap, .reduction = DDPReduction::SharedMemory}, s.in,
                                       s.hidden);
        const auto mpi = ddp_gradients(dtype, {.bucket_cap_mb = cap, .reduction = DDPReduction::MPI}, s.in, s.hidden);
        REQUIRE(shm.size() == mpi.size());
        for (std::size_t i = 0; i < shm.size(); ++i) {
          CAPTURE(i);
          CHECK(bitwise_equal_across_ranks(shm[i]));
          // With 2 ranks, s0 + s1 is commutative and both paths then multiply by 1/2: the same bits.
          // With 4, MPI may add in another order: a few ulps of the sum.
          if (world() == 2) CHECK(same_bytes(shm[i], mpi[i]));
          if (dtype == kFloat64) check_close(shm[i], mpi[i], 1e-12, 1e-15);
          else check_close(shm[i], mpi[i], 1e-5, 1e-6);
        }
      }
    }
  }
}

TEST_CASE("ddp shm: which path DDPReduction picks") {
  manual_seed(3);
  DistributedDataParallel shm(small_mlp(kFloat32), {.reduction = DDPReduction::SharedMemory});
  CHECK(shm.uses_shared_memory());
  DistributedDataParallel mpi(small_mlp(kFloat32), {.reduction = DDPReduction::MPI});
  CHECK_FALSE(mpi.uses_shared_memory());
  // Auto: shared memory on one node, unless XGRAD_DDP_ALLREDUCE asks for MPI (the CTest entries
  // that run this suite on the MPI path set it).
  const char* env = std::getenv("XGRAD_DDP_ALLREDUCE");
  const bool mpi_asked = env && (std::string(env) == "mpi" || std::string(env) == "nonblocking");
  DistributedDataParallel automatic(small_mlp(kFloat32));
  CHECK(automatic.uses_shared_memory() == !mpi_asked);
}

TEST_CASE("ddp shm: an unknown XGRAD_DDP_ALLREDUCE is an error naming the accepted values") {
  const char* before = std::getenv("XGRAD_DDP_ALLREDUCE");
  const std::string saved = before ? before : "";
  setenv("XGRAD_DDP_ALLREDUCE", "fast", 1);
  manual_seed(5);
  CHECK_THROWS_WITH_AS(DistributedDataParallel(small_mlp(kFloat32)),
                       doctest::Contains("XGRAD_DDP_ALLREDUCE must be shm, mpi or nonblocking, got 'fast'"), Error);
  if (before) setenv("XGRAD_DDP_ALLREDUCE", saved.c_str(), 1);
  else unsetenv("XGRAD_DDP_ALLREDUCE");
}
