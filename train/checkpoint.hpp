// fit's checkpoints: one self-describing safetensors file per checkpoint,
//   <checkpoint_dir>/ckpt-<global step, 12 digits>.safetensors
// holding everything a run needs to continue bit for bit:
//   model.<name>            the model's state_dict (parameters and buffers, in their dtypes)
//   optimizer.<name>        the optimizer's state_dict
//   scheduler.<name>        the scheduler's state_dict (when FitOptions::scheduler is set)
//   callbacks.<i>.<name>    callback i's state_dict
//   fit.history             History so far, epochs × 6 float64 (see state_io.hpp)
//   fit.running             the running sums of the epoch in progress: loss·samples, samples,
//                           correct, accuracy-applies (float64)
// and in the header's "__metadata__": "format" = "xgrad.checkpoint", "version" = "1", "state" = a
// JSON object (global step, epochs done, batches done in the current epoch, the DataLoaders' epoch
// counters, seed, shuffle, batch and sample counts, the state of the global random generator,
// optimizer name, scheduler presence, callback count, stop request) and "crc32" = the CRC-32 of
// the state text and of every tensor's name, dtype, shape and bytes, so that a flipped bit
// anywhere that matters is detected.
//
// Files are written to "<file>.tmp", fsynced, renamed and the directory fsynced; the newest two
// are kept.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "../autograd/safetensors.hpp"
#include "fit.hpp"

namespace xgrad::detail {

struct CheckpointContent {
  std::int64_t global_step = 0;   // optimizer steps since training began
  std::int64_t epochs_done = 0;   // completed epochs (== history.size())
  std::int64_t position = 0;      // batches done in epoch epochs_done + 1
  std::uint64_t loader_epoch = 0;      // DataLoader::set_epoch value before resuming
  std::uint64_t val_loader_epoch = 0;  // the validation loader's, when there is one
  std::uint64_t loader_seed = 0;
  bool loader_shuffle = false;
  std::uint64_t loader_batches = 0;
  std::uint64_t loader_samples = 0;
  bool stopped = false;  // a callback asked fit to stop
  std::string rng;       // the global generator's state, std::mt19937_64's text form
  std::string optimizer_name;
  bool has_scheduler = false;
  NamedTensors model, optimizer, scheduler;
  std::vector<NamedTensors> callbacks;
  History history;
  std::array<double, 4> running{0, 0, 0, 1};
};

// "ckpt-000000000042.safetensors".
std::string checkpoint_file_name(std::int64_t global_step);
// Checkpoint files in `dir`, oldest first (by step); the directory may be missing.
std::vector<std::string> list_checkpoints(const std::string& dir);
// Writes `content` crash-safely to `path` (see above); xgrad::Error naming the path on failure.
void write_checkpoint(const std::string& path, const CheckpointContent& content);
// Reads and validates a checkpoint file completely (format, checksum, every field's type and
// range, consistency); an xgrad::Error names the file and the field. verify_checksum = false is for
// the fuzz target only, to reach the field checks behind the checksum.
CheckpointContent read_checkpoint(const std::string& path, bool verify_checksum = true);

// The global random generator's state as text, and back (throws on malformed text).
std::string random_state();
void set_random_state(const std::string& where, const std::string& text);

}  // namespace xgrad::detail
