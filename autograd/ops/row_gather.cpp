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

// Under a batched level a tangent holds `batch` copies of the primal's rows, entry b's rows starting at
// row b·rows: the index of one entry repeated for each, shifted by b·rows (-1 stays -1).
RowIndex batched_index(const RowIndex& index, std::int64_t batch, std::size_t rows) {
  auto out = std::make_shared<std::vector<std::int64_t>>();
  out->reserve(index->size() * static_cast<std::size_t>(batch));
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t shift = b * static_cast<std::int64_t>(rows);
    for (const std::int64_t r : *index) out->push_back(r < 0 ? -1 : r + shift);
  }
  return out;
}

// The number of rows of length row_len in a tensor of `shape` (0 for empty rows).
std::size_t rows_in(const Shape& shape, std::size_t row_len) {
  if (row_len == 0) return 0;
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n / row_len;
}

Shape batched_shape(const Shape& s) {
  const std::vector<std::int64_t> t = tangent_shape(s);
  return Shape(t.begin(), t.end());
}

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
  // JVP: the same rows of the tangent (linear in src); a batch of tangents in one gather.
  record_jvp("gather_rows", out, {&src}, [&](Tangents t) {
    const std::int64_t batch = tangent_batch();
    if (batch == 0) return gather_rows(t[0], forward_index, backward_index, row_len, out_shape);
    const std::size_t rows = rows_in(src.shape(), row_len);
    const RowIndex fwd = batched_index(forward_index, batch, rows);
    const RowIndex bwd = backward_index == forward_index ? fwd : batched_index(backward_index, batch, rows);
    return gather_rows(t[0], fwd, bwd, row_len, batched_shape(out_shape));
  }, JvpBatching::Aware);
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
  record_jvp("scatter_rows", out, {&g}, [&](Tangents t) {
    const std::int64_t batch = tangent_batch();
    if (batch == 0) return scatter_rows(t[0], index, row_len, out_shape);
    return scatter_rows(t[0], batched_index(index, batch, rows_in(out_shape, row_len)), row_len, batched_shape(out_shape));
  }, JvpBatching::Aware);
  return out;
}

}  // namespace xgrad::detail
