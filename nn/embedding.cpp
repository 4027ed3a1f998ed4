#include "embedding.hpp"

#include "../autograd/detail/op_support.hpp"
#include "init.hpp"

namespace xgrad::nn {

Embedding::Embedding(std::size_t n, std::size_t dim, EmbeddingOptions o) : num_embeddings(n), embedding_dim(dim), options(o) {
  if (n == 0 || dim == 0)
    detail::fail("Embedding(", n, ", ", dim, "): num_embeddings and embedding_dim must be positive");
  if (o.padding_idx) {
    const auto rows = static_cast<std::int64_t>(n);
    if (*o.padding_idx < -rows || *o.padding_idx >= rows)
      detail::fail("Embedding(", n, ", ", dim, "): padding_idx ", *o.padding_idx, " is out of range");
    if (*o.padding_idx < 0) options.padding_idx = *o.padding_idx + rows;
  }
  weight = register_parameter("weight", empty({n, dim}));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (options.padding_idx) {
    detail::dispatch(weight.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* row = weight.data<T>().data() + static_cast<std::size_t>(*options.padding_idx) * embedding_dim;
      std::fill(row, row + embedding_dim, T(0));
    });
  }
}

Tensor Embedding::forward(const Tensor& indices) { return functional::embedding(indices, weight, options.padding_idx); }

std::string Embedding::extra_repr() const {
  std::string s = detail::concat(num_embeddings, ", ", embedding_dim);
  if (options.padding_idx) s += detail::concat(", padding_idx=", *options.padding_idx);
  return s;
}

}  // namespace xgrad::nn
