// nn::Embedding: a lookup table of num_embeddings vectors of embedding_dim, weight ~ N(0, 1) as in
// PyTorch (the padding_idx row zeroed, and it receives no gradient).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "functional.hpp"
#include "module.hpp"

namespace xgrad::nn {

struct EmbeddingOptions {
  std::optional<std::int64_t> padding_idx = std::nullopt;
};

class Embedding : public Module {
 public:
  Embedding(std::size_t num_embeddings, std::size_t embedding_dim, EmbeddingOptions options = {});
  // indices: any shape, integral values in a float tensor; output indices.shape ++ [embedding_dim].
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;
  void reset_parameters();

  std::size_t num_embeddings, embedding_dim;
  EmbeddingOptions options;
  Tensor weight;  // (num_embeddings, embedding_dim)
};

}  // namespace xgrad::nn
