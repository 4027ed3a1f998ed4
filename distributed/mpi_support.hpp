// Internal helpers shared by distributed/*.cpp: MPI error checking and dtype mapping.
#pragma once
#include <mpi.h>

#include <string>

#include "../autograd/dtype.hpp"
#include "../autograd/error.hpp"

namespace xgrad::distributed::detail {

// Throws xgrad::Error naming `what` and carrying MPI's own error string when rc is not MPI_SUCCESS.
void check(int rc, const char* what);
MPI_Datatype mpi_type(Dtype dtype);
// True when MPI is running (init() started it and finalize() has not stopped it).
bool mpi_active();
// Throws when a collective is called after finalize().
void require_usable(const char* what);

}  // namespace xgrad::distributed::detail
