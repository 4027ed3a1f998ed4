#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

#include <xgrad.hpp>
#include "data/data.hpp"

using namespace xgrad;

namespace {

// n samples: input row i = [2i, 2i + 1], target i = 100 + i, so a batch tells which samples it holds
// and whether inputs and targets stayed paired.
data::TensorDataset numbered_dataset(std::size_t n, Dtype dtype = kFloat32) {
  xt::xarray<double> x = xt::xarray<double>::from_shape({n, 2});
  xt::xarray<double> y = xt::xarray<double>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) {
    x(i, 0) = 2.0 * double(i);
    x(i, 1) = 2.0 * double(i) + 1;
    y(i) = 100.0 + double(i);
  }
  return data::TensorDataset(tensor(x).to(dtype), tensor(y).to(dtype));
}

// The sample indices of a batch, read from its targets, after checking each input row matches.
std::vector<std::size_t> sample_ids(const data::Batch& b) {
  const auto& x = b.input.data<float>();
  const auto& y = b.target.data<float>();
  std::vector<std::size_t> ids;
  for (std::size_t r = 0; r < y.size(); ++r) {
    const float id = y(r) - 100.f;
    CHECK(x(r, 0) == 2 * id);
    CHECK(x(r, 1) == 2 * id + 1);
    ids.push_back(static_cast<std::size_t>(id));
  }
  return ids;
}

std::vector<std::size_t> epoch_order(data::DataLoader& loader) {
  std::vector<std::size_t> order;
  for (auto& batch : loader) {
    auto ids = sample_ids(batch);
    order.insert(order.end(), ids.begin(), ids.end());
  }
  return order;
}

}  // namespace

TEST_CASE("data: TensorDataset size, get and length mismatch") {
  data::TensorDataset ds = numbered_dataset(5);
  CHECK(ds.size() == 5);
  data::Batch s = ds.get(3);
  // Row 3 of the inputs is [6, 7] and target 103, without the sample dimension.
  CHECK(s.input.shape() == Shape{2});
  CHECK(s.input.data<float>()(0) == 6.f);
  CHECK(s.input.data<float>()(1) == 7.f);
  CHECK(s.target.dim() == 0);
  CHECK(s.target.item() == 103.0);
  CHECK_THROWS_WITH_AS(ds.get(5), doctest::Contains("index 5"), Error);

  CHECK_THROWS_WITH_AS(data::TensorDataset(zeros({5, 3}), zeros({4})),
                       doctest::Contains("inputs have 5 samples but targets have 4"), Error);
  CHECK_THROWS_WITH_AS(data::TensorDataset(tensor(1.0), zeros({1})), doctest::Contains("first (sample) dimension"),
                       Error);
}

TEST_CASE("data: DataLoader batches in order, with a partial last batch") {
  data::DataLoader loader(numbered_dataset(5), {.batch_size = 2});
  // ceil(5 / 2) = 3 batches: samples {0, 1}, {2, 3}, {4}.
  CHECK(loader.size() == 3);
  std::vector<std::vector<std::size_t>> seen;
  for (auto& [x, y] : loader) {
    CHECK(x.dim() == 2);
    CHECK(x.shape()[1] == 2);
    CHECK(x.shape()[0] == y.shape()[0]);
    CHECK_FALSE(x.requires_grad());
    seen.push_back(sample_ids(data::Batch{x, y}));
  }
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == std::vector<std::size_t>{0, 1});
  CHECK(seen[1] == std::vector<std::size_t>{2, 3});
  CHECK(seen[2] == std::vector<std::size_t>{4});

  // Values by hand for the first batch: rows [0, 1] and [2, 3], targets 100 and 101.
  data::Batch first = loader.batch(0);
  CHECK(first.input.data<float>() == xt::xarray<float>{{0, 1}, {2, 3}});
  CHECK(first.target.data<float>() == xt::xarray<float>{100, 101});
}

