// DistributedDataParallel and its Reducer: bucketed gradient averaging overlapped with backward.
#include "ddp.hpp"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <cstring>

#include "../autograd/engine.hpp"
#include "../autograd/grad_mode.hpp"
#include "comm_thread.hpp"
#include "mpi_support.hpp"
#include "process_group.hpp"
#include "shm_allreduce.hpp"
#include "trace.hpp"

namespace xgrad::distributed {

using detail::check;
using xgrad::detail::fail;

class Reducer {
 public:
  Reducer(const nn::NamedTensorList& params, const DDPOptions& options);
  ~Reducer();

  // Called by every forward: the next backward averages gradients when `sync`.
  void prepare_for_backward(bool sync);
  std::vector<std::vector<std::string>> bucket_names() const;
  const DistributedDataParallel::StepStats& stats() const { return stats_; }
  bool uses_shared_memory() const { return shm_ != nullptr; }

 private:
  struct Param {
    std::string name;
    Tensor tensor;
    std::size_t bucket = 0;
    std::size_t offset = 0;  // in the bucket's packed buffer, in elements (small parameters only)
    bool in_place = false;   // large: reduced directly in its .grad, never copied
    std::size_t numel = 0;
    std::size_t hook = 0;
    bool ready = false;
  };
  struct Bucket {
    Dtype dtype = kFloat32;
    std::vector<std::size_t> params;
    std::size_t numel = 0;
    std::size_t packed_numel = 0;  // elements of its small parameters, packed into one buffer
    std::vector<float> f32;        // that buffer (one of the two, by dtype)
    std::vector<double> f64;
    std::vector<Tensor> grads;  // per param of the bucket: the .grad the average goes back into
    std::size_t pending = 0;
    bool ready = false;
    double start_us = 0, end_us = 0;  // of its allreduce (every rank has reached the bucket)
    double posted_us = 0;             // handed to the communication thread
    double copied_us = 0;             // shared memory: its data copied into the window (= posted_us on MPI)
    double cpu_seconds = 0;           // the communication thread's processor time for it
    double reduce_cpu_seconds = 0;    // ... of which in the allreduce and the averaging
  };

