// Seeing a tensor as (outer, n, inner) around one axis, for kernels that work along that axis
// (reductions, gathers and scatters): element (o, k, j) sits at o*n*inner + k*inner + j, so no inner
// loop recomputes a multi-index. A 0-d tensor is (1, 1, 1).
#pragma once
#include <memory>
#include <vector>

#include "../dtype.hpp"

namespace xgrad::detail {

struct AxisSplit {
  std::size_t outer = 1, n = 1, inner = 1;
};

inline AxisSplit split_at(const Shape& s, std::size_t axis) {
  AxisSplit a;
  if (s.empty()) return a;
  for (std::size_t i = 0; i < axis; ++i) a.outer *= s[i];
  a.n = s[axis];
  for (std::size_t i = axis + 1; i < s.size(); ++i) a.inner *= s[i];
  return a;
}

// Indices along an axis, shared (not copied) between a forward op and the nodes of its backward.
using IndexList = std::shared_ptr<const std::vector<std::size_t>>;

}  // namespace xgrad::detail
