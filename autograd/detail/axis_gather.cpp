// take_at / place_at (axis_gather.hpp): the kernels and the two nodes that make each the other's
// backward.
#include "axis_gather.hpp"

#include "op_support.hpp"

namespace xgrad::detail {

using autograd::TensorList;

namespace {

struct TakeAtBackward : OpNode {
  TakeAtBackward() : OpNode("GatherBackward") {}
  std::size_t axis = 0;
  IndexList index;
  Shape input_shape;
  TensorList apply(TensorList&& g) override { return {place_at(g[0], axis, index, input_shape)}; }
};

struct PlaceAtBackward : OpNode {
  PlaceAtBackward() : OpNode("ScatterBackward") {}
  std::size_t axis = 0;
  IndexList index;
  Shape grad_shape;
  TensorList apply(TensorList&& g) override { return {take_at(g[0], axis, index, grad_shape)}; }
};

}  // namespace

Tensor take_at(const Tensor& x, std::size_t axis, const IndexList& index, const Shape& out_shape) {
  const Shape in = x.shape();
  const AxisSplit a = split_at(in, axis);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = arr<T>(x).data();
    Array<T> o = empty_array<T>(out_shape);
    T* po = o.data();
    const std::size_t* idx = index->data();
    for (std::size_t r = 0; r < a.outer; ++r) {
      const T* block = px + r * a.n * a.inner;
      for (std::size_t j = 0; j < a.inner; ++j) po[r * a.inner + j] = block[idx[r * a.inner + j] * a.inner + j];
    }
    return make_tensor(std::move(o));
  });
  if (auto node = record<TakeAtBackward>(out, {&x})) {
    node->axis = axis;
    node->index = index;
    node->input_shape = in;
  }
  // JVP: the same elements of the tangent. Batched tangents run entry by entry.
  record_jvp("take_at", out, {&x}, [&](Tangents t) { return take_at(t[0], axis, index, out_shape); });
  return out;
}

Tensor place_at(const Tensor& g, std::size_t axis, const IndexList& index, const Shape& in_shape) {
  const AxisSplit a = split_at(in_shape, axis);
  Tensor out = dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pg = arr<T>(g).data();
    Array<T> o = empty_array<T>(in_shape);
    std::fill(o.data(), o.data() + o.size(), T(0));
    T* po = o.data();
    const std::size_t* idx = index->data();
    for (std::size_t r = 0; r < a.outer; ++r) {
      T* block = po + r * a.n * a.inner;
      for (std::size_t j = 0; j < a.inner; ++j) block[idx[r * a.inner + j] * a.inner + j] = pg[r * a.inner + j];
    }
    return make_tensor(std::move(o));
  });
  if (auto node = record<PlaceAtBackward>(out, {&g})) {
    node->axis = axis;
    node->index = index;
    node->grad_shape = g.shape();
  }
  // JVP (forward over reverse through take_at's backward): the tangent placed the same way.
  record_jvp("place_at", out, {&g}, [&](Tangents t) { return place_at(t[0], axis, index, in_shape); });
  return out;
}

}  // namespace xgrad::detail
