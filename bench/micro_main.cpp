// Entry point of micro_benchmarks: Google Benchmark's own flags, plus --threads=N (default 1) so
// that the figures are single-threaded like the workloads' reference runs, BLAS included.
//
//   build/bench/micro_benchmarks --benchmark_filter='matmul|linear' [--threads=2]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <xgrad.hpp>

int main(int argc, char** argv) {
  int threads = 1;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::atoi(argv[i] + 10);
    else argv[kept++] = argv[i];
  }
  argc = kept;
  xgrad::set_num_threads(threads);
  benchmark::AddCustomContext("xgrad_threads", std::to_string(xgrad::get_num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
