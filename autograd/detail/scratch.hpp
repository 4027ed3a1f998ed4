// Per-thread scratch memory for kernels that need a temporary buffer beyond what the array pool
// keeps (array_pool.hpp pools arrays of at most 8 MiB): convolution's im2col columns above all.
//
// Each slot is one buffer that grows to the largest size asked of it on this thread and is then
// reused: after the first call of a given shape, a kernel's temporaries cost no allocation (a 29 MB
// column buffer per call page-faulted fresh heap and cost more than the im2col that filled it).
// The contents are garbage on entry. A thread's buffers are freed when the thread exits; buffers
// above kMaxKeptScratchBytes are freed by trim_scratch() when the kernel is done, so one huge
// convolution does not pin its columns for the rest of the thread's life.
// A kernel owns its slots until it returns, so a kernel that uses slot k must not call another
// kernel that uses slot k.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace xgrad::detail {

inline constexpr int kScratchSlots = 4;
inline constexpr std::size_t kMaxKeptScratchBytes = std::size_t{64} << 20;

struct ScratchBuffer {
  struct Free {
    void operator()(void* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<void, Free> data;
  std::size_t bytes = 0;
};

inline ScratchBuffer* scratch_buffers() {
  static thread_local ScratchBuffer buffers[kScratchSlots];
  return buffers;
}

// Frees this thread's scratch buffers that are larger than kMaxKeptScratchBytes.
inline void trim_scratch() noexcept {
  ScratchBuffer* buffers = scratch_buffers();
  for (int i = 0; i < kScratchSlots; ++i)
    if (buffers[i].bytes > kMaxKeptScratchBytes) {
      buffers[i].data.reset();
      buffers[i].bytes = 0;
    }
}

// `n` elements of T (64-byte aligned) in scratch slot `slot` of this thread. Callers check the size
// with check_allocation first.
template <class T>
T* scratch(std::size_t n, int slot) {
  ScratchBuffer& b = scratch_buffers()[slot];
  const std::size_t want = ((n * sizeof(T) + 63) / 64) * 64;
  if (want > b.bytes) {
    b.data.reset();  // free first: the old contents are not needed
    b.bytes = 0;
    void* p = std::aligned_alloc(64, want == 0 ? 64 : want);
    if (!p) throw std::bad_alloc();
    b.data.reset(p);
    b.bytes = want;
  }
  return static_cast<T*>(b.data.get());
}

}  // namespace xgrad::detail
