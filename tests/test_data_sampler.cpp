// DataLoaderOptions{.num_replicas, .rank}: DistributedSampler's sharding, checked on one process by
// building every rank's loader.
#include <algorithm>
#include <set>
#include <vector>

#include "helpers.hpp"

using namespace xgrad;

namespace {
// The sample ids (values of a one-column input 0..n-1) rank r sees in one epoch.
std::vector<int> ids_of(data::DataLoader& loader) {
  std::vector<int> ids;
  for (auto& [x, y] : loader)
    for (double v : x.to(kFloat64).data<double>()) ids.push_back(int(v));
  return ids;
}
data::TensorDataset numbered(std::size_t n) {
  return data::TensorDataset(arange(std::int64_t(n), kFloat64).reshape({std::int64_t(n), 1}), zeros({n}, kFloat64));
}
}  // namespace

TEST_CASE("sampler: shards are disjoint, cover the data, and hold ceil(n / N) samples each") {
  for (bool shuffle : {false, true}) {
    const std::size_t n = 12, replicas = 4;
    std::multiset<int> all;
    for (std::size_t r = 0; r < replicas; ++r) {
      data::DataLoader loader(numbered(n), {.batch_size = 2, .shuffle = shuffle, .seed = 3, .num_replicas = replicas, .rank = r});
      CHECK(loader.num_samples() == 3);
      CHECK(loader.size() == 2);  // batches of 2, 1
      for (int id : ids_of(loader)) all.insert(id);
    }
    CHECK(all.size() == n);
    CHECK(std::set<int>(all.begin(), all.end()).size() == n);  // each sample exactly once
  }
}

TEST_CASE("sampler: padding wraps around, drop_last trims") {
  // n = 10 over 4 ranks: ceil = 3 per rank, 12 positions: the first 2 samples of the order come twice.
  const std::size_t n = 10, replicas = 4;
  std::multiset<int> all;
  for (std::size_t r = 0; r < replicas; ++r) {
    data::DataLoader loader(numbered(n), {.batch_size = 5, .num_replicas = replicas, .rank = r});
    const std::vector<int> ids = ids_of(loader);
    CHECK(ids.size() == 3);
    // Without shuffle the order is 0..9, 0, 1: rank r takes positions r, r + 4, r + 8.
    CHECK(ids == std::vector<int>{int(r), int(r + 4), int((r + 8) % n)});
    for (int id : ids) all.insert(id);
  }
  CHECK(all.count(0) == 2);
  CHECK(all.count(1) == 2);
  CHECK(all.count(9) == 1);
  // drop_last: floor(10 / 4) = 2 per rank, samples 8 and 9 are left out, nothing repeats.
  std::multiset<int> kept;
  for (std::size_t r = 0; r < replicas; ++r) {
    data::DataLoader loader(numbered(n), {.batch_size = 1, .drop_last = true, .num_replicas = replicas, .rank = r});
    CHECK(loader.num_samples() == 2);
    for (int id : ids_of(loader)) kept.insert(id);
  }
  CHECK(kept == std::multiset<int>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("sampler: every rank follows the same permutation, reshuffled each epoch") {
  const std::size_t n = 40, replicas = 2;
  data::DataLoader r0(numbered(n), {.batch_size = 40, .shuffle = true, .seed = 5, .num_replicas = replicas, .rank = 0});
  data::DataLoader r1(numbered(n), {.batch_size = 40, .shuffle = true, .seed = 5, .num_replicas = replicas, .rank = 1});
  data::DataLoader whole(numbered(n), {.batch_size = 40, .shuffle = true, .seed = 5});
  std::vector<std::vector<int>> epochs;
  for (int epoch = 0; epoch < 2; ++epoch) {
    const std::vector<int> a = ids_of(r0), b = ids_of(r1), w = ids_of(whole);
    // Rank r holds positions r, r + 2, ... of the single-process order of that epoch.
    for (std::size_t j = 0; j < a.size(); ++j) {
      CHECK(a[j] == w[2 * j]);
      CHECK(b[j] == w[2 * j + 1]);
    }
    epochs.push_back(a);
  }
  CHECK(epochs[0] != epochs[1]);
}

TEST_CASE("sampler: bad num_replicas or rank are errors") {
  CHECK_THROWS_WITH_AS(data::DataLoader(numbered(4), {.num_replicas = 0}), doctest::Contains("num_replicas"), Error);
  CHECK_THROWS_WITH_AS(data::DataLoader(numbered(4), {.num_replicas = 2, .rank = 2}), doctest::Contains("rank 2"), Error);
}
