// A helper program for tests/test_process_defaults.cpp, not a test itself: what xgrad did before main
// (the load-time malloc tuning) and what it chooses on first use (the default thread cap) can only be
// seen in a fresh process whose environment and CPU affinity the test controls. It prints one line of
// key=value pairs.
//   xgrad_probe malloc    how glibc served a 1 MiB block: mmap_blocks (1: its own mapping, glibc's
//                         default; 0: from the heap) and kept_bytes (heap still held after the free:
//                         0 when glibc trimmed it back to the OS).
//   xgrad_probe threads   get_num_threads(), the CPUs of the affinity mask, and the OpenBLAS thread
//                         count after a product big enough for two threads.
#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <xgrad.hpp>

extern "C" int openblas_get_num_threads(void);

namespace {

int probe_malloc() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  // First thing in main: nothing has freed a large block yet, so glibc's dynamic mmap threshold is
  // still its initial 128 KiB unless xgrad's load-time hook (or the user) changed it.
  const struct mallinfo2 before = mallinfo2();
  const std::size_t size = std::size_t{1} << 20;  // 1 MiB: above 128 KiB, below xgrad's 32 MiB
  auto* block = static_cast<unsigned char*>(std::malloc(size));
  if (!block) return 2;
  std::memset(block, 1, size);
  const struct mallinfo2 during = mallinfo2();
  std::free(block);
  const struct mallinfo2 after = mallinfo2();
  const long mmap_blocks = static_cast<long>(during.hblks) - static_cast<long>(before.hblks);
  const long kept = static_cast<long>(after.arena) - static_cast<long>(before.arena);
  // Link the library's load-time code the way any program does: by making a tensor.
  const double one = xgrad::ones({1}).item();
  std::printf("mmap_blocks=%ld kept_bytes=%ld one=%g\n", mmap_blocks, kept < 0 ? 0L : kept, one);
  return 0;
#else
  std::printf("unsupported\n");
  return 3;
#endif
}

int probe_threads() {
  cpu_set_t set;
  const int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : -1;
  const int threads = xgrad::get_num_threads();  // the first call: the default is chosen here
  // 512·512·512 = 2^27 multiply-adds, two threads' worth (2^26 each): the product takes
  // min(2, cap) threads.
  const xgrad::Tensor a = xgrad::ones({512, 512});
  const double corner = xgrad::matmul(a, a).data<float>()(511, 511);
  std::printf("threads=%d cpus=%d blas_threads=%d corner=%g\n", threads, cpus, openblas_get_num_threads(), corner);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "malloc") return probe_malloc();
  if (mode == "threads") return probe_threads();
  std::fprintf(stderr, "usage: %s malloc|threads\n", argv[0]);
  return 1;
}
