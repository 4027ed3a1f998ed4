// Shared by the MPI tests: small models, the data split, and cross-rank comparisons.
#pragma once
#include <doctest/doctest.h>

#include <cstring>
#include <distributed/distributed.hpp>
#include <memory>
#include <vector>
#include <xgrad.hpp>

namespace xgrad::mpi_test {

inline int world() { return distributed::world_size(); }
inline int me() { return distributed::rank(); }

// Linear(in,hidden)-Tanh-Linear(hidden,3): small by default, every parameter used.
inline std::shared_ptr<nn::Sequential> small_mlp(Dtype dtype, std::size_t in = 5, std::size_t hidden = 7) {
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(in, hidden, true, dtype),
                                          std::make_shared<nn::Tanh>(),
                                          std::make_shared<nn::Linear>(hidden, 3, true, dtype));
}

// A copy of `model`'s architecture with its current values (the single-process reference).
inline std::shared_ptr<nn::Sequential> clone_mlp(const nn::Module& model, Dtype dtype, std::size_t in = 5,
                                                 std::size_t hidden = 7) {
  auto copy = small_mlp(dtype, in, hidden);
  copy->load_state_dict(model.state_dict());
  return copy;
}

// The same global batch on every rank (seeded), and this rank's contiguous share of its rows.
struct GlobalBatch {
  Tensor x, y;
};
inline GlobalBatch global_batch(std::uint64_t seed, std::size_t rows, Dtype dtype, std::size_t in = 5) {
  manual_seed(seed);
  return {randn({rows, in}, dtype), randn({rows, 3}, dtype)};
}
inline Tensor my_rows(const Tensor& t, std::size_t per_rank) {
  const auto first = static_cast<std::int64_t>(per_rank) * me();
  return t.slice(0, first, first + static_cast<std::int64_t>(per_rank)).clone();
}

// Every element of `got` within rtol/atol of `want` (rtol only when atol == 0).
inline void check_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  REQUIRE(got.shape() == want.shape());
  const xt::xarray<double> a = got.detach().to(kFloat64).data<double>();
  const xt::xarray<double> b = want.detach().to(kFloat64).data<double>();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]) - (atol + rtol * std::abs(b.data()[i])));
  CHECK(worst <= 0);
}

// True when `t` holds the same bytes on every rank.
inline bool bitwise_equal_across_ranks(const Tensor& t) {
  const std::vector<Tensor> all = distributed::all_gather(t.detach());
  const std::size_t bytes = t.numel() * itemsize(t.dtype());
  auto ptr = [](const Tensor& u) -> const void* {
    return u.dtype() == kFloat32 ? static_cast<const void*>(u.data<float>().data())
                                 : static_cast<const void*>(u.data<double>().data());
  };
  for (const Tensor& other : all)
    if (std::memcmp(ptr(other), ptr(t), bytes) != 0) return false;
  return true;
}

}  // namespace xgrad::mpi_test
