#include "dataloader.hpp"

#include <numeric>

#include "../autograd/detail/random.hpp"
#include "rows.hpp"

namespace xgrad::data {
namespace {

// splitmix64: turns (seed, epoch) into a well-mixed generator seed, so neighbouring epochs and
// neighbouring seeds give unrelated orders.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

DataLoader::DataLoader(TensorDataset dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  if (options_.batch_size == 0) xgrad::detail::fail("DataLoader: batch_size must be at least 1, got 0");
  if (options_.num_replicas == 0) xgrad::detail::fail("DataLoader: num_replicas must be at least 1, got 0");
  if (options_.rank >= options_.num_replicas)
    xgrad::detail::fail("DataLoader: rank ", options_.rank, " out of range for num_replicas ", options_.num_replicas);
  // batch() may be called before the first begin(): it then sees epoch 0's order.
  if (uses_order()) order_ = order_for_epoch(0);
}

bool DataLoader::uses_order() const noexcept { return options_.shuffle || options_.num_replicas > 1; }

std::size_t DataLoader::num_samples() const noexcept {
  const std::size_t n = dataset_.size();
  const std::size_t r = options_.num_replicas;
  if (r == 1) return n;
  return options_.drop_last ? n / r : n / r + (n % r != 0);
}

std::size_t DataLoader::size() const noexcept {
  const std::size_t n = num_samples();
  const std::size_t b = options_.batch_size;
  return options_.drop_last ? n / b : n / b + (n % b != 0);  // not (n + b - 1) / b: overflows for a huge b
}

std::vector<std::size_t> DataLoader::order_for_epoch(std::uint64_t k) const {
  std::vector<std::size_t> order(dataset_.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (options_.shuffle) xgrad::detail::shuffle_indices(order, mix(mix(options_.seed) ^ k));
  const std::size_t replicas = options_.num_replicas;
  if (replicas == 1 || order.empty()) return order;
  // DistributedSampler: pad by wrapping (or trim) to num_samples() * replicas, then take every
  // replicas-th position starting at rank.
  const std::size_t per_rank = num_samples();
  std::vector<std::size_t> shard(per_rank);
  for (std::size_t j = 0; j < per_rank; ++j) shard[j] = order[(options_.rank + j * replicas) % order.size()];
  return shard;
}

DataLoader::Iterator DataLoader::begin() { return begin_at(0); }

DataLoader::Iterator DataLoader::begin_at(std::size_t first) {
  if (first > size())
    xgrad::detail::fail("DataLoader::begin_at: batch ", first, " out of range for ", size(), " batches");
  if (uses_order()) order_ = order_for_epoch(epoch_);
  ++epoch_;
  return Iterator(this, first);
}

DataLoader::Iterator DataLoader::end() { return Iterator(nullptr, size()); }

Batch DataLoader::batch(std::size_t b) const {
  if (b >= size()) xgrad::detail::fail("DataLoader::batch: batch ", b, " out of range for ", size(), " batches");
  const std::size_t first = b * options_.batch_size;
  const std::size_t last = std::min(first + options_.batch_size, num_samples());
  if (!uses_order())
    return Batch{detail::copy_row_range(dataset_.inputs(), first, last),
                 detail::copy_row_range(dataset_.targets(), first, last)};
  const std::size_t* idx = order_.data() + first;
  return Batch{detail::gather_rows(dataset_.inputs(), idx, last - first),
               detail::gather_rows(dataset_.targets(), idx, last - first)};
}

DataLoader::Iterator::Iterator(const DataLoader* loader, std::size_t index) : loader_(loader), index_(index) {
  if (loader_ && index_ < loader_->size()) current_ = loader_->batch(index_);
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ++index_;
  current_ = (index_ < loader_->size()) ? loader_->batch(index_) : Batch{};
  return *this;
}

}  // namespace xgrad::data
