// How many threads a BLAS call may use. Internal: linalg's GEMM calls it right before BLAS.
#pragma once

namespace xgrad::detail {

// Tells OpenBLAS how many threads the next product of `flops` multiply-adds should use: enough that
// each gets a worthwhile share, never more than get_num_threads(). Products of small and medium
// models (under about 1.3e8 multiply-adds) run on one thread.
void prepare_blas_threads(double flops) noexcept;

// The thread cap get_num_threads() starts from (see the rule in tensor.hpp): `env_value` is the
// value of XGRAD_NUM_THREADS (nullptr when unset), `cpus` the CPUs of the process's affinity mask.
// Read once, on the first get_num_threads(). Separate from the environment so tests can check the rule.
int default_num_threads(const char* env_value, int cpus) noexcept;

}  // namespace xgrad::detail