TEST_CASE("data: DataLoader drop_last, exact division and batch_size 0") {
  data::DataLoader dropping(numbered_dataset(5), {.batch_size = 2, .drop_last = true});
  CHECK(dropping.size() == 2);  // floor(5 / 2)
  CHECK(epoch_order(dropping) == std::vector<std::size_t>{0, 1, 2, 3});

  data::DataLoader exact(numbered_dataset(6), {.batch_size = 3, .drop_last = true});
  CHECK(exact.size() == 2);
  CHECK(epoch_order(exact) == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});

  data::DataLoader whole(numbered_dataset(4), {.batch_size = 10});
  CHECK(whole.size() == 1);
  CHECK(whole.batch(0).input.shape() == Shape{4, 2});

  data::DataLoader none(numbered_dataset(4), {.batch_size = 10, .drop_last = true});
  CHECK(none.size() == 0);
  CHECK(epoch_order(none).empty());

  CHECK_THROWS_WITH_AS(data::DataLoader(numbered_dataset(4), {.batch_size = 0}), doctest::Contains("batch_size"),
                       Error);
  CHECK_THROWS_WITH_AS(whole.batch(1), doctest::Contains("batch 1 out of range"), Error);
}

TEST_CASE("data: DataLoader keeps dtype and trailing dimensions") {
  // 3 samples of 2×2 in float64, targets of shape {3, 1}.
  Tensor x = reshape(arange(12, kFloat64), {3, 2, 2});
  Tensor y = reshape(arange(3, kFloat64), {3, 1});
  data::DataLoader loader(data::TensorDataset(x, y), {.batch_size = 2, .shuffle = true, .seed = 7});
  std::size_t seen = 0;
  for (auto& [bx, by] : loader) {
    CHECK(bx.dtype() == kFloat64);
    CHECK(bx.shape()[1] == 2);
    CHECK(bx.shape()[2] == 2);
    CHECK(by.shape()[1] == 1);
    // Sample k's block is 4k, 4k+1, 4k+2, 4k+3 and its target is k.
    for (std::size_t r = 0; r < by.shape()[0]; ++r) {
      const double k = by.data<double>()(r, 0);
      for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < 2; ++j) CHECK(bx.data<double>()(r, i, j) == 4 * k + 2 * double(i) + double(j));
      ++seen;
    }
  }
  CHECK(seen == 3);
}

TEST_CASE("data: DataLoader shuffle covers every sample once, reproducibly, differently per epoch and seed") {
  const std::size_t n = 23;
  data::DataLoader a(numbered_dataset(n), {.batch_size = 5, .shuffle = true, .seed = 42});
  data::DataLoader b(numbered_dataset(n), {.batch_size = 5, .shuffle = true, .seed = 42});
  data::DataLoader c(numbered_dataset(n), {.batch_size = 5, .shuffle = true, .seed = 43});

  std::vector<std::size_t> identity(n);
  for (std::size_t i = 0; i < n; ++i) identity[i] = i;

  const auto a0 = epoch_order(a), a1 = epoch_order(a), a2 = epoch_order(a);
  const auto b0 = epoch_order(b), b1 = epoch_order(b);
  const auto c0 = epoch_order(c);
  for (const auto* order : {&a0, &a1, &a2, &b0, &c0}) {
    auto sorted = *order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == identity);  // every index exactly once per epoch
  }
  // 23! orders: two independent draws coincide with probability ~4e-23, so equality means a bug.
  CHECK(a0 != identity);
  CHECK(a0 == b0);  // same seed, same epoch: same order
  CHECK(a1 == b1);
  CHECK(a0 != a1);  // reshuffled every epoch
  CHECK(a1 != a2);
  CHECK(a0 != c0);  // another seed, another order
  CHECK(a.epoch() == 3);

  // Epoch k's order depends on (seed, k) only: replaying epoch 1 gives the same order.
  a.set_epoch(1);
  CHECK(epoch_order(a) == a1);
  CHECK(a.order_for_epoch(2) == a2);

  // With drop_last a shuffled epoch yields floor(23 / 5) * 5 = 20 distinct samples.
  data::DataLoader d(numbered_dataset(n), {.batch_size = 5, .shuffle = true, .drop_last = true, .seed = 1});
  const auto d0 = epoch_order(d);
  CHECK(d0.size() == 20);
  CHECK(std::set<std::size_t>(d0.begin(), d0.end()).size() == 20);
}
