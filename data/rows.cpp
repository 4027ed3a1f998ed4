#include "rows.hpp"

#include <cstring>

namespace xgrad::data::detail {
namespace {

// Raw bytes of a tensor's value; the storage is an owning row-major xarray, hence contiguous.
const unsigned char* bytes_of(const Tensor& t) {
  if (t.dtype() == kFloat32) return reinterpret_cast<const unsigned char*>(t.data<float>().data());
  return reinterpret_cast<const unsigned char*>(t.data<double>().data());
}
unsigned char* bytes_of(Tensor& t) {
  if (t.dtype() == kFloat32) return reinterpret_cast<unsigned char*>(t.data<float>().data());
  return reinterpret_cast<unsigned char*>(t.data<double>().data());
}

Shape batch_shape(const Tensor& source, std::size_t count) {
  Shape shape = source.shape();
  shape[0] = count;
  return shape;
}

std::size_t row_bytes(const Tensor& source) {
  const Shape shape = source.shape();
  std::size_t n = itemsize(source.dtype());
  for (std::size_t d = 1; d < shape.size(); ++d) n *= shape[d];
  return n;
}

}  // namespace

Tensor gather_rows(const Tensor& source, const std::size_t* idx, std::size_t count) {
  Tensor out = empty(batch_shape(source, count), source.dtype());
  const std::size_t stride = row_bytes(source);
  if (stride == 0) return out;
  const unsigned char* src = bytes_of(source);
  unsigned char* dst = bytes_of(out);
  // Copy maximal runs of consecutive indices in one memcpy each: an unshuffled batch is one run.
  std::size_t r = 0;
  while (r < count) {
    std::size_t run = 1;
    while (r + run < count && idx[r + run] == idx[r] + run) ++run;
    std::memcpy(dst + r * stride, src + idx[r] * stride, run * stride);
    r += run;
  }
  return out;
}

Tensor copy_row_range(const Tensor& source, std::size_t begin, std::size_t end) {
  Tensor out = empty(batch_shape(source, end - begin), source.dtype());
  const std::size_t stride = row_bytes(source);
  if (stride != 0 && end > begin) std::memcpy(bytes_of(out), bytes_of(source) + begin * stride, (end - begin) * stride);
  return out;
}

}  // namespace xgrad::data::detail
