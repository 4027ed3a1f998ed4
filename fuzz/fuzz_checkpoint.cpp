// fit's checkpoint reader (train/checkpoint.hpp) on arbitrary bytes. The first byte selects the
// mode: bit 0 set skips the CRC-32 check, so the fuzzer also reaches the field checks behind it.
// The rest is the file. A read either throws an xgrad::Error naming the checkpoint, or returns
// content whose parts are then loaded into the components of the seed corpus's run (Linear(2, 3),
// SGD with momentum, StepLR, EarlyStopping): each load succeeds or throws an xgrad::Error.
#include <memory>

#include <xgrad.hpp>

#include "fuzz_input.hpp"
#include "train/checkpoint.hpp"

namespace {

using namespace xgrad;

template <class F>
void expect_ok_or_error(F&& load, const char* name) {
  try {
    load();
  } catch (const Error& e) {
    xgrad_fuzz::expect_named(e.what(), name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static xgrad_fuzz::MemFile file;
  const bool verify = (data[0] & 1) == 0;
  const std::string& path = file.write(data + 1, size - 1);
  detail::CheckpointContent c;
  try {
    c = detail::read_checkpoint(path, verify);
  } catch (const Error& e) {
    xgrad_fuzz::expect_named(e.what(), "checkpoint '");
    return 0;
  }
  // Validated content: every documented invariant holds.
  if (std::int64_t(c.history.size()) != c.epochs_done) std::abort();
  if (c.position > 0 && std::uint64_t(c.position) >= c.loader_batches) std::abort();

  nn::Linear model(2, 3);
  optim::SGD sgd(model.parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::StepLR step(sgd, 2, 0.5);
  EarlyStopping stop({.patience = 2, .restore_best_weights = true});
  stop.set_model(&model);
  expect_ok_or_error([&] { model.load_state_dict(nn::StateDict(c.model)); }, "load_state_dict");
  expect_ok_or_error([&] { sgd.load_state_dict(c.optimizer); }, "load_state_dict");
  if (c.has_scheduler) expect_ok_or_error([&] { step.load_state_dict(c.scheduler); }, "load_state_dict");
  if (!c.callbacks.empty()) {
    expect_ok_or_error([&] { stop.load_state_dict(c.callbacks[0]); }, "load_state_dict");
    expect_ok_or_error([&] { stop.on_train_end(); }, "load_state_dict");  // restores the best weights
  }
  detail::set_random_state("fuzz: ", c.rng);  // validated by the reader
  return 0;
}
