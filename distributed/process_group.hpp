// xgrad::distributed: the process group (one process per rank, started by `mpirun`) and collectives
// on Tensors, on MPI. This header does not include <mpi.h>: only distributed/*.cpp do.
//
//   int world = distributed::init();          // 1 when the program was not started by mpirun
//   Tensor g = ...;
//   distributed::all_reduce(g, distributed::ReduceOp::Avg);
//   distributed::finalize();
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../autograd/tensor.hpp"

namespace xgrad::distributed {

enum class ReduceOp { Sum, Avg, Max, Min };

// Starts MPI (asking for MPI_THREAD_MULTIPLE: DDP reduces gradients on a communication thread) when
// the program was started by mpirun or mpiexec; otherwise starts nothing and the world is this one
// process. Returns the world size. Calling it again returns the same. Under several ranks it also
// caps each rank's threads at (cores of this host / ranks on this host), unless XGRAD_NUM_THREADS is
// set, so that ranks never oversubscribe each other, and makes an exception escaping xgrad::fit
// abort the whole job (MPI_Abort) with its message instead of leaving the other ranks waiting.
int init();
bool is_initialized();  // init() called and finalize() not yet
int rank();             // 0 before init() or without mpirun
int world_size();       // 1 before init() or without mpirun
void barrier();
// Shuts MPI down (a no-op without mpirun). Collectives afterwards are errors. Also run at exit.
void finalize();
// Ends every rank of the job at once (MPI_Abort) after printing `message` to stderr.
[[noreturn]] void abort(const std::string& message, int exit_code = 1);

// Collectives on every rank's tensor of the same shape and dtype, in place (they bypass autograd,
// like an optimizer's update). Every rank must call them in the same order. With one process they
// leave the tensor as it is. Any MPI failure throws xgrad::Error with MPI's error string.
void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum);
void broadcast(Tensor& tensor, int root = 0);
// Every rank's tensor, indexed by rank (copies; the caller's own included).
std::vector<Tensor> all_gather(const Tensor& tensor);

// A collective in flight. wait() blocks until it has finished and the tensor holds the result;
// the tensor must stay alive and untouched until then. Destroying an unwaited Work waits.
class Work {
 public:
  Work();
  Work(Work&&) noexcept;
  Work& operator=(Work&&) noexcept;
  ~Work();
  void wait();
  bool is_completed();  // tests without blocking (and drives MPI's progress)

  struct State;  // opaque: holds the MPI request

 private:
  friend Work all_reduce_async(Tensor& tensor, ReduceOp op);
  std::unique_ptr<State> state_;
};
Work all_reduce_async(Tensor& tensor, ReduceOp op = ReduceOp::Sum);

}  // namespace xgrad::distributed