  void on_gradient_ready(std::size_t index);
  void mark_ready(std::size_t index, Tensor grad);
  void launch_ready_buckets();
  void allreduce_bucket(std::size_t b);  // on the communication thread
  void shm_average_bucket(Bucket& b);    // ... its shared-memory path
  void finish_backward();                // the end-of-backward callback
  void reset();

  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  DDPOptions options_;
  MPI_Comm comm_ = MPI_COMM_NULL;  // DDP's own communicator: never mixed up with the user's collectives
  int world_ = 1;
  std::unique_ptr<detail::ShmAllreduce> shm_;  // set when buckets go through shared memory
  bool nonblocking_ = false;                    // MPI path: MPI_Iallreduce instead of MPI_Allreduce
  std::unique_ptr<detail::CommThread> comm_thread_;
  detail::Trace trace_;
  DistributedDataParallel::StepStats stats_;
  std::size_t next_launch_ = 0;
  bool expect_sync_ = false;
  bool callback_queued_ = false;
  // Backward has computed every gradient: the communication thread polls without sleeping. Set
  // under compute_done_mutex_ and announced on compute_done_cv_, which the thread's pauses wait on,
  // so the end of backward cuts a pause short.
  std::atomic<bool> compute_done_{false};
  std::mutex compute_done_mutex_;
  std::condition_variable compute_done_cv_;
  void pause_unless_compute_done(int pause_us);  // on the communication thread
  double backward_start_us_ = 0;
  int polls_after_backward_ = 0;  // of this backward, once its compute is done
};

// ---- Reducer ------------------------------------------------------------------------------------

namespace {
// Parameters of at least this many bytes are reduced in place in their .grad; smaller ones are
// packed together so that a bucket of biases costs one allreduce.
constexpr std::size_t kInPlaceBytes = 256 * 1024;

// The longest pause between two MPI_Test calls of the communication thread while it waits for the
// other ranks to reach a bucket (env XGRAD_DDP_POLL_US; the pauses grow from 5 us to it).
const int max_poll_pause_us = [] {
  const char* v = std::getenv("XGRAD_DDP_POLL_US");
  return v ? std::max(1, std::atoi(v)) : 100;
}();

// Once backward has computed every gradient, the communication thread polls the other ranks this
// many times without sleeping, then sleeps this long between two polls (env
// XGRAD_DDP_AFTER_BACKWARD_SLEEP_US; 0: never sleeps).
constexpr int kPollsBeforeSleeping = 64;
const int after_backward_sleep_us = [] {
  const char* v = std::getenv("XGRAD_DDP_AFTER_BACKWARD_SLEEP_US");
  return v ? std::max(0, std::atoi(v)) : 20;
}();

// XGRAD_DDP_ALLREDUCE: "shm" (shared memory), "mpi" (blocking MPI_Allreduce) or "nonblocking"
// (MPI_Iallreduce tested with sleeps); unset or empty: DDPOptions::reduction decides.
std::string allreduce_env() {
  const char* v = std::getenv("XGRAD_DDP_ALLREDUCE");
  const std::string value = v ? v : "";
  if (!value.empty() && value != "shm" && value != "mpi" && value != "nonblocking")
    fail("DistributedDataParallel: XGRAD_DDP_ALLREDUCE must be shm, mpi or nonblocking, got '", value, "'");
  return value;
}

const char* trace_path() {
  const char* p = std::getenv("XGRAD_DDP_TRACE");
  return p ? p : "";
}
}  // namespace

Reducer::Reducer(const nn::NamedTensorList& params, const DDPOptions& options)
    : options_(options), world_(world_size()), trace_(trace_path(), rank(), world_size()) {
  // Buckets over the parameters in reverse order, closed when they reach their cap (the first one
  // 1 MiB at most) or when the dtype changes.
  const double mib = 1024.0 * 1024.0;
  const double cap_bytes = options.bucket_cap_mb * mib;
  const double first_cap_bytes = std::min(cap_bytes, mib);
  for (const auto& [name, t] : params) {
    if (!t.requires_grad()) continue;
    Param p;
    p.name = name;
    p.tensor = t;
    p.numel = t.numel();
    params_.push_back(std::move(p));
  }
  double bytes = 0;
  for (std::size_t k = params_.size(); k-- > 0;) {
    Param& p = params_[k];
    const Dtype dtype = p.tensor.dtype();
    const double limit = buckets_.size() == 1 ? first_cap_bytes : cap_bytes;  // of the bucket being filled
    if (buckets_.empty() || buckets_.back().dtype != dtype || bytes >= limit) {
      buckets_.emplace_back();
      buckets_.back().dtype = dtype;
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    p.bucket = buckets_.size() - 1;
    p.in_place = p.numel * itemsize(dtype) >= kInPlaceBytes;
    p.offset = b.packed_numel;
    if (!p.in_place) b.packed_numel += p.numel;
    b.params.push_back(k);
    b.numel += p.numel;
    bytes += double(p.numel * itemsize(dtype));
  }
  for (Bucket& b : buckets_) {
    if (b.dtype == kFloat32) b.f32.resize(b.packed_numel);
    else b.f64.resize(b.packed_numel);
    b.grads.resize(b.params.size());
    b.pending = b.params.size();
  }
  if (world_ > 1) {
    const std::string env = allreduce_env();  // first: a bad value leaves nothing allocated
    nonblocking_ = env == "nonblocking";
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    DDPReduction mode = options.reduction;
    if (mode == DDPReduction::Auto && !env.empty()) mode = env == "shm" ? DDPReduction::SharedMemory : DDPReduction::MPI;
    if (mode != DDPReduction::MPI) {
      std::vector<std::size_t> region_bytes;
      for (const Bucket& b : buckets_) region_bytes.push_back(b.numel * itemsize(b.dtype));
      shm_ = detail::ShmAllreduce::create(comm_, region_bytes);  // collective: every rank decides alike
      if (!shm_ && mode == DDPReduction::SharedMemory) {
        MPI_Comm_free(&comm_);  // the destructor does not run for a constructor that throws
        fail("DistributedDataParallel: DDPReduction::SharedMemory needs every rank on one node, but the ",
             world_, " ranks span several");
      }
    }
    comm_thread_ = std::make_unique<detail::CommThread>();
    for (std::size_t i = 0; i < params_.size(); ++i)
      params_[i].hook = params_[i].tensor.register_post_accumulate_grad_hook([this, i](Tensor&) { on_gradient_ready(i); });
  }
}

Reducer::~Reducer() {
  for (Param& p : params_)
    if (p.hook) p.tensor.remove_hook(p.hook);
  if (comm_thread_) {
    try {
      comm_thread_->wait_all();
    } catch (...) {  // already reported by the backward that failed
    }
    comm_thread_.reset();
  }
  if (comm_ != MPI_COMM_NULL && detail::mpi_active()) MPI_Comm_free(&comm_);
}

std::vector<std::vector<std::string>> Reducer::bucket_names() const {
  std::vector<std::vector<std::string>> out;
  for (const Bucket& b : buckets_) {
    out.emplace_back();
    for (std::size_t k : b.params) out.back().push_back(params_[k].name);
  }
  return out;
}

void Reducer::reset() {
  for (Param& p : params_) p.ready = false;
  for (Bucket& b : buckets_) {
    b.ready = false;
    b.pending = b.params.size();
    std::fill(b.grads.begin(), b.grads.end(), Tensor());
  }
  next_launch_ = 0;
  polls_after_backward_ = 0;
  callback_queued_ = false;
  compute_done_.store(false, std::memory_order_release);
}

void Reducer::prepare_for_backward(bool sync) {
  if (world_ <= 1) return;
  // A backward that failed half-way may have left buckets in flight: let them land first.
  if (callback_queued_ || next_launch_ != 0) {
    try {
      comm_thread_->wait_all();
    } catch (...) {
    }
    reset();
  }
  expect_sync_ = sync;
}

void Reducer::on_gradient_ready(std::size_t index) {
  if (!expect_sync_) return;  // under no_sync, or a backward not preceded by our forward
  if (!callback_queued_) {
    autograd::queue_callback([this] { finish_backward(); });
    callback_queued_ = true;
    backward_start_us_ = detail::now_us();
  }
  Param& p = params_[index];
  if (p.ready)
    fail("DistributedDataParallel: parameter '", p.name,
         "' received a gradient twice in one backward (a second backward after one forward needs a new forward)");
  mark_ready(index, p.tensor.grad());
}

void Reducer::mark_ready(std::size_t index, Tensor grad) {
  Param& p = params_[index];
  Bucket& b = buckets_[p.bucket];
  if (grad.shape() != p.tensor.shape() || grad.dtype() != b.dtype)
    fail("DistributedDataParallel: gradient of parameter '", p.name, "' has shape ", shape_str(grad.shape()), " ",
         grad.dtype(), ", expected ", shape_str(p.tensor.shape()), " ", b.dtype);
  if (!p.in_place) {
    if (b.dtype == kFloat32) std::memcpy(b.f32.data() + p.offset, grad.data<float>().data(), p.numel * sizeof(float));
    else std::memcpy(b.f64.data() + p.offset, grad.data<double>().data(), p.numel * sizeof(double));
  }
  const auto pos = static_cast<std::size_t>(std::find(b.params.begin(), b.params.end(), index) - b.params.begin());
  b.grads[pos] = std::move(grad);
  p.ready = true;
  if (--b.pending == 0) {
    b.ready = true;
    launch_ready_buckets();
  }
}

void Reducer::launch_ready_buckets() {
  // In index order on every rank: MPI collectives on one communicator must match in order.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready) {
    const std::size_t b = next_launch_++;
    comm_thread_->submit([this, b] { allreduce_bucket(b); });
  }
}

void Reducer::allreduce_bucket(std::size_t index) {
  Bucket& b = buckets_[index];
  const double cpu_start = detail::thread_cpu_seconds();
  b.posted_us = detail::now_us();
  b.copied_us = b.posted_us;
  if (shm_) {
    shm_average_bucket(b);
    const double cpu_end = detail::thread_cpu_seconds();
    b.cpu_seconds = b.reduce_cpu_seconds = cpu_end - cpu_start;  // no separate gate: all of it is the average
    trace_.span("copy into shared memory", 1, b.posted_us, b.copied_us);
    trace_.span("wait for peers", 1, b.copied_us, b.start_us);
    trace_.span("allreduce", 1, b.start_us, b.end_us, std::int64_t(b.numel * itemsize(b.dtype)));
    return;
  }
  // 1. Wait until every rank has posted this bucket, without spinning: a non-blocking barrier
  //    tested with short sleeps in between (OpenMPI has no progress thread, and its blocking calls
  //    spin, which would take the core from this rank's own backward while a slower rank catches
  //    up). Once backward has finished computing, it is tested without sleeping for a while, then
  //    with short sleeps (pause_unless_compute_done).
  MPI_Request gate = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(comm_, &gate), "MPI_Ibarrier (DistributedDataParallel bucket)");
  for (int done = 0, pause_us = 5;; pause_us = std::min(2 * pause_us, max_poll_pause_us)) {
    check(MPI_Test(&gate, &done, MPI_STATUS_IGNORE), "MPI_Test (DistributedDataParallel bucket)");
    if (done) break;
    pause_unless_compute_done(pause_us);
  }
  // 2. Every rank is here: the allreduce. One for the packed small parameters, one per large
  //    parameter straight in its .grad (as PyTorch's gradient views into the bucket: no copy of the
  //    bulk of the bytes); the same calls in the same order on every rank. By default the blocking
  //    MPI_Allreduce (OpenMPI's tuned algorithms: measured 2-3x faster here than MPI_Iallreduce,
  //    whose libnbc schedule advances only inside test calls); XGRAD_DDP_ALLREDUCE=nonblocking posts
  //    MPI_Iallreduce instead and tests it with the same sleeps as the gate (less spinning when the
  //    machine is oversubscribed, more time per byte).
  b.start_us = detail::now_us();
  const double cpu_reduce_start = detail::thread_cpu_seconds();
  const MPI_Datatype type = detail::mpi_type(b.dtype);
  auto raw = [&](Tensor& g) -> void* {
    return b.dtype == kFloat32 ? static_cast<void*>(g.data<float>().data()) : static_cast<void*>(g.data<double>().data());
  };
  std::vector<MPI_Request> requests;
  auto allreduce = [&](void* data, std::size_t count) {
    if (nonblocking_) {
      requests.emplace_back();
      check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), type, MPI_SUM, comm_, &requests.back()),
            "MPI_Iallreduce (DistributedDataParallel bucket)");
    } else {
      check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), type, MPI_SUM, comm_),
            "MPI_Allreduce (DistributedDataParallel bucket)");
    }
  };
  if (b.packed_numel > 0)
    allreduce(b.dtype == kFloat32 ? static_cast<void*>(b.f32.data()) : static_cast<void*>(b.f64.data()), b.packed_numel);
  for (std::size_t j = 0; j < b.params.size(); ++j)
    if (params_[b.params[j]].in_place) allreduce(raw(b.grads[j]), params_[b.params[j]].numel);
  for (int done = requests.empty(), pause_us = 5; !done; pause_us = std::min(2 * pause_us, max_poll_pause_us)) {
    check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE),
          "MPI_Testall (DistributedDataParallel bucket)");
    if (done) break;
    pause_unless_compute_done(pause_us);
  }
  // Average: the sums divided by the world size, into each parameter's .grad (final: backward no
  // longer touches them).
  for (std::size_t j = 0; j < b.params.size(); ++j) {
    const Param& p = params_[b.params[j]];
    Tensor& g = b.grads[j];
    if (b.dtype == kFloat32) {
      const float inv = 1.0f / float(world_);
      float* dst = g.data<float>().data();
      const float* src = p.in_place ? dst : b.f32.data() + p.offset;
      for (std::size_t i = 0; i < p.numel; ++i) dst[i] = src[i] * inv;
    } else {
      const double inv = 1.0 / double(world_);
      double* dst = g.data<double>().data();
      const double* src = p.in_place ? dst : b.f64.data() + p.offset;
      for (std::size_t i = 0; i < p.numel; ++i) dst[i] = src[i] * inv;
    }
  }
  b.end_us = detail::now_us();
  const double cpu_end = detail::thread_cpu_seconds();
  b.cpu_seconds = cpu_end - cpu_start;
  b.reduce_cpu_seconds = cpu_end - cpu_reduce_start;
  trace_.span("wait for peers", 1, b.posted_us, b.start_us);
  trace_.span("allreduce", 1, b.start_us, b.end_us, std::int64_t(b.numel * itemsize(b.dtype)));
}

