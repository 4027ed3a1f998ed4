// How fit and evaluate see the other processes of a data-parallel job. train/ knows nothing of MPI:
// distributed::init() installs a FitCollective when the world has more than one process.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace xgrad::detail {

struct FitCollective {
  std::function<void(std::vector<double>&)> sum;  // element-wise sum over every process, in place
  std::function<void(const std::string&)> abort;   // ends the whole job with the message; never returns
  bool is_main = true;                             // the one process that prints (rank 0)
  int world_size = 1;
};

// Installs (or, with an empty `sum`, removes) the collective used by every later fit/evaluate.
void set_fit_collective(FitCollective collective);
const FitCollective* fit_collective();  // null on a single process

}  // namespace xgrad::detail
