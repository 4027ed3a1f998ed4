// DistributedDataParallel against the single-process computation it must reproduce: N ranks with
// per-rank batch B give the parameters of one process training on the N·B rows at once, because the
// average over ranks of per-rank mean gradients is the gradient of the mean over all rows.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "helpers.hpp"

using namespace xgrad;
using namespace xgrad::mpi_test;
using distributed::DDPOptions;
using distributed::DistributedDataParallel;
using OptimizerFactory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

namespace {

const std::size_t kRowsPerRank = 4;

OptimizerFactory sgd_momentum() {
  return [](std::vector<Tensor> p) { return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions{.lr = 0.1, .momentum = 0.9}); };
}
OptimizerFactory adam() {
  return [](std::vector<Tensor> p) { return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions{.lr = 0.01}); };
}

struct Tolerance {
  double rtol, atol;
};
// float64: 1e-12 relative, plus 1e-15 absolute for the weights an update brings next to 0, where the
// rounding of a different summation order (a few 1e-19 measured) is relatively large.
Tolerance tolerance(Dtype dtype) { return dtype == kFloat64 ? Tolerance{1e-12, 1e-15} : Tolerance{1e-5, 5e-5}; }

// Trains 4 steps with DDP (each rank its share of every global batch) and the reference (the whole
// batch), checking after every step: the same values within `tol`, and bitwise-equal parameters on
// every rank.
void check_matches_one_process(Dtype dtype, DDPOptions options, const OptimizerFactory& make_optimizer,
                               std::size_t in = 5, std::size_t hidden = 7) {
  manual_seed(1000 + std::uint64_t(me()));  // different initial values on each rank: construction must fix that
  auto model = small_mlp(dtype, in, hidden);
  auto ddp = std::make_shared<DistributedDataParallel>(model, options);
  auto reference = clone_mlp(*model, dtype, in, hidden);
  auto opt = make_optimizer(ddp->parameters());
  auto ref_opt = make_optimizer(reference->parameters());
  const Tolerance tol = tolerance(dtype);
  const std::size_t rows = kRowsPerRank * std::size_t(world());
  for (int step = 0; step < 4; ++step) {
    CAPTURE(step);
    const GlobalBatch batch = global_batch(50 + std::uint64_t(step), rows, dtype, in);
    opt->zero_grad();
    nn::functional::mse_loss(ddp->forward(my_rows(batch.x, kRowsPerRank)), my_rows(batch.y, kRowsPerRank)).backward();
    opt->step();
    ref_opt->zero_grad();
    nn::functional::mse_loss((*reference)(batch.x), batch.y).backward();
    ref_opt->step();
    const auto mine = model->named_parameters();
    const auto want = reference->parameters();
    for (std::size_t i = 0; i < mine.size(); ++i) {
      CAPTURE(mine[i].first);
      check_close(mine[i].second, want[i], tol.rtol, tol.atol);
      CHECK(bitwise_equal_across_ranks(mine[i].second));
    }
  }
}

}  // namespace

TEST_CASE("ddp: SGD with momentum equals one process with batch N*B in float64 and float32") {
  for (Dtype dtype : {kFloat64, kFloat32}) {
    CAPTURE(dtype);
    check_matches_one_process(dtype, {}, sgd_momentum());
  }
}

TEST_CASE("ddp: Adam equals one process with batch N*B in float64 and float32") {
  for (Dtype dtype : {kFloat64, kFloat32}) {
    CAPTURE(dtype);
    check_matches_one_process(dtype, {}, adam());
  }
}

TEST_CASE("ddp: parameters of 256 KiB and more, reduced in place in their .grad, give the same result") {
  // Linear(400, 200)'s weight: 80 000 values, 320 KB in float32 and 640 KB in float64; the biases and
  // the last layer are packed into their bucket's buffer.
  for (Dtype dtype : {kFloat64, kFloat32}) {
    CAPTURE(dtype);
    check_matches_one_process(dtype, {}, adam(), 400, 200);
    check_matches_one_process(dtype, {.bucket_cap_mb = 0}, sgd_momentum(), 400, 200);
  }
}

TEST_CASE("ddp: every bucket size gives the same result") {
  // 0: one bucket per parameter; 1e-4 MiB (104 bytes): a few small buckets; 25: one bucket for all.
  for (double cap : {0.0, 1e-4, 25.0}) {
    CAPTURE(cap);
    manual_seed(1);
    auto probe = std::make_shared<DistributedDataParallel>(small_mlp(kFloat64), DDPOptions{.bucket_cap_mb = cap});
    const auto buckets = probe->bucket_parameter_names();
    if (cap == 0.0) CHECK(buckets.size() == 4);
    if (cap == 25.0) CHECK(buckets.size() == 1);
    if (cap == 1e-4) CHECK((buckets.size() > 1 && buckets.size() < 4));
    // Reverse registration order: the last layer's bias comes first.
    CHECK(buckets.front().front() == "2.bias");
    CHECK(buckets.back().back() == "0.weight");
    check_matches_one_process(kFloat64, {.bucket_cap_mb = cap}, adam());
  }
}

