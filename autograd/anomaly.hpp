// Anomaly mode: find where the first NaN or Inf of a computation came from.
//
//   {
//     xgrad::autograd::DetectAnomalyGuard anomaly;
//     Tensor loss = model(x) ...;   // every recorded op checks its result
//     loss.backward();              // every backward node checks the gradients it produced
//   }
//
// When on, every differentiable op checks its result — whether or not it records a graph node
// (grad mode off, or no input requiring grad, included) — and throws xgrad::Error naming the op, the
// bad value and where it sits, and its input shapes; every backward node checks the gradients it
// returns, and the first NaN/Inf throws an error naming the backward node, the forward op it
// differentiates and that op's input shapes. The ops a backward formula runs internally are not
// checked one by one: the node's returned gradients are, so the error names the backward node.
// Off by default; when off the cost is one test of a thread-local bool per op and per node.
// Like grad mode it is thread-local: turning it on in one thread does not affect others.
#pragma once
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace xgrad {
namespace autograd {
class Node;
}

namespace detail {
// The flag itself; constinit tells every TU that no dynamic initialisation is needed, so reading it
// is a plain thread-local load (no TLS wrapper call).
extern constinit thread_local bool anomaly_enabled;
// True while the engine runs a node's backward on this thread.
extern constinit thread_local bool running_backward;

// Marks the scope of one node's backward (set by the engine around Node::apply).
class RunningBackwardScope {
 public:
  RunningBackwardScope() noexcept : previous_(running_backward) { running_backward = true; }
  ~RunningBackwardScope() { running_backward = previous_; }
  RunningBackwardScope(const RunningBackwardScope&) = delete;
  RunningBackwardScope& operator=(const RunningBackwardScope&) = delete;

 private:
  bool previous_;
};

// Whether forward results must be checked now: anomaly mode on, and not inside a backward formula.
inline bool anomaly_checks_forward() noexcept { return anomaly_enabled && !running_backward; }
}  // namespace detail

namespace autograd {

inline bool is_anomaly_enabled() noexcept { return xgrad::detail::anomaly_enabled; }
void set_detect_anomaly(bool enabled) noexcept;

// Turns anomaly mode on (or off) for a scope; restores the previous state on exit.
class DetectAnomalyGuard {
 public:
  explicit DetectAnomalyGuard(bool enabled = true) noexcept : previous_(is_anomaly_enabled()) {
    set_detect_anomaly(enabled);
  }
  ~DetectAnomalyGuard() { set_detect_anomaly(previous_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace autograd

namespace detail {
// Called (in anomaly mode only) by the op-recording machinery once `node` is the grad_fn of `out`:
// remembers the op's input shapes for backward errors, then throws if `out` holds NaN or Inf.
void anomaly_check_forward(const Tensor& out, const std::shared_ptr<autograd::Node>& node,
                           std::initializer_list<const Tensor*> inputs);
// The same for an op that recorded no node (grad mode off or no input requiring grad); `node_name` is
// the name its backward node would have had.
void anomaly_check_unrecorded(const Tensor& out, const std::string& node_name,
                              std::initializer_list<const Tensor*> inputs);
void anomaly_check_unrecorded(const Tensor& out, const std::string& node_name, const std::vector<Tensor>& inputs);
void anomaly_check_forward(const Tensor& out, const std::shared_ptr<autograd::Node>& node,
                           const std::vector<Tensor>& inputs);
// Called (in anomaly mode only) by the engine right after node.apply(): throws if a produced
// gradient holds NaN or Inf.
void anomaly_check_backward(const autograd::Node& node, const std::vector<Tensor>& gradients);
// The forward op's name for a backward node's name: "LeakyReluBackward" -> "leaky_relu".
std::string forward_op_name(const std::string& node_name);
}  // namespace detail

}  // namespace xgrad
