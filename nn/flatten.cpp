#include "flatten.hpp"

#include "../autograd/detail/op_support.hpp"
#include "../autograd/ops.hpp"

namespace xgrad::nn {

Tensor Flatten::forward(const Tensor& input) { return flatten(input, start_dim, end_dim); }

std::string Flatten::extra_repr() const { return detail::concat("start_dim=", start_dim, ", end_dim=", end_dim); }

Tensor Unflatten::forward(const Tensor& input) {
  if (!input.defined()) detail::fail("Unflatten: the input is undefined");
  const Shape s = input.shape();
  const auto rank = static_cast<int>(s.size());
  if (dim < -rank || dim >= rank || rank == 0)
    detail::fail("Unflatten: dim ", dim, " is out of range for input of shape ", shape_str(s));
  const auto d = static_cast<std::size_t>(dim < 0 ? dim + rank : dim);
  std::int64_t known = 1;
  int unknown = 0;
  for (std::int64_t v : sizes) {
    if (v == -1) ++unknown;
    else if (v < 0) detail::fail("Unflatten: invalid size ", v);
    else known *= v;
  }
  const bool fits = unknown == 0 ? known == static_cast<std::int64_t>(s[d])
                                 : unknown == 1 && known > 0 && static_cast<std::int64_t>(s[d]) % known == 0;
  if (sizes.empty() || !fits)
    detail::fail("Unflatten: sizes ", detail::concat_dims(sizes), " do not multiply to the size ", s[d], " of dim ", dim,
                 " of input shape ", shape_str(s));
  std::vector<std::int64_t> out(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(d));
  out.insert(out.end(), sizes.begin(), sizes.end());
  out.insert(out.end(), s.begin() + static_cast<std::ptrdiff_t>(d) + 1, s.end());
  return reshape(input, out);
}

std::string Unflatten::extra_repr() const { return detail::concat("dim=", dim, ", unflattened_size=", detail::concat_dims(sizes)); }

}  // namespace xgrad::nn
