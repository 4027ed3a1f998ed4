// gather_rows / scatter_rows (detail/row_gather.hpp): one pass each, adjoint to each other.
#include "../detail/row_gather.hpp"

#include "../detail/op_support.hpp"

namespace xgrad::detail {

using autograd::TensorList;

namespace {

struct GatherRowsBackward : OpNode {
  GatherRowsBackward(RowIndex i, std::size_t len, Shape s)
      : OpNode("GatherRowsBackward"), index(std::move(i)), row_len(len), src_shape(std::move(s)) {}
  RowIndex index;
  std::size_t row_len;
  Shape src_shape;
  TensorList apply(TensorList&& g) override { return {scatter_rows(g[0], index, row_len, src_shape)}; }
};

struct ScatterRowsBackward : OpNode {
  ScatterRowsBackward(RowIndex i, std::size_t len, Shape s)
      : OpNode("ScatterRowsBackward"), index(std::move(i)), row_len(len), g_shape(std::move(s)) {}
  RowIndex index;
  std::size_t row_len;
  Shape g_shape;
  TensorList apply(TensorList&& g) override { return {gather_rows(g[0], index, index, row_len, g_shape)}; }
};

}  // namespace

Tensor gather_rows(const Tensor& src, const RowIndex& forward_index, const RowIndex& backward_index,
                   std::size_t row_len, const Shape& out_shape) {
  Tensor out = dispatch(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(out_shape, "gather");
    const T* ps = arr<T>(src).data();
    T* po = o.data();
    for (const std::int64_t r : *forward_index) {
      if (r < 0)
        std::fill(po, po + row_len, T(0));
      else
        std::copy(ps + static_cast<std::size_t>(r) * row_len, ps + (static_cast<std::size_t>(r) + 1) * row_len, po);
      po += row_len;
    }
    return make_tensor(std::move(o));
  });
  record<GatherRowsBackward>(out, {&src}, backward_index, row_len, src.shape());
  // JVP: the same rows of the tangent (linear in src). Batched tangents run entry by entry.
  record_jvp("gather_rows", out, {&src}, [&](Tangents t) {
    return gather_rows(t[0], forward_index, backward_index, row_len, out_shape);
  });
  return out;
}

Tensor scatter_rows(const Tensor& g, const RowIndex& index, std::size_t row_len, const Shape& out_shape) {
  Tensor out = dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(out_shape, "scatter");
    std::fill(o.data(), o.data() + o.size(), T(0));
    const T* pg = arr<T>(g).data();
    T* po = o.data();
    for (const std::int64_t r : *index) {
      if (r >= 0) {
        T* dst = po + static_cast<std::size_t>(r) * row_len;
#pragma omp simd
        for (std::size_t j = 0; j < row_len; ++j) dst[j] += pg[j];
      }
      pg += row_len;
    }
    return make_tensor(std::move(o));
  });
  record<ScatterRowsBackward>(out, {&g}, index, row_len, g.shape());
  // JVP (forward over reverse through gather_rows' backward): the tangent scattered the same way.
  record_jvp("scatter_rows", out, {&g}, [&](Tangents t) { return scatter_rows(t[0], index, row_len, out_shape); });
  return out;
}

}  // namespace xgrad::detail
