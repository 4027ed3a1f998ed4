// Averaging buffers over the ranks of one node through an MPI-3 shared-memory window, for DDP.
//
// Every rank owns a slot of the window holding one region per bucket. To average a bucket of n
// elements over N ranks, the bucket is cut into N slices and rank r owns slice r:
//   1. each rank copies the slices it does not own into its slot (its own slice it reads in place);
//   2. it announces "arrived" (a sequence number in its slot) and waits for every rank's;
//   3. rank r sums slice r over the ranks in rank order 0, 1, ..., N-1, multiplies by 1/N, and
//      writes the average into its own buffer and into slice r of its slot;
//   4. it announces "reduced" and waits for every rank's;
//   5. it copies slice k (k != r) of rank k's slot into its buffer.
// Each rank thus reads and writes about 2n elements (MPI's 2-rank allreduce moves and sums all n on
// both ranks), and since one rank computes each averaged element and every rank copies those bits,
// the result is bitwise identical on every rank. With 2 ranks the sum s0 + s1 and the product by 1/2
// are the same operations as MPI_Allreduce followed by DDP's division: the same bits.
//
// Waiting never spins the core away: the caller's `pause` runs between two checks (DDP's growing
// sleeps, cut short once backward has finished computing).
#pragma once
#include <mpi.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "../autograd/dtype.hpp"

namespace xgrad::distributed::detail {

// One contiguous part of a buffer being averaged; a bucket is its pieces one after the other.
struct Piece {
  void* data = nullptr;
  std::size_t count = 0;  // elements
};

class ShmAllreduce {
 public:
  // Null when the ranks of `comm` are not all on this node. `region_bytes`: the largest buffer each
  // region will average (one region per bucket: consecutive averages of different buckets may
  // overlap in time across ranks, so they must not share memory). Collective over `comm`.
  static std::unique_ptr<ShmAllreduce> create(MPI_Comm comm, const std::vector<std::size_t>& region_bytes);
  ~ShmAllreduce();
  ShmAllreduce(const ShmAllreduce&) = delete;
  ShmAllreduce& operator=(const ShmAllreduce&) = delete;

  // When the phases of the last average() ended, on the monotonic clock of trace.hpp (microseconds).
  struct Timing {
    double copied_us = 0;      // this rank's slices are in its slot
    double arrived_us = 0;     // every rank's are
    double summed_us = 0;      // this rank's slice of the average is written
    double all_summed_us = 0;  // every rank's is (then the other slices are copied out)
  };
  // Called between two checks of the other ranks' progress; `attempt` counts from 0 per wait.
  using Pause = std::function<void(int attempt)>;

  // Averages `pieces` (Float32 or Float64; the same total count on every rank) over the ranks, in
  // place, through region `region`. Every rank must call it for the same regions in the same order.
  void average(std::size_t region, Dtype dtype, const std::vector<Piece>& pieces, const Pause& pause,
               Timing* timing = nullptr);

  int size() const noexcept { return size_; }

 private:
  ShmAllreduce() = default;
  struct Control;
  Control& control(int rank) const;
  char* region_data(int rank, std::size_t region) const;
  void wait_for_all(std::size_t which, std::uint64_t seq, const Pause& pause) const;

  MPI_Comm node_comm_ = MPI_COMM_NULL;
  MPI_Win window_ = MPI_WIN_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<char*> slots_;               // each rank's slot, mapped in this process
  std::vector<std::size_t> region_offset_;  // in a slot, in bytes
  std::vector<std::size_t> region_bytes_;
  std::uint64_t seq_ = 0;  // averages done: the same on every rank
};

}  // namespace xgrad::distributed::detail
