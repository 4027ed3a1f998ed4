// The one random generator behind every draw (rand, randn, init, dropout, shuffling), seeded by
// manual_seed and safe to use from several threads.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace xgrad::detail {

// Runs fn with exclusive access to the global generator.
void with_generator(const std::function<void(std::mt19937_64&)>& fn);
void fill_uniform(double* out, std::size_t n, double lo, double hi);
void fill_normal(double* out, std::size_t n, double mean, double stddev);
std::uint64_t random_u64();
// Fisher–Yates with its own generator seeded by `seed`: reproducible shuffles.
void shuffle_indices(std::vector<std::size_t>& idx, std::uint64_t seed);

}  // namespace xgrad::detail
