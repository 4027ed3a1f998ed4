// Internal to train/: reading callback and fit state out of named tensors, History as a tensor, and
// crash-safe file writes (temporary file, fsync, rename, fsync of the directory) with the fault
// injection hooks the checkpoint tests use.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/safetensors.hpp"
#include "fit.hpp"

namespace xgrad::detail {

// Looks entries up by name in a state dict and checks them; every message starts with `who` and
// names the entry. finish() rejects entries nobody asked for (those starting with `prefix` are
// collected by prefixed() instead).
class StateReader {
 public:
  StateReader(std::string who, const NamedTensors& state, std::string prefix = {});
  const Tensor& tensor(const std::string& name);
  double real(const std::string& name);  // one value
  std::int64_t integer(const std::string& name, std::int64_t lo, std::int64_t hi);
  // Entries named prefix + rest, as (rest, tensor), in order.
  NamedTensors prefixed() const;
  void finish() const;

 private:
  std::string who_, prefix_;
  const NamedTensors& state_;
  std::map<std::string, std::size_t> index_;
  std::vector<bool> used_;
};

// History as an n × 6 float64 tensor: epoch, loss, accuracy, val_loss, val_accuracy, seconds.
Tensor history_to_tensor(const History& history);
// The inverse; `where` starts the Error naming a malformed tensor.
History history_from_tensor(const std::string& where, const Tensor& t);

// Fault injection for crash and disk-full tests. pause_us: sleep that long after each chunk written
// to a temporary file (so a kill lands inside a write); fail_after_bytes >= 0: a write that would
// pass that many bytes of one file fails with ENOSPC. Initialised from the environment variables
// XGRAD_FAULT_WRITE_PAUSE_US and XGRAD_FAULT_WRITE_FAIL_AFTER_BYTES; tests may set them directly.
struct WriteFaults {
  unsigned pause_us = 0;
  std::int64_t fail_after_bytes = -1;
};
WriteFaults& write_faults();

// Writes the concatenation of `pieces` to `path` so that a crash at any instant leaves either the
// old file or the complete new one: a temporary sibling "<path>.tmp", fsync, rename, fsync of the
// directory. An error throws xgrad::Error starting with `who` and naming the path; the temporary
// file is removed and an existing `path` is untouched.
using Piece = std::pair<const void*, std::size_t>;
void write_file_atomically(const std::string& who, const std::string& path, const std::vector<Piece>& pieces);
inline void write_file_atomically(const std::string& who, const std::string& path, const std::string& text) {
  write_file_atomically(who, path, {Piece{text.data(), text.size()}});
}

}  // namespace xgrad::detail
