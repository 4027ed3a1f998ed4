// The MPI test runner: every rank runs every test case in the same order (the cases use
// collectives), started by CTest through mpirun. Only rank 0 reports successes; any rank reports its
// failures, and mpirun fails when any rank fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <distributed/distributed.hpp>

int main(int argc, char** argv) {
  xgrad::distributed::init();
  doctest::Context context(argc, argv);
  if (xgrad::distributed::rank() != 0) context.setOption("no-intro", true);
  const int failures = context.run();
  // A rank that fails still joins the others here, so nobody waits forever.
  xgrad::distributed::barrier();
  xgrad::distributed::finalize();
  return failures == 0 ? 0 : 1;
}
