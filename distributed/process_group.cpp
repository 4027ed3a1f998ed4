// The process group on MPI_COMM_WORLD and the collectives on Tensors.
#include "process_group.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "../train/fit_collective.hpp"
#include "mpi_support.hpp"

namespace xgrad::distributed {

namespace detail {
namespace {
bool started = false;    // init() ran
bool using_mpi = false;  // ... and started MPI (we were launched by mpirun)
bool finalized = false;
int world_rank = 0;
int world_count = 1;
}  // namespace

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = std::snprintf(text, sizeof text, "error code %d", rc);
  xgrad::detail::fail("distributed: ", what, " failed: ", std::string(text, static_cast<std::size_t>(len)));
}

MPI_Datatype mpi_type(Dtype dtype) { return dtype == kFloat32 ? MPI_FLOAT : MPI_DOUBLE; }

bool mpi_active() { return using_mpi && !finalized; }

void require_usable(const char* what) {
  if (finalized) xgrad::detail::fail("distributed::", what, ": called after distributed::finalize()");
}

}  // namespace detail

namespace {
using detail::check;

// Launched by mpirun/mpiexec (OpenMPI, MPICH/Hydra, PMIx)? Otherwise we stay a plain process: no
// singleton MPI start-up, no daemon.
bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

void* raw(Tensor& t) {
  return t.dtype() == kFloat32 ? static_cast<void*>(t.data<float>().data())
                               : static_cast<void*>(t.data<double>().data());
}

int count_of(const char* fn, const Tensor& t) {
  if (!t.defined()) xgrad::detail::fail("distributed::", fn, ": the tensor is undefined");
  if (t.numel() > static_cast<std::size_t>(INT32_MAX))
    xgrad::detail::fail("distributed::", fn, ": ", t.numel(), " elements exceed MPI's int count");
  return static_cast<int>(t.numel());
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
    default: return MPI_SUM;  // Avg = Sum, then divide
  }
}

void divide_by_world(Tensor& t) {
  const int n = detail::world_count;
  if (t.dtype() == kFloat32) {
    for (float& v : t.data<float>()) v /= static_cast<float>(n);
  } else {
    for (double& v : t.data<double>()) v /= static_cast<double>(n);
  }
}

// Ranks on this host, to share its cores among them.
int ranks_on_this_host() {
  MPI_Comm local;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
  int n = 1;
  MPI_Comm_size(local, &n);
  MPI_Comm_free(&local);
  return n;
}

void install_fit_collective() {
  xgrad::detail::FitCollective c;
  c.sum = [](std::vector<double>& v) {
    check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce (fit metrics)");
  };
  c.abort = [](const std::string& message) { distributed::abort(message); };
  c.is_main = detail::world_rank == 0;
  c.world_size = detail::world_count;
  xgrad::detail::set_fit_collective(std::move(c));
}

void finalize_at_exit() {
  if (detail::mpi_active()) finalize();
}
}  // namespace

int init() {
  if (detail::started) return detail::world_count;
  detail::started = true;
  if (!launched_by_mpirun()) return 1;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    // OpenMPI has no progress thread: a rank waiting in a collective spins. Yielding while idle lets
    // DDP's communication thread and the compute thread share a core without the spin stealing it.
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    if (provided < MPI_THREAD_MULTIPLE) {
      MPI_Finalize();
      xgrad::detail::fail("distributed::init: this MPI offers thread level ", provided,
                          ", DistributedDataParallel needs MPI_THREAD_MULTIPLE");
    }
  }
  detail::using_mpi = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &detail::world_rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &detail::world_count), "MPI_Comm_size");
  if (detail::world_count > 1) {
    if (!std::getenv("XGRAD_NUM_THREADS")) {
      const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      set_num_threads(std::max(1, cores / ranks_on_this_host()));
    }
    install_fit_collective();
  }
  std::atexit(finalize_at_exit);
  return detail::world_count;
}

bool is_initialized() { return detail::started && !detail::finalized; }
int rank() { return detail::world_rank; }
int world_size() { return detail::world_count; }

void barrier() {
  detail::require_usable("barrier");
  if (!detail::mpi_active()) return;
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void finalize() {
  if (detail::finalized || !detail::started) return;
  detail::finalized = true;
  xgrad::detail::set_fit_collective({});
  if (detail::using_mpi) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }
}

