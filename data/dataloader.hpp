// data::DataLoader: mini-batches of a TensorDataset, iterable with range-for.
//
//   data::DataLoader loader(dataset, {.batch_size = 128, .shuffle = true, .seed = 42});
//   for (auto& [x, y] : loader) { ... }   // one epoch; the next loop is the next epoch
#pragma once
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

#include "dataset.hpp"

namespace xgrad::data {

struct DataLoaderOptions {
  std::size_t batch_size = 32;
  bool shuffle = false;
  bool drop_last = false;  // drop the last batch when it is smaller than batch_size
  std::uint64_t seed = 0;  // with shuffle: epoch k's order is a function of (seed, k) only
  // Sharding for data-parallel training, like PyTorch's DistributedSampler: the epoch's order (the
  // same on every rank: same seed) is padded by wrapping around to a multiple of num_replicas, or
  // trimmed to one with drop_last, and rank r takes positions r, r + num_replicas, ...: ceil(n / N)
  // samples per rank (floor with drop_last), disjoint between ranks apart from the padding.
  std::size_t num_replicas = 1;
  std::size_t rank = 0;
};

class DataLoader {
 public:
  class Iterator;
  using iterator = Iterator;

  explicit DataLoader(TensorDataset dataset, DataLoaderOptions options = {});

  // Starts a new epoch: with shuffle, draws that epoch's order. Each call advances the epoch.
  Iterator begin();
  Iterator end();
  // Starts a new epoch exactly like begin(), but at batch `first` (<= size()): resumes an epoch
  // part-way, e.g. from a checkpoint, without materialising the skipped batches.
  Iterator begin_at(std::size_t first);

  std::size_t size() const noexcept;  // batches per epoch
  std::size_t num_samples() const noexcept;  // samples per epoch: this rank's share of the dataset
  const TensorDataset& dataset() const noexcept { return dataset_; }
  const DataLoaderOptions& options() const noexcept { return options_; }
  // Epochs started so far (begin() calls). set_epoch(k) makes the next begin() start epoch k,
  // e.g. to resume a run with the same orders.
  std::uint64_t epoch() const noexcept { return epoch_; }
  void set_epoch(std::uint64_t epoch) noexcept { epoch_ = epoch; }

  // The sample order of epoch k (identity without shuffle); with num_replicas > 1, this rank's shard.
  std::vector<std::size_t> order_for_epoch(std::uint64_t k) const;
  // Batch number b of the current epoch's order.
  Batch batch(std::size_t b) const;

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;

    Iterator() = default;
    Batch& operator*() { return current_; }
    Batch* operator->() { return &current_; }
    Iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(const Iterator& other) const noexcept { return index_ == other.index_; }

   private:
    friend class DataLoader;
    Iterator(const DataLoader* loader, std::size_t index);
    const DataLoader* loader_ = nullptr;
    std::size_t index_ = 0;
    Batch current_;
  };

 private:
  bool uses_order() const noexcept;  // shuffled or sharded: batches gather rows through order_
  TensorDataset dataset_;
  DataLoaderOptions options_;
  std::vector<std::size_t> order_;  // the current epoch's order (empty without shuffle and sharding)
  std::uint64_t epoch_ = 0;
};

}  // namespace xgrad::data
