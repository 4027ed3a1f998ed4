// Saved-tensor hooks (PyTorch's torch.autograd.graph.saved_tensors_hooks): while a guard lives, every
// tensor an op saves for backward — the built-in ops' saved inputs and outputs and a custom
// Function's ctx->save_for_backward — is handed to `pack` when it is saved, and only what `pack`
// returns is kept; backward gets the tensor back from `unpack`. Offloading, compression and
// activation checkpointing (checkpoint.hpp) are built on this.
//
//   std::size_t bytes = 0;
//   {
//     autograd::SavedTensorsHooks guard(
//         [&](const Tensor& t) -> std::any { bytes += t.numel() * 4; return t.clone(); },
//         [](const std::any& p) { return std::any_cast<Tensor>(p); });
//     loss = model(x).sum();
//   }
//   loss.backward();  // reads the clones
//
// Semantics, as in PyTorch:
// - Guards nest (a thread-local stack): the innermost one packs; it is the `unpack` of the guard that
//   packed a tensor which unpacks it, whenever backward runs. Each guard applies to this thread only.
// - `pack` sees an op's saved input as the tensor itself and a saved output as a handle on its values
//   without history (a pack that kept the output itself would keep its node alive through the node).
// - `unpack` must return a tensor of the saved one's shape and dtype (else an xgrad::Error naming the
//   op); only its values are used: backward re-attaches the saved tensor's own history, so
//   create_graph differentiates through the original graph.
// - `unpack` runs at most once per saved tensor: its result is kept by the node until the node's saved
//   tensors are released (after a backward without retain_graph), so a retained graph is not
//   unpacked again.
// - An exception from `pack` propagates out of the op that saved (the op's result is then lost); an
//   exception from `unpack` propagates out of backward.
// - Hooks are not applied while a hook itself runs (a pack that calls ops does not recurse).
// Without a guard, saving costs one thread-local test.
#pragma once
#include <any>
#include <cstddef>
#include <functional>

#include "tensor.hpp"

namespace xgrad::autograd {

using PackHook = std::function<std::any(const Tensor&)>;
using UnpackHook = std::function<Tensor(const std::any&)>;

class SavedTensorsHooks {
 public:
  SavedTensorsHooks(PackHook pack, UnpackHook unpack);
  ~SavedTensorsHooks();
  SavedTensorsHooks(const SavedTensorsHooks&) = delete;
  SavedTensorsHooks& operator=(const SavedTensorsHooks&) = delete;
};

// Temporarily turns every saved-tensor hook off on this thread (PyTorch's
// torch.autograd.graph.disable_saved_tensors_hooks, without the error): ops in this scope save plainly.
class SuspendSavedTensorsHooks {
 public:
  SuspendSavedTensorsHooks() noexcept;
  ~SuspendSavedTensorsHooks();
  SuspendSavedTensorsHooks(const SuspendSavedTensorsHooks&) = delete;
  SuspendSavedTensorsHooks& operator=(const SuspendSavedTensorsHooks&) = delete;

 private:
  std::size_t saved_depth_;
};

}  // namespace xgrad::autograd
