// Activation checkpointing on saved-tensor hooks: forward keeps a position per saved tensor, the
// first unpack in backward re-runs fn once and hands each node the tensor it saved (checkpoint.hpp).
#include "checkpoint.hpp"

#include <memory>
#include <random>

#include "detail/op_support.hpp"
#include "detail/random.hpp"
#include "grad_mode.hpp"
#include "saved_tensors_hooks.hpp"

namespace xgrad::detail {

namespace {

// Where a tensor saved inside fn's first run went: its position in the order of saving.
struct SavedSlot {
  std::size_t index;
};
// A tensor saved by an op inside a forward-mode JVP rule (forward AD over reverse mode) is kept as
// it is: such ops run only where tangents flow, which the re-run (on inputs without tangents) does
// not repeat, so they stay out of the positions both runs must agree on.
struct KeptTensor {
  Tensor value;
};

// One checkpoint call: what re-running fn needs, and the tensors the re-run saved, until each is
// handed to the node that saved its counterpart in forward.
class CheckpointFrame {
 public:
  CheckpointFrame(autograd::CheckpointFunction fn, const std::vector<Tensor>& inputs) : fn_(std::move(fn)) {
    with_generator([&](std::mt19937_64& g) { generator_ = g; });
    // Through whatever saved-tensor hooks are active outside the checkpoint (the frame's own are
    // not pushed yet): an offloading or counting hook sees the inputs the checkpoint keeps.
    inputs_.resize(inputs.size());
    requires_grad_.reserve(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].defined()) inputs_[i].save_input(inputs[i]);
      requires_grad_.push_back(inputs[i].defined() && inputs[i].requires_grad());
    }
  }

  std::size_t next_slot() noexcept { return packed_++; }

  // The tensor saved at position `index` by the re-run of fn (which happens on the first call).
  Tensor take(std::size_t index) {
    if (!recomputed_) recompute();
    if (index >= saved_.size() || !saved_[index].defined())
      fail("checkpoint: backward needs the tensor saved at position ", index, " of ", packed_,
           " in the first run of fn, but re-running fn saved ", saved_.size(),
           " tensors; fn must run the same ops on the same shapes every time it is called");
    return std::move(saved_[index]);  // from now on the node that saved it keeps it
  }

 private:
  void recompute() {
    saved_.clear();  // (a re-run that threw part-way may have left some)
    std::vector<Tensor> inputs(inputs_.size());
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      if (inputs_[i].empty()) continue;
      inputs[i] = inputs_[i].unpack(nullptr).detach();
      if (requires_grad_[i]) inputs[i].requires_grad_(true);
    }
    std::mt19937_64 current;
    with_generator([&](std::mt19937_64& g) {
      current = g;
      g = generator_;
    });
    struct RestoreGenerator {
      std::mt19937_64& state;
      ~RestoreGenerator() {
        with_generator([&](std::mt19937_64& g) { g = state; });
      }
    } restore{current};
    // The re-run must record and save exactly what the first run did: grad mode on, and its own hook
    // innermost, so that nested checkpoints and outer hooks see what they saw the first time.
    AutoGradMode grad_on(true);
    autograd::SavedTensorsHooks collect(
        [this](const Tensor& t) -> std::any {
          if (jvp_rule_running) return {};  // not counted in the first run either (KeptTensor)
          saved_.push_back(share_storage(t));  // the values only: the re-run's graph is not kept
          return {};
        },
        [](const std::any&) -> Tensor {
          fail("checkpoint: internal error, a tensor saved while re-running fn was unpacked");
        });
    fn_(inputs);
    recomputed_ = true;
    if (saved_.size() != packed_)
      fail("checkpoint: re-running fn saved ", saved_.size(), " tensors for backward, the first run saved ", packed_,
           "; fn must run the same ops on the same shapes every time it is called");
  }

  autograd::CheckpointFunction fn_;
  std::vector<SavedTensor> inputs_;
  std::vector<bool> requires_grad_;
  std::mt19937_64 generator_;
  std::size_t packed_ = 0;
  bool recomputed_ = false;
  std::vector<Tensor> saved_;
};

}  // namespace

std::vector<Tensor> checkpoint_impl(autograd::CheckpointFunction fn, const std::vector<Tensor>& inputs) {
  if (!fn) fail("checkpoint: fn is empty");
  if (!is_grad_enabled()) return fn(inputs);  // nothing is saved for backward anyway
  auto frame = std::make_shared<CheckpointFrame>(fn, inputs);
  CheckpointFrame* f = frame.get();
  // The unpack hook keeps the frame: every tensor saved inside fn holds the hooks that packed it, so
  // the frame lives exactly as long as some node of fn's graph does.
  autograd::SavedTensorsHooks hooks(
      [f](const Tensor& t) -> std::any {
        if (jvp_rule_running) return KeptTensor{t};
        return SavedSlot{f->next_slot()};
      },
      [frame](const std::any& packed) -> Tensor {
        if (const auto* kept = std::any_cast<KeptTensor>(&packed)) return kept->value;
        return frame->take(std::any_cast<const SavedSlot&>(packed).index);
      });
  std::vector<Tensor> outputs = fn(inputs);
  return outputs;
}

}  // namespace xgrad::detail
