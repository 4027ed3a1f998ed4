// distributed::DistributedDataParallel: data-parallel training of a model replicated on every rank.
//
//   distributed::init();
//   auto model = make_model();
//   auto ddp = std::make_shared<distributed::DistributedDataParallel>(model);  // rank 0's weights everywhere
//   optim::Adam adam(ddp->parameters());
//   for (auto& [x, y] : sharded_loader) {            // DataLoaderOptions{.num_replicas, .rank}
//     adam.zero_grad();
//     loss(ddp->forward(x), y).backward();           // returns with gradients averaged over ranks
//     adam.step();                                   // identical on every rank
//   }
//
// How the averaging overlaps backward (like PyTorch's DDP and Horovod): parameters are grouped into
// buckets of about bucket_cap_mb, in reverse registration order (the order backward produces their
// gradients; the first bucket is capped at 1 MiB so communication starts early). When the last
// gradient of a bucket is final (a post-accumulate-grad hook on each parameter), the bucket is handed
// to a communication thread that averages it while backward goes on; buckets are reduced in index
// order on every rank. When every rank runs on this node (the default DDPReduction::Auto), the
// average goes through a shared-memory window (shm_allreduce.hpp: each rank sums 1/N of the bucket
// and the ranks copy each other's averaged slices), waiting for the other ranks with short sleeps.
// Otherwise the thread first waits, asleep, for every rank to reach the bucket (a non-blocking
// barrier tested with short sleeps), then reduces it with the blocking MPI_Allreduce
// (XGRAD_DDP_ALLREDUCE=nonblocking: MPI_Iallreduce tested with sleeps). At the end of backward (an
// engine callback) the call waits for the remaining buckets; the averaged values are in each
// parameter's .grad by then.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "../nn/module.hpp"

namespace xgrad::distributed {

// How the buckets are averaged over the ranks.
enum class DDPReduction {
  Auto,          // SharedMemory when every rank is on this node, else MPI; XGRAD_DDP_ALLREDUCE overrides
                 // it: "shm", "mpi" (blocking MPI_Allreduce) or "nonblocking" (MPI_Iallreduce)
  SharedMemory,  // through an MPI-3 shared-memory window (an error when the ranks span several nodes)
  MPI,           // MPI_Allreduce (MPI_Iallreduce under XGRAD_DDP_ALLREDUCE=nonblocking)
};

struct DDPOptions {
  double bucket_cap_mb = 25;       // bucket size in MiB (the first bucket at most 1 MiB); 0 = one per parameter
  bool broadcast_buffers = true;   // re-broadcast rank 0's buffers (e.g. BatchNorm statistics) every forward
  // Parameters that get no gradient in a backward are reduced as zeros instead of waited for. Without
  // it, such a parameter makes backward throw an error naming it (never a hang).
  bool find_unused_parameters = false;
  DDPReduction reduction = DDPReduction::Auto;
};

class Reducer;  // the bucketing machinery (ddp.cpp)

class DistributedDataParallel : public nn::Module {
 public:
  // Registers `module` as the child "module" (parameter names "module.fc1.weight" as in PyTorch) and
  // broadcasts rank 0's parameters and buffers to every rank.
  explicit DistributedDataParallel(std::shared_ptr<nn::Module> module, DDPOptions options = {});
  ~DistributedDataParallel() override;

  Tensor forward(const Tensor& input) override;
  const std::shared_ptr<nn::Module>& module() const noexcept { return module_; }
  const DDPOptions& options() const noexcept { return options_; }

  // While a guard lives, backward only accumulates gradients locally (gradient accumulation); the
  // first backward after it ends averages the accumulated gradients.
  class NoSyncGuard {
   public:
    explicit NoSyncGuard(DistributedDataParallel& ddp);
    ~NoSyncGuard();
    NoSyncGuard(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(const NoSyncGuard&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool previous_;
  };
  [[nodiscard]] NoSyncGuard no_sync() { return NoSyncGuard(*this); }

  // The buckets as parameter names (of the wrapped module), in reduction order.
  std::vector<std::vector<std::string>> bucket_parameter_names() const;
  // True when buckets are averaged through shared memory (DDPReduction::SharedMemory, or Auto on one node).
  bool uses_shared_memory() const;

  // Timings of the last synchronised backward, for benchmarks and the trace.
  struct StepStats {
    double backward_seconds = 0;   // first gradient ready -> every gradient computed
    double allreduce_seconds = 0;  // time buckets spent in allreduce (summed; from the moment every
                                   // rank has reached the bucket to its average in .grad, plus on the
                                   // shared-memory path the copy into the window before that)
    double hidden_seconds = 0;     // the part of it that ran while backward was still computing
    double wait_seconds = 0;       // time backward waited for communication after computing
    double peer_wait_seconds = 0;  // time buckets waited for the other ranks to reach them (summed)
    double communication_cpu_seconds = 0;  // processor time of the communication thread
    double allreduce_cpu_seconds = 0;      // ... of which in the allreduces and averaging (the rest:
                                           // waiting for the other ranks to reach the buckets)
  };
  const StepStats& last_step_stats() const;

 private:
  std::shared_ptr<nn::Module> module_;
  DDPOptions options_;
  std::unique_ptr<Reducer> reducer_;
  bool sync_ = true;
};

}  // namespace xgrad::distributed
