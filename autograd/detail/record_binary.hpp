// Recording a binary op (a ⊕ b, broadcasting): its backward is a lambda written right beside its
// forward, as record_unary does for elementwise functions (ops/unary.cpp). Internal to autograd/.
#pragma once
#include <memory>
#include <utility>

#include "op_support.hpp"

namespace xgrad::detail {

// What every binary backward may need besides its saved tensors: the operands' shapes, to sum a
// broadcast gradient back down to each operand. When both have the same shape (the common case)
// nothing is kept: the gradient already has their shape.
struct BinaryNode : OpNode {
  using OpNode::OpNode;
  Shape a_shape, b_shape;
  bool broadcast = false;
  void remember_shapes(const Tensor& a, const Tensor& b) {
    if (same_shape(a, b)) return;
    broadcast = true;
    a_shape = a.shape();
    b_shape = b.shape();
  }
  Tensor to_a(const Tensor& g) const { return broadcast ? sum_to(g, a_shape) : g; }
  Tensor to_b(const Tensor& g) const { return broadcast ? sum_to(g, b_shape) : g; }
};

// The tensors a binary backward reads. An op saves only those its wanted gradients need, after
// record_binary returns the node; release_variables drops them all.
struct NothingSaved {
  void reset() noexcept {}
};
struct SavedOperands {
  SavedTensor a, b;
  void reset() noexcept {
    a.reset();
    b.reset();
  }
};

// The node: `backward(node, grad)` returns {gradient for a, gradient for b}. It is a generic lambda
// taking the node (needs_input_grad, to_a/to_b, saved) and the output's gradient, which it may move
// from. No allocation beyond the node's own, no virtual call beyond apply().
template <class Saved, class Backward>
struct BinaryBackward final : BinaryNode {
  BinaryBackward(const char* name, Backward b) : BinaryNode(name), backward(std::move(b)) {}
  [[no_unique_address]] Saved saved;
  [[no_unique_address]] Backward backward;
  autograd::TensorList apply(autograd::TensorList&& g) override { return backward(*this, g[0]); }
  void release_variables() override { saved.reset(); }
};

// Makes a BinaryBackward the grad_fn of `out` = a ⊕ b, or returns null when no gradient is needed.
// The caller then saves what `backward` reads into node->saved.
template <class Saved = NothingSaved, class Backward>
std::shared_ptr<BinaryBackward<Saved, Backward>> record_binary(const Tensor& out, const Tensor& a, const Tensor& b,
                                                               const char* name, Backward backward) {
  auto node = record<BinaryBackward<Saved, Backward>>(out, {&a, &b}, name, std::move(backward));
  if (node) node->remember_shapes(a, b);
  return node;
}

}  // namespace xgrad::detail
