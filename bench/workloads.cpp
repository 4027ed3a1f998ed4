// workloads.cpp - xgrad's side of the LibTorch comparison (../shared/bench/WORKLOADS.md).
//
// Usage: workloads <workload> [--threads 1,2] [--reps R] [--n N] [--epochs E] [--data DIR]
//                             [--blas-threads K]
//   workloads: config | mlp-train | seed-mlp | op-overhead | gemm | fashion-mnist | deep-chain
//              | deep-chain-nobwd | cnn-train | jacobian | forward-ad | ddp
//
// Each workload mirrors ../shared/anchors/libtorch_bench.cpp step for step: the same model, data,
// warm-up, repetitions and timed region, so that compare.py can pair the two programs' figures.
// Every timed figure is printed in the anchor's format, with the anchor's workload and metric names
// (W4's are prefixed xgrad_ where the anchor's are torch_; compare.py maps them):
//   SAMPLE <workload> <metric> threads=<t> unit=<u> value=<v>      (one per repetition)
//   SUMMARY <workload> <metric> threads=<t> unit=<u> median=<m> min=<a> max=<b> reps=<r>
//
// "threads=N" means xgrad::set_num_threads(N), which also sets OpenBLAS's thread count.
// Everything is float32 on the CPU, manual_seed(0), timed with steady_clock after warm-up.

#include <xgrad.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

// OpenBLAS's own controls (xgrad links OpenBLAS); used to report and, with --blas-threads, to
// override the BLAS thread count the way the anchor's option does.
extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
char* openblas_get_config(void);
}

#ifdef XGRAD_HAVE_DISTRIBUTED
#include <mpi.h>  // W9 only: a barrier that waits asleep

#include <distributed/distributed.hpp>
#include <distributed/shm_allreduce.hpp>  // W9: DDP's shared-memory average alone
#endif

using namespace xgrad;
using Clock = std::chrono::steady_clock;

