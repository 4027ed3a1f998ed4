// embedding: rows of the weight picked by index. Forward is a row gather; backward scatters the
// gradient's rows back (repeated indices add up), skipping padding_idx, whose row gets no gradient.
// Forward mode: the weight's tangent gathered by the same index (gather_rows' JVP rule, in
// row_gather.cpp), the padding row's included, as PyTorch's embedding JVP does (padding_idx only stops
// the backward); the indices are not differentiable (not an input of the gather).
#include <cmath>

#include "../detail/op_support.hpp"
#include "../detail/row_gather.hpp"
#include "../layer_ops.hpp"

namespace xgrad {

using namespace detail;

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx) {
  const char* op = "embedding";
  checked(indices, op, "indices");
  checked(weight, op, "weight");
  const Shape ws = weight.shape();
  if (ws.size() != 2) fail(op, ": expected a 2-D weight (num_embeddings, embedding_dim), got shape ", shape_str(ws));
  const auto rows = static_cast<std::int64_t>(ws[0]);
  std::optional<std::int64_t> pad = padding_idx;
  if (pad) {
    if (*pad < -rows || *pad >= rows)
      fail(op, ": padding_idx ", *pad, " is out of range for ", rows, " embeddings");
    if (*pad < 0) *pad += rows;
  }
  auto forward_index = std::make_shared<std::vector<std::int64_t>>(indices.numel());
  auto backward_index = std::make_shared<std::vector<std::int64_t>>(indices.numel());
  dispatch(indices.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = arr<T>(indices).data();
    for (std::size_t i = 0; i < forward_index->size(); ++i) {
      const double v = static_cast<double>(p[i]);
      if (!(v == std::floor(v)))  // NaN and ±inf too
        fail(op, ": index ", v, " at flat position ", i, " is not an integer; indices must hold integral values");
      if (v < 0 || v >= static_cast<double>(rows))
        fail(op, ": index ", static_cast<std::int64_t>(v), " at flat position ", i, " is out of range for ", rows,
             " embeddings (expected 0 <= index < ", rows, ")");
      const auto r = static_cast<std::int64_t>(v);
      (*forward_index)[i] = r;
      (*backward_index)[i] = (pad && r == *pad) ? -1 : r;
    }
  });
  Shape out_shape = indices.shape();
  out_shape.push_back(ws[1]);
  return gather_rows(weight, forward_index, backward_index, ws[1], out_shape);
}

}  // namespace xgrad
