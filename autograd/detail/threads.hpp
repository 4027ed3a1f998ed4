// How many threads a BLAS call may use. Internal: linalg's GEMM calls it right before BLAS.
#pragma once

namespace xgrad::detail {

// Tells OpenBLAS how many threads the next product of `flops` multiply-adds should use: enough that
// each gets a worthwhile share, never more than get_num_threads(). Products of small and medium
// models (under about 1.3e8 multiply-adds) run on one thread.
void prepare_blas_threads(double flops) noexcept;

}  // namespace xgrad::detail
