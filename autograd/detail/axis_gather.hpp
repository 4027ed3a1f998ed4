// Gathering and scattering one element per (outer, inner) position along an axis: the gradient
// routing of max(dim)/min(dim), and of max-pooling (gather/scatter) next. Internal to autograd/.
//
// A pair of internal ops, each the adjoint of the other, so a backward built on them is itself
// differentiable to any order. With the input seen as (outer, n, inner) around `axis` (axis_split.hpp):
//   take_at(x, index):   y[o, j] = x[o, index[o, j], j]            (y has outer*inner elements)
//   place_at(g, index):  zeros of the input's shape, with g[o, j] written at [o, index[o, j], j]
// Neither checks its arguments: the calling op has (index values < n, outer*inner of them).
#pragma once
#include <cstddef>

#include "../tensor.hpp"
#include "axis_split.hpp"

namespace xgrad::detail {

// The gathered values, shaped `out_shape` (outer*inner elements); recorded as "GatherBackward".
Tensor take_at(const Tensor& x, std::size_t axis, const IndexList& index, const Shape& out_shape);
// A tensor of `in_shape` holding g at the indexed places and zeros elsewhere; recorded as
// "ScatterBackward".
Tensor place_at(const Tensor& g, std::size_t axis, const IndexList& index, const Shape& in_shape);

}  // namespace xgrad::detail