namespace {

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

struct Opts {
  std::string workload;
  std::vector<int> threads{1, 2};
  int reps = -1;    // -1: workload default
  long n = -1;      // deep-chain length
  int epochs = -1;  // fashion-mnist
  std::string data = "/usr/share/datasets/fashion-mnist";
  // OpenBLAS threads: -1 = same as xgrad's (default), 0 = OpenBLAS's own default, k > 0 = k.
  // xgrad's only threads are OpenBLAS's, and it sets their count before every GEMM (up to
  // get_num_threads()), so this option sets xgrad's cap: --threads 1 --blas-threads 2 runs as
  // --threads 2 does.
  int blas_threads = -1;
};

int default_openblas_threads = 0;  // read at start, before anything changes it

void set_threads(int t, const Opts& o) {
  set_num_threads(t);
  if (o.blas_threads == 0) set_num_threads(default_openblas_threads);
  else if (o.blas_threads > 0) set_num_threads(o.blas_threads);
  std::printf("INFO threads xgrad=%d (caps OpenBLAS's threads; each GEMM uses as many as its size pays for)\n",
              get_num_threads());
}

void report(const std::string& wl, const std::string& metric, int t, const std::string& unit,
            std::vector<double> v) {
  for (double x : v)
    std::printf("SAMPLE %s %s threads=%d unit=%s value=%.6g\n", wl.c_str(), metric.c_str(), t,
                unit.c_str(), x);
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const double med = (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  std::printf("SUMMARY %s %s threads=%d unit=%s median=%.6g min=%.6g max=%.6g reps=%zu\n",
              wl.c_str(), metric.c_str(), t, unit.c_str(), med, v.front(), v.back(), n);
  std::fflush(stdout);
}

std::size_t sz(long v) { return static_cast<std::size_t>(v); }

// ---------------------------------------------------------------- models
using ModuleList = std::initializer_list<std::shared_ptr<nn::Module>>;

// 784-256-256-10 with ReLU, producing logits (W1, W5).
std::shared_ptr<nn::Sequential> make_mlp() {
  return std::make_shared<nn::Sequential>(ModuleList{
      std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(256, 256), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(256, 10)});
}

// The Keras "seed" network: 10-10-1, ReLU then Sigmoid (W2).
std::shared_ptr<nn::Sequential> make_seed() {
  return std::make_shared<nn::Sequential>(ModuleList{
      std::make_shared<nn::Linear>(10, 10), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(10, 1), std::make_shared<nn::Sigmoid>()});
}

// ---------------------------------------------------------------- W1 mlp-train
void w1_mlp_train(const Opts& o) {
  const int B = 128, inner = 20;
  const int reps = o.reps > 0 ? o.reps : 15;
  for (int t : o.threads) {
    set_threads(t, o);
    manual_seed(0);
    auto model = make_mlp();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    auto x = rand({B, 784});
    auto y = randint(0, 10, {B});
    auto step = [&] {
      opt.zero_grad();
      auto logits = model->forward(x);
      auto loss = nn::functional::cross_entropy(logits, y);
      loss.backward();
      opt.step();
      return loss;
    };
    for (int i = 0; i < 30; ++i) step();  // warm-up
    std::vector<double> ms, sps;
    for (int r = 0; r < reps; ++r) {
      const double t0 = now_s();
      for (int i = 0; i < inner; ++i) step();
      const double dt = (now_s() - t0) / inner;
      ms.push_back(dt * 1e3);
      sps.push_back(B / dt);
    }
    report("mlp-train", "ms_per_step", t, "ms", ms);
    report("mlp-train", "samples_per_s", t, "samples/s", sps);
  }
}

// ---------------------------------------------------------------- W2 seed-mlp
void w2_seed_mlp(const Opts& o) {
  const int B = 32, inner = 500;
  const int reps = o.reps > 0 ? o.reps : 15;
  for (int t : o.threads) {
    set_threads(t, o);
    manual_seed(0);
    auto model = make_seed();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    auto x = randn({B, 10});
    auto y = randint(0, 2, {B, 1});  // 0/1 targets, already float32
    auto step = [&] {
      opt.zero_grad();
      auto p = model->forward(x);
      auto loss = nn::functional::binary_cross_entropy(p, y);
      loss.backward();
      opt.step();
    };
    for (int i = 0; i < 500; ++i) step();
    std::vector<double> us;
    for (int r = 0; r < reps; ++r) {
      const double t0 = now_s();
      for (int i = 0; i < inner; ++i) step();
      us.push_back((now_s() - t0) / inner * 1e6);
    }
    report("seed-mlp", "us_per_step", t, "us", us);
    // Phase breakdown (a separate pass; 4 clock reads per step).
    std::vector<double> pz, pf, pb, ps;
    for (int r = 0; r < reps; ++r) {
      double z = 0, f = 0, bw = 0, st = 0;
      for (int i = 0; i < inner; ++i) {
        const double t0 = now_s();
        opt.zero_grad();
        const double t1 = now_s();
        auto loss = nn::functional::binary_cross_entropy(model->forward(x), y);
        const double t2 = now_s();
        loss.backward();
        const double t3 = now_s();
        opt.step();
        const double t4 = now_s();
        z += t1 - t0;
        f += t2 - t1;
        bw += t3 - t2;
        st += t4 - t3;
      }
      pz.push_back(z / inner * 1e6);
      pf.push_back(f / inner * 1e6);
      pb.push_back(bw / inner * 1e6);
      ps.push_back(st / inner * 1e6);
    }
    report("seed-mlp", "us_zero_grad", t, "us", pz);
    report("seed-mlp", "us_forward+loss", t, "us", pf);
    report("seed-mlp", "us_backward", t, "us", pb);
    report("seed-mlp", "us_adam_step", t, "us", ps);
  }
}

// ---------------------------------------------------------------- W3 op-overhead
// A chain of 1000 ops: i%3==0: x*1.0001, i%3==1: x+0.001, i%3==2: tanh(x).
Tensor chain(Tensor x, int nops) {
  for (int i = 0; i < nops; ++i) {
    switch (i % 3) {
      case 0: x = x * 1.0001; break;
      case 1: x = x + 0.001; break;
      default: x = tanh(x); break;
    }
  }
  return x;
}

void w3_op_overhead(const Opts& o) {
  const int NOPS = 1000;
  for (int t : o.threads) {
    set_threads(t, o);
    for (long n : {1L, 16L, 65536L}) {
      const int reps = o.reps > 0 ? o.reps : (n >= 65536 ? 15 : 31);
      auto x0 = rand({sz(n)});
      // The whole cost a user pays: forward (graph build) + sum + backward + graph destruction.
      auto run_total = [&](double* f, double* b) {
        auto x = x0.clone().requires_grad_(true);
        const double t0 = now_s();
        {
          auto y = chain(x, NOPS).sum();
          const double t1 = now_s();
          y.backward();
          if (f) *f = t1 - t0;
        }  // graph released here
        const double t2 = now_s();
        if (b && f) *b = (t2 - t0) - *f;
        return t2 - t0;
      };
      for (int i = 0; i < 5; ++i) run_total(nullptr, nullptr);
      std::vector<double> tot, fwd, bwd, nograd;
      for (int r = 0; r < reps; ++r) {
        double f = 0, b = 0;
        const double tt = run_total(&f, &b);
        tot.push_back(tt / NOPS * 1e6);
        fwd.push_back(f / NOPS * 1e6);
        bwd.push_back(b / NOPS * 1e6);
      }
      for (int r = 0; r < reps; ++r) {
        NoGradGuard ng;
        const double t0 = now_s();
        auto y = chain(x0, NOPS).sum();
        nograd.push_back((now_s() - t0) / NOPS * 1e6);
      }
      const std::string sfx = "_n" + std::to_string(n);
      report("op-overhead", "us_per_op_fwd+bwd" + sfx, t, "us", tot);
      report("op-overhead", "us_per_op_fwd_only" + sfx, t, "us", fwd);
      report("op-overhead", "us_per_op_bwd_only" + sfx, t, "us", bwd);
      report("op-overhead", "us_per_op_nograd_fwd" + sfx, t, "us", nograd);
    }
  }
}

// ---------------------------------------------------------------- W4 gemm
// Largest |C - A·B| over a few entries recomputed in double: catches a wrong GEMM call (layout,
// transpose flags) without a second BLAS.
double spot_check(const Tensor& A, const Tensor& B, const Tensor& C) {
  const auto& a = A.data<float>();
  const auto& b = B.data<float>();
  const auto& c = C.data<float>();
  const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  double worst = 0;
  for (std::size_t s = 0; s < 16; ++s) {
    const std::size_t i = (s * 7919) % m, j = (s * 104729) % n;
    double ref = 0;
    for (std::size_t p = 0; p < k; ++p) ref += double(a.data()[i * k + p]) * double(b.data()[p * n + j]);
    worst = std::max(worst, std::abs(ref - double(c.data()[i * n + j])));
  }
  return worst;
}

void w4_gemm(const Opts& o) {
  struct GemmShape {
    std::size_t m, k, n;
  };
  const GemmShape shapes[] = {{1024, 1024, 1024}, {256, 784, 256}};
  for (int t : o.threads) {
    set_threads(t, o);
    for (auto s : shapes) {
      const int reps = o.reps > 0 ? o.reps : 15;
      const double flop = 2.0 * double(s.m) * double(s.k) * double(s.n);
      const int inner = std::max(1, static_cast<int>(4e9 / flop));  // ~4 GFLOP per timed rep
      manual_seed(0);
      auto A = rand({s.m, s.k});
      auto B = rand({s.k, s.n});
      Tensor C;
      const std::string tag = std::to_string(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n);
      // Through the public op, allocating C as a user call does.
      for (int i = 0; i < 3; ++i) C = matmul(A, B);
      std::vector<double> g_mm;
      for (int r = 0; r < reps; ++r) {
        const double t0 = now_s();
        for (int i = 0; i < inner; ++i) C = matmul(A, B);
        const double dt = (now_s() - t0) / inner;
        g_mm.push_back(flop / dt * 1e-9);
      }
      std::printf("INFO gemm %s threads=%d maxdiff_vs_double_spot_check=%.3g\n", tag.c_str(), t,
                  spot_check(A, B, C));
      report("gemm", "xgrad_matmul_" + tag, t, "GFLOP/s", g_mm);
    }
    // Linear(784,256) forward + backward on a batch of 256: one GEMM with the bias folded in,
    // then the weight-gradient GEMM and the bias reduction (x needs no gradient).
    {
      const int reps = o.reps > 0 ? o.reps : 15;
      manual_seed(0);
      nn::Linear lin(784, 256);
      auto x = rand({256, 784});
      auto run = [&] {
        lin.zero_grad();
        auto y = lin.forward(x);
        y.sum().backward();
      };
      for (int i = 0; i < 10; ++i) run();
      std::vector<double> ms;
      for (int r = 0; r < reps; ++r) {
        const int inner = 20;
        const double t0 = now_s();
        for (int i = 0; i < inner; ++i) run();
        ms.push_back((now_s() - t0) / inner * 1e3);
      }
      report("gemm", "xgrad_linear_fwd_bwd_256x784x256", t, "ms", ms);
    }
  }
}

// ---------------------------------------------------------------- W5 fashion-mnist
void w5_fashion_mnist(const Opts& o) {
  const double tl0 = now_s();
  auto split = data::load_fashion_mnist(o.data);
  const Tensor& Xte = split.test.inputs();
  const Tensor& Yte = split.test.targets();
  std::printf("INFO fashion-mnist load_s=%.3f train=%ld test=%ld\n", now_s() - tl0,
              static_cast<long>(split.train.size()), static_cast<long>(split.test.size()));
  const std::size_t B = 128;
  const int epochs = o.epochs > 0 ? o.epochs : 5;
  for (int t : o.threads) {
    set_threads(t, o);
    manual_seed(0);
    auto model = make_mlp();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    // Reshuffled every epoch from the seed; the last partial batch (96) is kept.
    data::DataLoader loader(split.train, {.batch_size = B, .shuffle = true, .drop_last = false, .seed = 0});
    std::vector<double> epoch_s;
    for (int ep = 1; ep <= epochs; ++ep) {
      model->train();
      const double t0 = now_s();
      double loss_sum = 0;
      long nb = 0;
      for (auto& [xb, yb] : loader) {
        opt.zero_grad();
        auto loss = nn::functional::cross_entropy(model->forward(xb), yb);
        loss.backward();
        opt.step();
        if ((nb & 63) == 0) loss_sum += loss.item();  // an occasional read, like a logger
        ++nb;
      }
      const double dt = now_s() - t0;
      epoch_s.push_back(dt);
      double acc;
      {
        NoGradGuard ng;
        model->eval();
        auto pred = argmax(model->forward(Xte), 1);
        acc = mean(eq(pred, Yte)).item();
      }
      std::printf("EPOCH fashion-mnist threads=%d epoch=%d seconds=%.3f batches=%ld test_acc=%.4f\n", t,
                  ep, dt, nb, acc);
      std::printf("SAMPLE fashion-mnist test_acc_epoch%d threads=%d unit=%% value=%.2f\n", ep, t,
                  acc * 100);
      std::fflush(stdout);
      if (!std::isfinite(loss_sum)) std::printf("INFO fashion-mnist loss is not finite\n");
    }
    report("fashion-mnist", "s_per_epoch", t, "s", epoch_s);
  }
}

// ---------------------------------------------------------------- W6 deep-chain
long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

void w6_deep_chain(const Opts& o, bool with_backward) {
  // The anchor's default length, so that a run without --n still pairs with it (the metric names
  // carry n). WORKLOADS.md's figure is for --n 1000000.
  const long N = o.n > 0 ? o.n : 100000;
  const int t = o.threads.front();
  set_threads(t, o);
  if (with_backward) {
    // (a) build + backward + destroy
    auto x0 = ones({1}).requires_grad_(true);
    const long r0 = rss_kb();
    const double t0 = now_s();
    double t1, t2;
    long r_built;
    {
      auto x = x0;
      for (long i = 0; i < N; ++i) x = x * 1.0000001 + 0.0;
      t1 = now_s();
      r_built = rss_kb();
      x.backward();
      t2 = now_s();
    }
    const double t3 = now_s();
    std::printf("DEEP backward n_iter=%ld nodes=%ld threads=%d build_s=%.3f backward_s=%.3f "
                "destroy_s=%.3f total_s=%.3f rss_before_kb=%ld rss_built_kb=%ld grad=%.6f "
                "expected_fp32const=%.6f\n",
                N, 2 * N, t, t1 - t0, t2 - t1, t3 - t2, t3 - t0, r0, r_built, x0.grad().item(),
                std::pow(static_cast<double>(1.0000001f), static_cast<double>(N)));
    std::fflush(stdout);
  } else {
    // (b) build + destroy without backward: the graph is freed by destructors alone.
    auto x0 = ones({1}).requires_grad_(true);
    const double t0 = now_s();
    double t1;
    {
      auto x = x0;
      for (long i = 0; i < N; ++i) x = x * 1.0000001 + 0.0;
      t1 = now_s();
    }
    const double t2 = now_s();
    std::printf("DEEP no_backward n_iter=%ld nodes=%ld build_s=%.3f destroy_s=%.3f rss_end_kb=%ld\n", N,
                2 * N, t1 - t0, t2 - t1, rss_kb());
  }
  std::printf("DEEP ok n_iter=%ld rss_end_kb=%ld\n", N, rss_kb());
}

// ---------------------------------------------------------------- W9 ddp
// Data-parallel training through DistributedDataParallel. `workloads ddp` alone measures world size
// 1; under `mpirun -np 2` one run prints everything (rank 0 prints):
//   ms_per_step_world1   the world-1 reference, measured in the same job: rank 0 alone trains the same
//                        model on the full global batch of 256 (the wrapped module itself: DDP of one
//                        process adds nothing to it) while rank 1 waits asleep, off its core, so
//                        rank 0 runs as a one-process job does (bound to its core, 1 thread);
//   ms_per_step_world2   the DDP step, 128 rows per rank;
//   speedup_world2       world-1 / world-2 time, sample by sorted sample as the anchor pairs them;
//   ms_per_step_nocomm_world2  both ranks at once train on their 128 rows with no communication
//                        (each its own module, no DDP): the compute-only step, the best world 2 can do;
//   allreduce_alone_ms   a blocking MPI allreduce of the 7.45 MB gradient alone (both ranks idle else);
//   shm_average_alone_ms the same through DDP's shared-memory average (its default on one node);
//   and from DDP's own span timings (the same as XGRAD_DDP_TRACE's) the allreduce time per step,
//   the part hidden behind backward, and the time backward waited for communication at its end.
// Samples of the three timed loops are interleaved (reference, no-comm, DDP, reference, ...) so a
// change of the machine's load hits all three alike.
#ifdef XGRAD_HAVE_DISTRIBUTED
std::shared_ptr<nn::Sequential> make_w9_mlp() {
  manual_seed(0);
  return std::make_shared<nn::Sequential>(ModuleList{
      std::make_shared<nn::Linear>(784, 1024), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(1024, 1024),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(1024, 10)});
}

double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// One training set-up of W9: a model (wrapped in DDP or not), Adam, and fixed rows of `seed`.
struct W9Trainer {
  std::shared_ptr<nn::Sequential> model = make_w9_mlp();
  std::shared_ptr<distributed::DistributedDataParallel> ddp;
  std::unique_ptr<optim::Adam> opt;
  Tensor x, y;
  double cpu_fwd = 0, cpu_bwd = 0, cpu_opt = 0;  // the calling thread's processor time per phase
  double allreduce_s = 0, hidden_s = 0, backward_s = 0, wait_s = 0, peer_wait_s = 0, comm_cpu_s = 0, ar_cpu_s = 0;
  W9Trainer(bool wrap, std::size_t rows, std::uint64_t seed) {
    if (wrap) ddp = std::make_shared<distributed::DistributedDataParallel>(model);
    opt = std::make_unique<optim::Adam>(wrap ? ddp->parameters() : model->parameters(), optim::AdamOptions{.lr = 1e-3});
    manual_seed(seed);
    x = rand({rows, 784});
    y = randint(0, 10, {rows});
  }
  void step() {
    const double c0 = thread_cpu_s();
    opt->zero_grad();
    Tensor loss = nn::functional::cross_entropy(ddp ? ddp->forward(x) : (*model)(x), y);
    const double c1 = thread_cpu_s();
    loss.backward();
    const double c2 = thread_cpu_s();
    opt->step();
    const double c3 = thread_cpu_s();
    cpu_fwd += c1 - c0;
    cpu_bwd += c2 - c1;
    cpu_opt += c3 - c2;
    if (ddp) {
      const auto& st = ddp->last_step_stats();
      allreduce_s += st.allreduce_seconds;
      hidden_s += st.hidden_seconds;
      backward_s += st.backward_seconds;
      wait_s += st.wait_seconds;
      peer_wait_s += st.peer_wait_seconds;
      comm_cpu_s += st.communication_cpu_seconds;
      ar_cpu_s += st.allreduce_cpu_seconds;
    }
  }
  void reset_counters() {
    cpu_fwd = cpu_bwd = cpu_opt = allreduce_s = hidden_s = backward_s = wait_s = peer_wait_s = comm_cpu_s = ar_cpu_s = 0;
  }
  void print_info(const char* what, int world, double steps) const {
    std::printf("INFO ddp %s world=%d compute thread cpu ms/step: forward %.3f backward %.3f optimizer %.3f\n", what,
                world, cpu_fwd / steps * 1e3, cpu_bwd / steps * 1e3, cpu_opt / steps * 1e3);
    if (ddp && world > 1)
      std::printf("INFO ddp %s world=%d buckets=%zu backward_ms=%.3f allreduce_ms=%.3f hidden_ms=%.3f "
                  "wait_after_backward_ms=%.3f peer_wait_ms=%.3f comm_thread_cpu_ms=%.3f (allreduce+average %.3f) hidden_pct=%.1f\n",
                  what, world, ddp->bucket_parameter_names().size(), backward_s / steps * 1e3,
                  allreduce_s / steps * 1e3, hidden_s / steps * 1e3, wait_s / steps * 1e3, peer_wait_s / steps * 1e3,
                  comm_cpu_s / steps * 1e3, ar_cpu_s / steps * 1e3, allreduce_s > 0 ? 100.0 * hidden_s / allreduce_s : 0.0);
  }
};

// Waits for every rank without spinning (a rank that waits here leaves its core to the others).
void idle_barrier() {
  MPI_Request r;
  MPI_Ibarrier(MPI_COMM_WORLD, &r);
  for (int done = 0;;) {
    MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

void w9_ddp_measure(const Opts& o) {
  const int world = distributed::init();
  const int rank = distributed::rank();
  const int reps = o.reps > 0 ? o.reps : 7, inner = 10, warmup = 5, global_batch = 256;
  if (global_batch % world != 0) throw std::runtime_error("ddp: 256 does not split over the ranks");
  set_num_threads(1);
  const std::size_t rows = std::size_t(global_batch / world);
  W9Trainer dp(true, rows, 100 + std::uint64_t(rank));  // each rank its own fixed inputs and labels
  // The references of a multi-rank run: the full batch on rank 0 alone, and each rank's share with
  // no communication.
  std::unique_ptr<W9Trainer> alone, nocomm;
  if (world > 1) {
    if (rank == 0) alone = std::make_unique<W9Trainer>(false, std::size_t(global_batch), 100);
    nocomm = std::make_unique<W9Trainer>(false, rows, 100 + std::uint64_t(rank));
  }
  auto timed = [&](W9Trainer& t) {  // one sample: mean ms of `inner` steps between two barriers
    distributed::barrier();
    const double t0 = now_s();
    for (int i = 0; i < inner; ++i) t.step();
    distributed::barrier();
    return (now_s() - t0) / inner * 1e3;
  };
  auto timed_alone = [&] {  // rank 0 alone; the others asleep
    double ms = 0;
    if (rank == 0) {
      const double t0 = now_s();
      for (int i = 0; i < inner; ++i) alone->step();
      ms = (now_s() - t0) / inner * 1e3;
    }
    idle_barrier();
    return ms;
  };
  for (int i = 0; i < warmup; ++i) dp.step();
  if (world > 1) {
    if (rank == 0)
      for (int i = 0; i < warmup; ++i) alone->step();
    idle_barrier();
    for (int i = 0; i < warmup; ++i) nocomm->step();
    nocomm->reset_counters();
    if (alone) alone->reset_counters();
  }
  dp.reset_counters();
  std::vector<double> ms_dp, ms_alone, ms_nocomm, hidden_pct;  // hidden_pct: rank 0's, per DDP sample
  double dp_cpu_s = 0;
  for (int r = 0; r < reps; ++r) {
    if (world > 1) {
      ms_alone.push_back(timed_alone());
      ms_nocomm.push_back(timed(*nocomm));
    }
    const std::clock_t c0 = std::clock();
    const double allreduce0 = dp.allreduce_s, hidden0 = dp.hidden_s;
    ms_dp.push_back(timed(dp));
    dp_cpu_s += double(std::clock() - c0) / CLOCKS_PER_SEC;  // this process, all its threads
    if (dp.allreduce_s > allreduce0) hidden_pct.push_back(100.0 * (dp.hidden_s - hidden0) / (dp.allreduce_s - allreduce0));
  }
  // The allreduce alone, every rank idle else: the whole gradient (1.86 M float32) in one blocking
  // call, and DDP's buckets (one blocking call per bucket, of its bytes) one after the other.
  std::vector<double> ms_ar, ms_ar_buckets, ms_shm;
  double ar_cpu_s = 0, shm_cpu_s = 0;  // rank 0's processor time in the whole-gradient allreduce / average
  if (world > 1) {
    std::size_t numel = 0;
    for (const Tensor& p : dp.model->parameters()) numel += p.numel();
    Tensor g = ones({numel});
    std::vector<Tensor> buckets;
    const auto named = dp.model->named_parameters();
    for (const auto& names : dp.ddp->bucket_parameter_names()) {
      std::size_t n = 0;
      for (const std::string& name : names)
        for (const auto& [full, t] : named)
          if (full == name) n += t.numel();
      buckets.push_back(ones({n}));
    }
    for (int r = 0; r < 3 + 2 * reps; ++r) {
      distributed::barrier();
      double t0 = now_s();
      const double c0 = thread_cpu_s();
      distributed::all_reduce(g, distributed::ReduceOp::Sum);
      if (r >= 3) {
        ms_ar.push_back((now_s() - t0) * 1e3);
        ar_cpu_s += thread_cpu_s() - c0;
      }
      distributed::barrier();
      t0 = now_s();
      for (Tensor& b : buckets) distributed::all_reduce(b, distributed::ReduceOp::Sum);
      if (r >= 3) ms_ar_buckets.push_back((now_s() - t0) * 1e3);
    }
    // DDP's shared-memory average of the whole gradient (both ranks idle else, so its waits spin).
    auto shm = distributed::detail::ShmAllreduce::create(MPI_COMM_WORLD, {numel * sizeof(float)});
    if (shm) {
      const std::vector<distributed::detail::Piece> pieces{{g.data<float>().data(), numel}};
      for (int r = 0; r < 3 + 2 * reps; ++r) {
        distributed::barrier();
        const double t0 = now_s();
        const double c0 = thread_cpu_s();
        shm->average(0, kFloat32, pieces, [](int) { std::this_thread::yield(); });
        if (r >= 3) {
          ms_shm.push_back((now_s() - t0) * 1e3);
          shm_cpu_s += thread_cpu_s() - c0;
        }
      }
    }
  }
  if (rank != 0) return;
  const double steps = double(reps * inner);
  if (world > 1) {
    const std::string w = std::to_string(world);
    report("ddp", "ms_per_step_world1", 1, "ms", ms_alone);
    report("ddp", "ms_per_step_world" + w, 1, "ms", ms_dp);
    std::vector<double> s1 = ms_alone, s2 = ms_dp, speedup;
    std::sort(s1.begin(), s1.end());
    std::sort(s2.begin(), s2.end());
    for (std::size_t i = 0; i < s1.size(); ++i) speedup.push_back(s1[i] / s2[i]);
    report("ddp", "speedup_world" + w, 1, "x", speedup);
    report("ddp", "hidden_pct", 1, "%", hidden_pct);
    report("ddp", "ms_per_step_nocomm_world" + w, 1, "ms", ms_nocomm);
    report("ddp", "allreduce_alone_ms", 1, "ms", ms_ar);
    report("ddp", "allreduce_buckets_alone_ms", 1, "ms", ms_ar_buckets);
    std::printf("INFO ddp allreduce alone: rank 0 processor time %.3f ms per whole-gradient allreduce\n",
                ar_cpu_s / double(ms_ar.size()) * 1e3);
    if (!ms_shm.empty()) {
      report("ddp", "shm_average_alone_ms", 1, "ms", ms_shm);
      std::printf("INFO ddp shared-memory average alone: rank 0 processor time %.3f ms per whole-gradient average\n",
                  shm_cpu_s / double(ms_shm.size()) * 1e3);
    }
    std::printf("INFO ddp reduction path: %s\n", dp.ddp->uses_shared_memory() ? "shared memory" : "MPI");
    alone->print_info("reference(256 rows, rank 0 alone)", 1, steps);
    nocomm->print_info("no-communication(128 rows per rank)", world, steps);
  } else {
    report("ddp", "ms_per_step_world1", 1, "ms", ms_dp);
  }
  dp.print_info("ddp", world, steps);
  std::printf("INFO ddp world=%d rank0_cpu_ms_per_step=%.3f (processor time of rank 0 in the DDP loop, all threads)\n",
              world, dp_cpu_s / steps * 1e3);
}
void w9_ddp(const Opts& o) {
  w9_ddp_measure(o);  // its DistributedDataParallel is gone before MPI shuts down
  distributed::finalize();
}
#else
void w9_ddp(const Opts&) { throw std::runtime_error("ddp: built without MPI (XGRAD_MPI=OFF)"); }
#endif
// ---------------------------------------------------------------- W7 cnn-train
std::shared_ptr<nn::Sequential> make_w7_cnn() {
  return std::make_shared<nn::Sequential>(ModuleList{
      std::make_shared<nn::Conv2d>(1, 32, 3, nn::Conv2dOptions{.padding = 1}), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Conv2d>(32, 64, 3, nn::Conv2dOptions{.padding = 1}), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(3136, 128), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(128, 10)});
}

void w7_cnn_train(const Opts& o) {
  const int B = 128, inner = 3;
  const int reps = o.reps > 0 ? o.reps : 7;
  for (int t : o.threads) {
    set_threads(t, o);
    manual_seed(0);
    auto model = make_w7_cnn();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    auto x = rand({B, 1, 28, 28});
    auto y = randint(0, 10, {B});
    auto step = [&] {
      opt.zero_grad();
      auto loss = nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      opt.step();
    };
    for (int i = 0; i < 5; ++i) step();
    std::vector<double> ms, sps;
    for (int r = 0; r < reps; ++r) {
      const double t0 = now_s();
      for (int i = 0; i < inner; ++i) step();
      const double dt = (now_s() - t0) / inner;
      ms.push_back(dt * 1e3);
      sps.push_back(B / dt);
    }
    report("cnn-train", "ms_per_step", t, "ms", ms);
    report("cnn-train", "samples_per_s", t, "samples/s", sps);
    // conv2 alone: forward + sum + backward (input and weight gradients)
    nn::Conv2d conv(32, 64, 3, {.padding = 1});
    auto xi = rand({B, 32, 14, 14});
    xi.requires_grad_();
    auto conv_step = [&] {
      conv.zero_grad();
      xi.zero_grad();
      conv.forward(xi).sum().backward();
    };
    for (int i = 0; i < 3; ++i) conv_step();
    std::vector<double> cms;
    for (int r = 0; r < reps; ++r) {
      const double t0 = now_s();
      for (int i = 0; i < inner; ++i) conv_step();
      cms.push_back((now_s() - t0) / inner * 1e3);
    }
    report("cnn-train", "ms_conv2_fwd_bwd", t, "ms", cms);
    auto xp = rand({B, 32, 28, 28});
    xp.requires_grad_();
    auto pool_step = [&] {
      xp.zero_grad();
      nn::functional::max_pool2d(xp, 2).sum().backward();
    };
    for (int i = 0; i < 3; ++i) pool_step();
    std::vector<double> pms;
    for (int r = 0; r < reps; ++r) {
      const double t0 = now_s();
      for (int i = 0; i < inner; ++i) pool_step();
      pms.push_back((now_s() - t0) / inner * 1e3);
    }
    report("cnn-train", "ms_maxpool_fwd_bwd", t, "ms", pms);
  }
}

// ---------------------------------------------------------------- W8 jacobian
// The full Jacobian of f(x) = tanh(W2·tanh(W1·x)) and the Hessian of g(x) = sum(tanh(W1·x)), float64,
// by autograd::functional with the strategy that is best for this shape: all rows at once
// (vectorize), reverse mode for the Jacobian (forward over reverse: one backward run whose cotangent
// carries the identity basis as batched tangents) and forward over reverse for the Hessian (x carries
// the identity basis; the gradient's tangents are H). Both come to two n×n×n GEMMs.
void w8_jacobian(const Opts& o) {
  namespace fn = autograd::functional;
  const std::size_t n = o.n > 0 ? sz(o.n) : 256;
  const int reps = o.reps > 0 ? o.reps : 7;
  for (int t : o.threads) {
    set_threads(t, o);
    manual_seed(0);
    auto W1 = randn({n, n}, kFloat64) / std::sqrt(static_cast<double>(n));
    auto W2 = randn({n, n}, kFloat64) / std::sqrt(static_cast<double>(n));
    auto x0 = randn({n}, kFloat64);
    auto f = [&](const std::vector<Tensor>& x) { return tanh(matmul(W2, tanh(matmul(W1, x[0])))); };
    auto g = [&](const std::vector<Tensor>& x) { return sum(tanh(matmul(W1, x[0]))); };
    auto jac = [&] {
      auto x = x0.clone().requires_grad_();
      return fn::jacobian(f, {x}, {.vectorize = true, .strategy = fn::Strategy::ReverseMode})[0][0];
    };
    auto hess = [&] {
      auto x = x0.clone().requires_grad_();
      return fn::hessian(g, {x}, {.vectorize = true, .outer_jacobian_strategy = fn::Strategy::ForwardMode})[0][0];
    };
    jac();
    hess();
    std::vector<double> jm, hm;
    for (int r = 0; r < reps; ++r) {
      double t0 = now_s();
      jac();
      jm.push_back((now_s() - t0) * 1e3);
      t0 = now_s();
      hess();
      hm.push_back((now_s() - t0) * 1e3);
    }
    const std::string tag = std::to_string(n);
    report("jacobian", "ms_jacobian_" + tag, t, "ms", jm);
    report("jacobian", "ms_hessian_" + tag, t, "ms", hm);
  }
}

// ---------------------------------------------------------------- forward-ad (xgrad only)
// The cost of forward mode on W1's model (784-256-256-10, ReLU, batch 128, float32): the forward pass
// alone against the same pass carrying a tangent on the input (J·v of the logits), both without
// recording a graph and both with one. No anchor: LibTorch's C++ API has no forward mode.
void forward_ad_cost(const Opts& o) {
  const int B = 128, inner = 50;
  const int reps = o.reps > 0 ? o.reps : 15;
  for (int t : o.threads) {
    set_threads(t, o);
    manual_seed(0);
    auto model = make_mlp();
    auto x = rand({B, 784});
    auto v = randn({B, 784});
    for (const bool record : {false, true}) {
      AutoGradMode mode(record);
      auto primal = [&] { return model->forward(x); };
      auto dual = [&] {
        autograd::forward_ad::DualLevel level;
        auto y = model->forward(autograd::forward_ad::make_dual(x, v));
        return autograd::forward_ad::unpack_dual(y).tangent;
      };
      for (int i = 0; i < 10; ++i) {
        primal();
        dual();
      }
      std::vector<double> pm, dm, ratio;
      for (int r = 0; r < reps; ++r) {
        double t0 = now_s();
        for (int i = 0; i < inner; ++i) primal();
        const double p_ms = (now_s() - t0) / inner * 1e3;
        t0 = now_s();
        for (int i = 0; i < inner; ++i) dual();
        const double d_ms = (now_s() - t0) / inner * 1e3;
        pm.push_back(p_ms);
        dm.push_back(d_ms);
        ratio.push_back(d_ms / p_ms);
      }
      const std::string sfx = record ? "_grad" : "_nograd";
      report("forward-ad", "ms_primal_forward" + sfx, t, "ms", pm);
      report("forward-ad", "ms_forward_with_tangent" + sfx, t, "ms", dm);
      report("forward-ad", "cost_ratio" + sfx, t, "x", ratio);
    }
  }
}

int run(int argc, char** argv) {
  Opts o;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s <config|mlp-train|seed-mlp|op-overhead|gemm|fashion-mnist|deep-chain|deep-chain-nobwd|cnn-train|jacobian|forward-ad|ddp> "
                 "[--threads 1,2] [--blas-threads K] [--reps R] [--n N] [--epochs E] [--data DIR]\n",
                 argv[0]);
    return 2;
  }
  o.workload = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value for " + a);
      return argv[++i];
    };
    if (a == "--threads") {
      o.threads.clear();
      std::stringstream ss(next());
      std::string tok;
      while (std::getline(ss, tok, ',')) o.threads.push_back(std::stoi(tok));
      if (o.threads.empty()) throw std::runtime_error("--threads needs at least one count");
    } else if (a == "--reps") o.reps = std::stoi(next());
    else if (a == "--n") o.n = std::stol(next());
    else if (a == "--epochs") o.epochs = std::stoi(next());
    else if (a == "--data") o.data = next();
    else if (a == "--blas-threads") o.blas_threads = std::stoi(next());
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  default_openblas_threads = openblas_get_num_threads();
  std::printf("INFO xgrad openblas_core=%s blas_threads_opt=%d default_xgrad_threads=%d "
              "default_openblas_threads=%d\n",
              openblas_get_corename(), o.blas_threads, get_num_threads(), default_openblas_threads);
  const auto& w = o.workload;
  if (w == "config") {
    std::printf("openblas_config: %s\n", openblas_get_config());
  } else if (w == "mlp-train") w1_mlp_train(o);
  else if (w == "seed-mlp") w2_seed_mlp(o);
  else if (w == "op-overhead") w3_op_overhead(o);
  else if (w == "gemm") w4_gemm(o);
  else if (w == "fashion-mnist") w5_fashion_mnist(o);
  else if (w == "deep-chain") w6_deep_chain(o, true);
  else if (w == "deep-chain-nobwd") w6_deep_chain(o, false);
  else if (w == "ddp") w9_ddp(o);
  else if (w == "cnn-train") w7_cnn_train(o);
  else if (w == "jacobian") w8_jacobian(o);
  else if (w == "forward-ad") forward_ad_cost(o);
  else {
    std::fprintf(stderr, "unknown workload %s\n", w.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "workloads: %s\n", e.what());
    return 1;
  }
}
