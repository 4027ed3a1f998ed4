// A per-thread pool of the arrays of dead tensors, reused for new tensors of the same size.
//
// Why: a tensor's buffer comes from xsimd's aligned allocator, i.e. posix_memalign, which glibc
// serves on a slow path (no thread cache; it splits a larger chunk and frees the pieces): about 700
// instructions per call against 70 for a plain malloc, measured with callgrind. A graph step makes
// tens of short-lived tensors (W2: about 25 per step; W3: one or two per op), and one about to be
// made usually has the size of one just freed. Reusing the array skips the allocator altogether.
//
// Large arrays too: glibc serves a posix_memalign of a freed size from fresh heap about half the
// time (the freed chunk is a few bytes short of what memalign asks for, its split-off neighbours
// sit in the thread cache), so a loop of `C = matmul(A, B)` at 1024^3 page-faulted a new 4 MiB
// output on most calls and ran 10% below the same GEMM into a reused buffer.
//
// Bounds: arrays of at most kMaxPooledArrayBytes, at most kMaxPooledArrays per dtype and
// kMaxPoolBytes in all, per thread (beyond the count a dying array is just freed; beyond the bytes,
// pooled arrays are freed in turn to make room). A thread's pool is freed when the thread exits.
// The values of a reused array are garbage, as for any empty tensor.
#pragma once
#include <cstddef>

#include "tensor_impl.hpp"

namespace xgrad::detail {

inline constexpr std::size_t kMaxPooledArrayBytes = 8 << 20;
inline constexpr std::size_t kMaxPooledArrays = 64;
inline constexpr std::size_t kMaxPoolBytes = 32 << 20;

// An array of exactly n elements from this thread's pool, or null. Move from it, then call
// pop_recycled<T>(n) before the next pool call.
template <class T>
Array<T>* recycled_array(std::size_t n) noexcept;
template <class T>
void pop_recycled(std::size_t n) noexcept;
// Keeps `a`'s buffer in the pool when it qualifies (leaving `a` empty), else leaves `a` alone.
template <class T>
void recycle_array(Array<T>& a) noexcept;

}  // namespace xgrad::detail
