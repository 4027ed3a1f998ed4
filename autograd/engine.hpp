// Running backward: Tensor::backward and autograd::grad.
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "tensor.hpp"

namespace xgrad::autograd {

// Gradients of the sum of `outputs` (weighted by `grad_outputs`) with respect to `inputs`, without
// touching any .grad. retain_graph defaults to create_graph. An input the outputs do not depend on is
// an error unless allow_unused, in which case its gradient is undefined.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {},
                         std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                         bool allow_unused = false);

// Accumulates gradients of `tensors` into the leaves' .grad (the multi-root form of Tensor::backward).
void backward(const std::vector<Tensor>& tensors, const std::vector<Tensor>& grad_tensors = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

// Called during a backward run (from a hook): runs `callback` once that run has finished computing
// every gradient, before backward returns (PyTorch's Variable._execution_engine.queue_callback).
// Callbacks run in the order queued, on the thread that called backward; one that throws makes
// backward throw (the rest are dropped). A run that fails drops its callbacks. Outside a backward
// run (or inside autograd::grad, which accumulates nothing) it is an error.
void queue_callback(std::function<void()> callback);

}  // namespace xgrad::autograd