void Reducer::shm_average_bucket(Bucket& b) {
  // The bucket's pieces in the same order on every rank: the packed small parameters, then each
  // large parameter's .grad in place.
  std::vector<detail::Piece> pieces;
  if (b.packed_numel > 0)
    pieces.push_back({b.dtype == kFloat32 ? static_cast<void*>(b.f32.data()) : static_cast<void*>(b.f64.data()),
                      b.packed_numel});
  for (std::size_t j = 0; j < b.params.size(); ++j) {
    const Param& p = params_[b.params[j]];
    if (!p.in_place) continue;
    Tensor& g = b.grads[j];
    pieces.push_back({b.dtype == kFloat32 ? static_cast<void*>(g.data<float>().data())
                                          : static_cast<void*>(g.data<double>().data()),
                      p.numel});
  }
  detail::ShmAllreduce::Timing timing;
  const std::size_t region = static_cast<std::size_t>(&b - buckets_.data());
  shm_->average(region, b.dtype, pieces, [this](int attempt) {
    // Sleeps of 5 us doubling up to the poll cap, as the MPI path's gate.
    pause_unless_compute_done(std::min(max_poll_pause_us, 5 << std::min(attempt, 16)));
  }, &timing);
  b.copied_us = timing.copied_us;
  b.start_us = timing.arrived_us;
  // The packed parameters' averages, back into their .grad (the large ones already are).
  for (std::size_t j = 0; j < b.params.size(); ++j) {
    const Param& p = params_[b.params[j]];
    if (p.in_place) continue;
    Tensor& g = b.grads[j];
    if (b.dtype == kFloat32) std::memcpy(g.data<float>().data(), b.f32.data() + p.offset, p.numel * sizeof(float));
    else std::memcpy(g.data<double>().data(), b.f64.data() + p.offset, p.numel * sizeof(double));
  }
  b.end_us = detail::now_us();
}

