// The graph: a Node is the backward of one op run, with edges to the nodes of its inputs.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace xgrad::autograd {

class Node;
using TensorList = std::vector<Tensor>;

// Where the gradient for one input of an op goes: input `input_nr` of `node`. A leaf's edge goes to
// its gradient accumulator; an input that needs no gradient has an empty edge.
struct Edge {
  std::shared_ptr<Node> node;
  std::uint32_t input_nr = 0;
  bool valid() const noexcept { return node != nullptr; }
};

class Node {
 public:
  Node();
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // The op's name as users see it in errors and graphs, e.g. "MulBackward".
  virtual std::string name() const = 0;
  // Given one gradient per output of the forward op (undefined = zero), returns one gradient per
  // input of the forward op (undefined where none is needed or it is zero).
  virtual TensorList apply(TensorList&& grads) = 0;
  // Drops saved tensors after a backward without retain_graph.
  virtual void release_variables() {}
  // The forward inputs' shapes, for graph rendering (to_dot): by default each input's shape as the
  // node its edge leads to knows it (output_shape), "?" where that node does not know it and "-" for
  // an input that needs no gradient (no edge, nothing recorded about it).
  virtual std::string describe() const;
  // The shape of forward output `output_nr` of this node's op, when the node knows it (built-in op
  // nodes, custom Functions and leaf accumulators do). For graph rendering only: never on a hot path.
  virtual bool output_shape(std::uint32_t /*output_nr*/, Shape& /*shape*/) const { return false; }

  std::size_t num_inputs() const noexcept { return num_edges_; }
  const Edge& next_edge(std::size_t i) const { return edges()[i]; }
  std::span<const Edge> next_edges() const noexcept { return {edges(), num_edges_}; }
  void add_next_edge(Edge e);
  void set_next_edges(std::vector<Edge> edges);
  // Whether the gradient for forward input i is wanted by anyone.
  bool needs_input_grad(std::size_t i) const noexcept { return i < num_edges_ && edges()[i].valid(); }

  std::uint32_t num_outputs() const noexcept { return num_outputs_; }
  void set_num_outputs(std::uint32_t n) noexcept { num_outputs_ = n; }
  std::uint64_t sequence_nr() const noexcept { return sequence_nr_; }

  // Hooks on the gradient arriving for output `output_nr` (tensor.register_hook on a non-leaf).
  struct PreHook {
    std::uint32_t output_nr;
    std::size_t id;
    Tensor::Hook fn;
  };
  // Allocated on first use: almost no node ever has a hook.
  std::vector<PreHook>& pre_hooks() {
    if (!pre_hooks_) pre_hooks_ = std::make_unique<std::vector<PreHook>>();
    return *pre_hooks_;
  }
  bool has_pre_hooks() const noexcept { return pre_hooks_ && !pre_hooks_->empty(); }

  // Whether this node is a leaf's gradient accumulator (AccumulateGrad): a plain flag, so that the
  // engine and the graph renderer need no dynamic_cast.
  bool is_leaf_accumulator() const noexcept { return leaf_accumulator_; }

  // Set when a backward without retain_graph has released this node's saved tensors.
  bool released() const noexcept { return released_; }
  void mark_released() noexcept { released_ = true; }
  // Throws the "backward through the graph a second time" error for this node.
  [[noreturn]] void throw_released() const;

  // Engine bookkeeping, valid only during one backward run (no hash maps on the hot path). The
  // gradient buffers themselves live in the engine, at index `position` of its node list; `visited`
  // is cleared again when the run ends.
  struct RunState {
    std::uint32_t dependencies = 0;
    std::uint32_t position = 0;
    bool visited = false;
    bool needed = true;
  };
  RunState& run_state() noexcept { return run_; }

 protected:
  void mark_leaf_accumulator() noexcept { leaf_accumulator_ = true; }  // AccumulateGrad only

 private:
  // Up to kInlineEdges edges live inside the node (every unary and binary op: recording an op is
  // one allocation); more go to an exact-size heap array. Field order packs a node into 96 bytes.
  static constexpr std::uint32_t kInlineEdges = 2;
  const Edge* edges() const noexcept { return num_edges_ > kInlineEdges ? heap_edges_ : inline_edges_; }
  Edge* edges() noexcept { return num_edges_ > kInlineEdges ? heap_edges_ : inline_edges_; }
  void destroy_edges() noexcept;
  union {
    Edge inline_edges_[kInlineEdges];
    Edge* heap_edges_;
  };
  std::uint32_t num_edges_ = 0;
  std::uint32_t num_outputs_ = 1;
  std::uint64_t sequence_nr_;
  std::unique_ptr<std::vector<PreHook>> pre_hooks_;
  RunState run_;
  bool released_ = false;
  bool leaf_accumulator_ = false;  // (both flags sit in the padding after run_)
};

// The node that accumulates into a leaf's .grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<detail::TensorImpl> leaf);
  std::string name() const override { return "AccumulateGrad"; }
  TensorList apply(TensorList&& grads) override;
  std::string describe() const override;
  bool output_shape(std::uint32_t output_nr, Shape& shape) const override;
  const std::shared_ptr<detail::TensorImpl>& leaf() const noexcept { return leaf_; }
  // Runs the hooks registered on the leaf (Tensor::register_hook) on `g`, each seeing what the
  // previous one made of it: during backward before accumulating, during autograd::grad before the
  // gradient is returned.
  void run_leaf_hooks(Tensor& g) const;

 private:
  std::shared_ptr<detail::TensorImpl> leaf_;
};

// The edge a gradient for `t` should flow along: its grad_fn, or its leaf accumulator, or none.
Edge gradient_edge(const Tensor& t);

}  // namespace xgrad::autograd
