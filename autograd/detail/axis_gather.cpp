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

// Under a batched level the batch dim of a tangent is one more outer dim: the same index for each entry.
IndexList repeated(const IndexList& index, std::int64_t batch) {
  auto out = std::make_shared<std::vector<std::size_t>>();
  out->reserve(index->size() * static_cast<std::size_t>(batch));
  for (std::int64_t b = 0; b < batch; ++b) out->insert(out->end(), index->begin(), index->end());
  return out;
}

Shape batched_shape(const Shape& s) {
  const std::vector<std::int64_t> t = tangent_shape(s);
  return Shape(t.begin(), t.end());
}

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
  // JVP: the same elements of the tangent; a batch of tangents in one gather.
  record_jvp("take_at", out, {&x}, [&](Tangents t) {
    const std::int64_t batch = tangent_batch();
    if (batch == 0) return take_at(t[0], axis, index, out_shape);
    if (in.empty()) return reshape(t[0], tangent_shape(out_shape));  // a 0-d x: its one element
    return take_at(t[0], axis + 1, repeated(index, batch), batched_shape(out_shape));
  }, JvpBatching::Aware);
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
  record_jvp("place_at", out, {&g}, [&](Tangents t) {
    const std::int64_t batch = tangent_batch();
    if (batch == 0) return place_at(t[0], axis, index, in_shape);
    if (in_shape.empty()) return reshape(t[0], tangent_shape(in_shape));  // a 0-d result: g's one element
    return place_at(t[0], axis + 1, repeated(index, batch), batched_shape(in_shape));
  }, JvpBatching::Aware);
  return out;
}

}  // namespace xgrad::detail