void Reducer::pause_unless_compute_done(int pause_us) {
  if (compute_done_.load(std::memory_order_acquire)) {
    // Backward is done: this rank's core has nothing else to do. Poll without sleeping for a while
    // (the other rank is usually about to arrive), then in short sleeps: a rank that spins while it
    // waits for a slower one keeps its core busy, so the scheduler never moves another tenant's
    // process off the slower rank's core onto it (measured with a CPU-bound tenant on the machine:
    // DDP step 48.9-55.6 ms with the sleeps against 58.3-63.2 ms spinning).
    if (after_backward_sleep_us > 0 && ++polls_after_backward_ > kPollsBeforeSleeping)
      std::this_thread::sleep_for(std::chrono::microseconds(after_backward_sleep_us));
    else
      std::this_thread::yield();
    return;
  }
  std::unique_lock lock(compute_done_mutex_);
  compute_done_cv_.wait_for(lock, std::chrono::microseconds(pause_us),
                            [&] { return compute_done_.load(std::memory_order_acquire); });
}

void Reducer::finish_backward() {
  const double compute_end = detail::now_us();
  {
    std::lock_guard lock(compute_done_mutex_);
    compute_done_.store(true, std::memory_order_release);
  }
  compute_done_cv_.notify_all();
  expect_sync_ = false;
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Param& p = params_[i];
    if (p.ready) continue;
    if (!options_.find_unused_parameters) {
      missing.push_back(p.name);
      continue;
    }
    // Unused in this step: contribute its current gradient (zeros if it has none), so the bucket
    // completes on every rank.
    Tensor g = p.tensor.grad();
    if (!g.defined()) {
      g = zeros(p.tensor.shape(), p.tensor.dtype());
      p.tensor.set_grad(g);
    }
    mark_ready(i, g);
  }
  if (!missing.empty()) {
    comm_thread_->wait_all();  // the buckets already sent must land before we leave them
    reset();
    std::string names;
    for (const std::string& n : missing) names += (names.empty() ? "'" : ", '") + n + "'";
    fail("DistributedDataParallel: parameter", missing.size() > 1 ? "s " : " ", names,
         " received no gradient in this backward, so its bucket can never be reduced. Use every parameter "
         "in the loss, or construct DistributedDataParallel with find_unused_parameters = true");
  }
  comm_thread_->wait_all();
  const double end = detail::now_us();
  stats_ = {};
  stats_.backward_seconds = (compute_end - backward_start_us_) * 1e-6;
  stats_.wait_seconds = (end - compute_end) * 1e-6;
  // A bucket's allreduce time: its copy into shared memory (none on the MPI path), then from the
  // moment every rank had reached it to its average in .grad; the wait for the other ranks in
  // between is peer waiting.
  auto overlap_with_backward = [&](double from, double to) {
    return std::max(0.0, std::min(to, compute_end) - std::max(from, backward_start_us_)) * 1e-6;
  };
  for (const Bucket& b : buckets_) {
    stats_.allreduce_seconds += (b.end_us - b.start_us + b.copied_us - b.posted_us) * 1e-6;
    stats_.peer_wait_seconds += (b.start_us - b.copied_us) * 1e-6;
    stats_.communication_cpu_seconds += b.cpu_seconds;
    stats_.allreduce_cpu_seconds += b.reduce_cpu_seconds;
    stats_.hidden_seconds += overlap_with_backward(b.start_us, b.end_us) + overlap_with_backward(b.posted_us, b.copied_us);
  }
  trace_.span("backward", 0, backward_start_us_, compute_end);
  trace_.span("wait for allreduce", 0, compute_end, end);
  reset();
}