TEST_CASE("ddp: construction makes models with different seeds equal, and broadcast_buffers re-broadcasts") {
  struct WithBuffer : nn::Module {
    Tensor w, running;
    WithBuffer() {
      w = register_parameter("w", randn({5, 3}, kFloat64));
      running = register_buffer("running", randn({3}, kFloat64));
    }
    Tensor forward(const Tensor& x) override { return x.matmul(w) + running; }
  };
  for (bool broadcast_buffers : {true, false}) {
    manual_seed(77 + std::uint64_t(me()));
    auto model = std::make_shared<WithBuffer>();
    CHECK_FALSE(bitwise_equal_across_ranks(model->w));
    DistributedDataParallel ddp(model, {.broadcast_buffers = broadcast_buffers});
    CHECK(bitwise_equal_across_ranks(model->w));
    CHECK(bitwise_equal_across_ranks(model->running));
    // Each rank changes its buffer (as BatchNorm's running statistics would); the next forward
    // restores rank 0's everywhere when broadcast_buffers.
    model->running.data<double>() += double(me());
    NoGradGuard no_grad;
    ddp.forward(ones({1, 5}, kFloat64));
    CHECK(bitwise_equal_across_ranks(model->running) == broadcast_buffers);
  }
}

TEST_CASE("ddp: no_sync over K micro-batches equals one step on the concatenated batch") {
  const int K = 3;
  const Dtype dtype = kFloat64;
  manual_seed(5 + std::uint64_t(me()));
  auto model = small_mlp(dtype);
  DistributedDataParallel ddp(model);
  auto reference = clone_mlp(*model, dtype);
  optim::SGD opt(ddp.parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::SGD ref_opt(reference->parameters(), {.lr = 0.1, .momentum = 0.9});
  const std::size_t n = std::size_t(world()) * kRowsPerRank;  // rows of one micro-batch over all ranks
  for (int step = 0; step < 2; ++step) {
    const GlobalBatch all = global_batch(300 + std::uint64_t(step), n * K, dtype);
    // Micro-batch k of rank r: rows (k·N + r)·B .. +B, so micro-batch k over all ranks is rows k·n .. +n.
    auto rows = [&](const Tensor& t, int k) {
      const auto first = std::int64_t(k * n + std::size_t(me()) * kRowsPerRank);
      return t.slice(0, first, first + std::int64_t(kRowsPerRank)).clone();
    };
    opt.zero_grad();
    {
      auto guard = ddp.no_sync();
      for (int k = 0; k + 1 < K; ++k)
        (nn::functional::mse_loss(ddp.forward(rows(all.x, k)), rows(all.y, k)) / double(K)).backward();
      // Accumulated locally only: each rank still has its own gradient.
      CHECK_FALSE(bitwise_equal_across_ranks(model->parameters()[0].grad()));
    }
    (nn::functional::mse_loss(ddp.forward(rows(all.x, K - 1)), rows(all.y, K - 1)) / double(K)).backward();
    opt.step();
    ref_opt.zero_grad();
    nn::functional::mse_loss((*reference)(all.x), all.y).backward();  // the mean over all K·N·B rows
    ref_opt.step();
    const auto mine = model->parameters();
    const auto want = reference->parameters();
    for (std::size_t i = 0; i < mine.size(); ++i) {
      check_close(mine[i], want[i], 1e-12, 0);
      CHECK(bitwise_equal_across_ranks(mine[i]));
    }
  }
}

namespace {
// `w` always takes part; `extra` only when use_extra.
struct MaybeUnused : nn::Module {
  Tensor w, extra;
  bool use_extra = false;
  MaybeUnused() {
    w = register_parameter("w", randn({5, 3}, kFloat64));
    extra = register_parameter("extra", randn({3}, kFloat64));
  }
  Tensor forward(const Tensor& x) override { return use_extra ? x.matmul(w) + extra : x.matmul(w); }
};
}  // namespace

TEST_CASE("ddp: an unused parameter is reduced as zero with find_unused_parameters") {
  for (double cap : {0.0, 25.0}) {  // alone in its bucket, and sharing the only bucket
    manual_seed(9);
    auto model = std::make_shared<MaybeUnused>();
    DistributedDataParallel ddp(model, {.bucket_cap_mb = cap, .find_unused_parameters = true});
    const Tensor extra_before = model->extra.detach().clone();
    optim::SGD opt(ddp.parameters(), {.lr = 0.1});
    for (int step = 0; step < 3; ++step) {
      const GlobalBatch batch = global_batch(400 + std::uint64_t(step), kRowsPerRank * std::size_t(world()), kFloat64);
      opt.zero_grad();
      nn::functional::mse_loss(ddp.forward(my_rows(batch.x, kRowsPerRank)), my_rows(batch.y, kRowsPerRank)).backward();
      REQUIRE(model->extra.grad().defined());
      CHECK(xt::all(xt::equal(model->extra.grad().data<double>(), 0.0)));
      opt.step();
      CHECK(bitwise_equal_across_ranks(model->w));
    }
    CHECK(xt::all(xt::equal(model->extra.data<double>(), extra_before.data<double>())));
  }
}

TEST_CASE("ddp: without find_unused_parameters an unused parameter is an error naming it, not a hang") {
  manual_seed(11);
  auto model = std::make_shared<MaybeUnused>();
  DistributedDataParallel ddp(model, {.bucket_cap_mb = 0});
  const GlobalBatch batch = global_batch(500, kRowsPerRank * std::size_t(world()), kFloat64);
  Tensor loss = nn::functional::mse_loss(ddp.forward(my_rows(batch.x, kRowsPerRank)), my_rows(batch.y, kRowsPerRank));
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("'extra'"), Error);
  // The next step, with every parameter used, reduces normally.
  model->use_extra = true;
  ddp.zero_grad();
  nn::functional::mse_loss(ddp.forward(my_rows(batch.x, kRowsPerRank)), my_rows(batch.y, kRowsPerRank)).backward();
  CHECK(bitwise_equal_across_ranks(model->w.grad()));
  CHECK(bitwise_equal_across_ranks(model->extra.grad()));
}