void abort(const std::string& message, int exit_code) {
  std::fprintf(stderr, "xgrad rank %d: %s\n", detail::world_rank, message.c_str());
  std::fflush(stderr);
  if (detail::mpi_active()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

void all_reduce(Tensor& tensor, ReduceOp op) {
  const int n = count_of("all_reduce", tensor);
  detail::require_usable("all_reduce");
  if (!detail::mpi_active()) return;
  check(MPI_Allreduce(MPI_IN_PLACE, raw(tensor), n, detail::mpi_type(tensor.dtype()), mpi_op(op), MPI_COMM_WORLD),
        "MPI_Allreduce");
  if (op == ReduceOp::Avg) divide_by_world(tensor);
}

void broadcast(Tensor& tensor, int root) {
  const int n = count_of("broadcast", tensor);
  detail::require_usable("broadcast");
  if (root < 0 || root >= detail::world_count)
    xgrad::detail::fail("distributed::broadcast: root ", root, " out of range for world size ", detail::world_count);
  if (!detail::mpi_active()) return;
  check(MPI_Bcast(raw(tensor), n, detail::mpi_type(tensor.dtype()), root, MPI_COMM_WORLD), "MPI_Bcast");
}

std::vector<Tensor> all_gather(const Tensor& tensor) {
  const int n = count_of("all_gather", tensor);
  detail::require_usable("all_gather");
  if (!detail::mpi_active()) return {tensor.detach().clone()};
  // Every rank must bring the same shape and dtype: compare first, so a mismatch is an error, not
  // garbage.
  const Shape shape = tensor.shape();
  std::vector<long long> mine(10, -1);
  mine[0] = static_cast<long long>(tensor.dtype());
  mine[1] = static_cast<long long>(shape.size());
  for (std::size_t i = 0; i < shape.size() && i < 8; ++i) mine[2 + i] = static_cast<long long>(shape[i]);
  std::vector<long long> all(mine.size() * static_cast<std::size_t>(detail::world_count));
  check(MPI_Allgather(mine.data(), 10, MPI_LONG_LONG, all.data(), 10, MPI_LONG_LONG, MPI_COMM_WORLD),
        "MPI_Allgather");
  for (int r = 0; r < detail::world_count; ++r)
    if (!std::equal(mine.begin(), mine.end(), all.begin() + r * 10))
      xgrad::detail::fail("distributed::all_gather: rank ", detail::world_rank, " has a ", tensor.dtype(), " tensor of shape ",
                          shape_str(shape), " but rank ", r, " a different shape or dtype");
  Shape out_shape{static_cast<std::size_t>(detail::world_count) * static_cast<std::size_t>(n)};
  Tensor gathered = empty(out_shape, tensor.dtype());
  Tensor source = tensor.detach();
  check(MPI_Allgather(raw(source), n, detail::mpi_type(tensor.dtype()), raw(gathered), n,
                      detail::mpi_type(tensor.dtype()), MPI_COMM_WORLD),
        "MPI_Allgather");
  std::vector<Tensor> out;
  std::vector<std::int64_t> dims(shape.begin(), shape.end());
  for (int r = 0; r < detail::world_count; ++r)
    out.push_back(gathered.slice(0, std::int64_t(r) * n, std::int64_t(r + 1) * n).reshape(dims).clone());
  return out;
}

// ---- Work -------------------------------------------------------------------------------------
struct Work::State {
  MPI_Request request = MPI_REQUEST_NULL;
  Tensor tensor;
  ReduceOp op = ReduceOp::Sum;
  bool done = true;

  void finish() {
    done = true;
    if (op == ReduceOp::Avg) divide_by_world(tensor);
    tensor = Tensor();
  }
};

Work::Work() = default;
Work::Work(Work&&) noexcept = default;
Work& Work::operator=(Work&& other) noexcept {
  if (this != &other) {
    if (state_ && !state_->done) {
      try {
        wait();
      } catch (...) {
      }
    }
    state_ = std::move(other.state_);
  }
  return *this;
}
Work::~Work() {
  if (state_ && !state_->done) {
    try {
      wait();
    } catch (...) {  // a destructor must not throw; wait() is where errors are reported
    }
  }
}

void Work::wait() {
  if (!state_ || state_->done) return;
  check(MPI_Wait(&state_->request, MPI_STATUS_IGNORE), "MPI_Wait");
  state_->finish();
}

bool Work::is_completed() {
  if (!state_ || state_->done) return true;
  int flag = 0;
  check(MPI_Test(&state_->request, &flag, MPI_STATUS_IGNORE), "MPI_Test");
  if (flag) state_->finish();
  return flag != 0;
}

Work all_reduce_async(Tensor& tensor, ReduceOp op) {
  const int n = count_of("all_reduce_async", tensor);
  detail::require_usable("all_reduce_async");
  Work work;
  work.state_ = std::make_unique<Work::State>();
  if (!detail::mpi_active()) return work;
  Work::State& s = *work.state_;
  s.tensor = tensor;
  s.op = op;
  check(MPI_Iallreduce(MPI_IN_PLACE, raw(tensor), n, detail::mpi_type(tensor.dtype()), mpi_op(op), MPI_COMM_WORLD,
                       &s.request),
        "MPI_Iallreduce");
  s.done = false;
  return work;
}

}  // namespace xgrad::distributed