// ---- DistributedDataParallel ----------------------------------------------------------------------

namespace {
void broadcast_from_rank0(const nn::NamedTensorList& tensors) {
  for (const auto& entry : tensors) {
    Tensor t = entry.second;
    broadcast(t, 0);
  }
}
}  // namespace

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module, DDPOptions options)
    : module_(std::move(module)), options_(options) {
  if (!module_) fail("DistributedDataParallel: the module is null");
  if (!(options_.bucket_cap_mb >= 0))
    fail("DistributedDataParallel: bucket_cap_mb must be >= 0, got ", options_.bucket_cap_mb);
  if (!is_initialized()) init();
  register_module("module", module_);
  if (world_size() > 1) {
    broadcast_from_rank0(module_->named_parameters());
    broadcast_from_rank0(module_->named_buffers());
  }
  reducer_ = std::make_unique<Reducer>(module_->named_parameters(), options_);
}

DistributedDataParallel::~DistributedDataParallel() = default;

Tensor DistributedDataParallel::forward(const Tensor& input) {
  if (options_.broadcast_buffers && world_size() > 1) broadcast_from_rank0(module_->named_buffers());
  reducer_->prepare_for_backward(sync_ && is_grad_enabled());
  return (*module_)(input);
}

std::vector<std::vector<std::string>> DistributedDataParallel::bucket_parameter_names() const {
  return reducer_->bucket_names();
}

bool DistributedDataParallel::uses_shared_memory() const { return reducer_->uses_shared_memory(); }

const DistributedDataParallel::StepStats& DistributedDataParallel::last_step_stats() const {
  return reducer_->stats();
}

DistributedDataParallel::NoSyncGuard::NoSyncGuard(DistributedDataParallel& ddp) : ddp_(ddp), previous_(ddp.sync_) {
  ddp_.sync_ = false;
}
DistributedDataParallel::NoSyncGuard::~NoSyncGuard() { ddp_.sync_ = previous_; }

}  // namespace xgrad::distributed