TEST_CASE("ddp: bad options are errors") {
  CHECK_THROWS_WITH_AS(DistributedDataParallel(small_mlp(kFloat32), {.bucket_cap_mb = -1}),
                       doctest::Contains("bucket_cap_mb"), Error);
  CHECK_THROWS_WITH_AS(DistributedDataParallel(nullptr), doctest::Contains("null"), Error);
}

TEST_CASE("ddp: XGRAD_DDP_TRACE writes a Chrome trace of backward and allreduce spans") {
  const std::string path = "xgrad_ddp_trace_test.json";
  const std::string mine = me() == 0 ? path : "xgrad_ddp_trace_test.rank" + std::to_string(me()) + ".json";
  std::remove(mine.c_str());
  setenv("XGRAD_DDP_TRACE", path.c_str(), 1);
  {
    manual_seed(2);
    auto model = small_mlp(kFloat32);
    DistributedDataParallel ddp(model, {.bucket_cap_mb = 0});
    unsetenv("XGRAD_DDP_TRACE");
    const GlobalBatch batch = global_batch(7, kRowsPerRank * std::size_t(world()), kFloat32);
    for (int step = 0; step < 2; ++step) {
      ddp.zero_grad();
      nn::functional::mse_loss(ddp.forward(my_rows(batch.x, kRowsPerRank)), my_rows(batch.y, kRowsPerRank)).backward();
    }
  }  // written when the DDP object goes
  std::ifstream in(mine);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string json = text.str();
  auto count = [&](const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t pos = json.find(needle); pos != std::string::npos; pos = json.find(needle, pos + 1)) ++n;
    return n;
  };
  CHECK(json.rfind("{\"traceEvents\":[", 0) == 0);
  CHECK(count("\"name\":\"allreduce\"") == 2 * 4);  // 2 steps, 4 buckets of one parameter
  CHECK(count("\"name\":\"wait for peers\"") == 2 * 4);  // each bucket first waits for every rank to reach it
  CHECK(count("\"name\":\"backward\"") == 2);
  CHECK(count("\"pid\":" + std::to_string(me())) > 0);
  std::remove(mine.c_str());
}

TEST_CASE("ddp: last_step_stats times the synchronised backward consistently") {
  manual_seed(4);
  auto model = small_mlp(kFloat32);
  DistributedDataParallel ddp(model, {.bucket_cap_mb = 0});
  const GlobalBatch batch = global_batch(9, kRowsPerRank * std::size_t(world()), kFloat32);
  ddp.zero_grad();
  nn::functional::mse_loss(ddp.forward(my_rows(batch.x, kRowsPerRank)), my_rows(batch.y, kRowsPerRank)).backward();
  const auto st = ddp.last_step_stats();
  CHECK(st.allreduce_seconds > 0);  // 4 buckets were reduced
  CHECK(st.hidden_seconds >= 0);
  CHECK(st.hidden_seconds <= st.allreduce_seconds);  // hidden is a part of the allreduce time
  CHECK(st.backward_seconds >= 0);
  CHECK(st.wait_seconds >= 0);
  CHECK(st.peer_wait_seconds >= 0);
  CHECK(st.communication_cpu_seconds > 0);
  CHECK(st.allreduce_cpu_seconds >= 0);
  CHECK(st.allreduce_cpu_seconds <= st.communication_cpu_seconds);
  {  // a backward under no_sync reduces nothing and leaves the last synchronised step's figures
    auto guard = ddp.no_sync();
    nn::functional::mse_loss(ddp.forward(my_rows(batch.x, kRowsPerRank)), my_rows(batch.y, kRowsPerRank)).backward();
  }
  CHECK(ddp.last_step_stats().allreduce_seconds == st.allreduce_seconds);
}
