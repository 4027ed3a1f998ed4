// Activation checkpointing (PyTorch's torch.utils.checkpoint, non-reentrant variant), in C++:
//
//   Tensor y = autograd::checkpoint([&](const std::vector<Tensor>& in) { return block->forward(in[0]); }, {x});
//
// `fn` runs once in forward, recording its graph as usual, but none of the tensors its ops save for
// backward is kept: a saved-tensor hook (saved_tensors_hooks.hpp) keeps only their position. The
// first time backward needs one of them, `fn` runs again — grad mode on, on detached copies of the
// inputs that require grad as the originals did, with the random generator set back to its state at
// the first run, so Dropout draws the same mask — and the tensors its ops save this time are handed
// to the original graph's nodes, which then run as they would have. Gradients are bit-identical to a
// run without checkpointing; autograd::grad, create_graph (double backward), parameters closed over by
// `fn` and nested checkpoints work, since the graph is the one recorded in forward.
//
// `fn` is called as fn(const std::vector<Tensor>&) and returns a Tensor or a std::vector<Tensor>;
// checkpoint returns the same. `fn` is kept (copied) until the graph is destroyed: what it captures
// by reference must outlive backward, and it must run the same ops again (same shapes, same order).
// Its inputs are kept (through any outer saved-tensor hooks), its intermediate tensors are not.
// With grad mode off, checkpoint just calls fn.
#pragma once
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "tensor.hpp"

namespace xgrad::autograd {
using CheckpointFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
}

namespace xgrad::detail {
std::vector<Tensor> checkpoint_impl(autograd::CheckpointFunction fn, const std::vector<Tensor>& inputs);
}

namespace xgrad::autograd {

template <class Fn>
auto checkpoint(Fn fn, const std::vector<Tensor>& inputs) {
  using Result = std::invoke_result_t<Fn&, const std::vector<Tensor>&>;
  static_assert(std::is_same_v<Result, Tensor> || std::is_same_v<Result, std::vector<Tensor>>,
                "checkpoint: fn must return a Tensor or a std::vector<Tensor>");
  if constexpr (std::is_same_v<Result, Tensor>) {
    auto outputs = detail::checkpoint_impl(
        [f = std::move(fn)](const std::vector<Tensor>& in) mutable { return std::vector<Tensor>{f(in)}; }, inputs);
    return std::move(outputs[0]);
  } else {
    return detail::checkpoint_impl(CheckpointFunction(std::move(fn)), inputs);
  }
}

}  // namespace xgrad::autograd
