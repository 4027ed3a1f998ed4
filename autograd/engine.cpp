// The backward engine: collects the nodes reachable from the roots with an explicit stack, counts
// dependencies, and runs nodes from a ready queue (newest first, like PyTorch) so that each node runs
// once, after every gradient for it has been summed. No recursion over the graph anywhere.
// Read execute() (near the end) first: it calls the phases of GraphRun in order.
#include "engine.hpp"

#include <queue>
#include <span>

#include "anomaly.hpp"
#include "detail/op_support.hpp"
#include "grad_mode.hpp"
#include "node.hpp"
#include "ops.hpp"

namespace xgrad::autograd {

namespace {

// A (node, output) slot whose gradient autograd::grad returns as its result number input_index.
struct Capture {
  Node* node;
  std::uint32_t output_nr;
  std::size_t input_index;
};

struct NewestFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

// The gradient buffers of one run, kept by the engine rather than in the nodes (a node stays small):
// the node at position p of the run owns slots [offset[p], offset[p] + num_outputs).
struct GradBuffers {
  std::vector<std::uint32_t> offset;
  std::vector<Tensor> slots;

  void add_node(const Node& n) {
    offset.push_back(static_cast<std::uint32_t>(slots.size()));
    slots.resize(slots.size() + n.num_outputs());
  }
  Tensor* of(Node& n) { return slots.data() + offset[n.run_state().position]; }
};

// Adds `g` into slot `nr` of `node`'s gradient buffer.
void accumulate_into(GradBuffers& buffers, Node& node, std::uint32_t nr, Tensor&& g) {
  if (nr >= node.num_outputs())
    detail::fail(node.name(), ": gradient for output ", nr, " but the node has ", node.num_outputs(), " outputs");
  Tensor& slot = buffers.of(node)[nr];
  if (!slot.defined()) {
    slot = std::move(g);
  } else {
    if (slot.shape() != g.shape())
      detail::fail(node.name(), ": gradients of shapes ", shape_str(slot.shape()), " and ", shape_str(g.shape()),
                   " cannot be summed for output ", nr);
    detail::accumulate_gradient(slot, std::move(g));
  }
}

void run_pre_hooks(Node& node, TensorList& buffer) {
  if (!node.has_pre_hooks()) return;
  auto& hooks = node.pre_hooks();
  for (auto& h : hooks) {
    if (h.output_nr >= buffer.size() || !buffer[h.output_nr].defined()) continue;
    Tensor& g = buffer[h.output_nr];
    Tensor replaced = h.fn(g);
    if (replaced.defined()) {
      if (replaced.shape() != g.shape() || replaced.dtype() != g.dtype())
        detail::fail("hook on the output of ", node.name(), ": returned a gradient of shape ",
                     shape_str(replaced.shape()), " ", replaced.dtype(), ", expected ", shape_str(g.shape()), " ",
                     g.dtype());
      g = std::move(replaced);
    }
  }
}

Tensor root_gradient(const Tensor& root, const Tensor& given, std::size_t i) {
  if (!root.defined()) detail::fail("backward: output ", i, " is an undefined tensor");
  if (!root.requires_grad())
    detail::fail("backward: element ", i, " of tensors does not require grad and does not have a grad_fn");
  if (given.defined()) {
    if (given.shape() != root.shape())
      detail::fail("backward: gradient of shape ", shape_str(given.shape()), " given for output ", i, " of shape ",
                   shape_str(root.shape()));
    if (given.dtype() != root.dtype())
      detail::fail("backward: gradient of dtype ", given.dtype(), " given for output ", i, " of dtype ",
                   root.dtype());
    return given;
  }
  if (root.numel() != 1)
    detail::fail("backward: grad can be implicitly created only for scalar outputs, but output ", i,
                 " has shape ", shape_str(root.shape()), " (", root.numel(),
                 " elements); pass a gradient of that shape");
  return ones_like(root);
}

// ---- One backward run -------------------------------------------------------------------------
// The run goes through three phases, each a member below, in the order execute() calls them:
//   collect  walk the graph below the roots (explicit stack) and count, for each node, the edges
//            that point at it;
//   prune    for autograd::grad only: keep just the nodes through which a captured slot is reached;
//   run      (after seed has put the roots' gradients in place) run each node once every gradient
//            for it has arrived, newest first from a ready queue.
// The marks that collect leaves on the nodes are cleared when the run ends, whatever happens.
class GraphRun {
 public:
  // `captures` (empty for backward) are the slots whose gradients autograd::grad returns.
  explicit GraphRun(std::span<Capture> captures) : captures_(captures) {}
  ~GraphRun() {
    for (Node* n : nodes_) n->run_state().visited = false;
  }
  GraphRun(const GraphRun&) = delete;
  GraphRun& operator=(const GraphRun&) = delete;

  // Phase 1: every node reachable from the roots, each listed once, with its dependency count.
  void collect(const std::vector<Edge>& root_edges) {
    std::vector<Node*> stack;
    for (const Edge& e : root_edges)
      if (visit(e.node.get())) stack.push_back(e.node.get());
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const Edge& e : n->next_edges()) {
        if (!e.valid()) continue;
        Node* child = e.node.get();
        if (visit(child)) stack.push_back(child);
        child->run_state().dependencies++;
      }
    }
  }

  // Phase 2 (autograd::grad): a node is needed only if a captured slot is reachable through it, and
  // leaf accumulators never run (grad touches no .grad). A Kahn order on a copy of the dependency
  // counts, walked backwards, propagates reachability from the captured nodes up to the roots.
  void prune_to_captures() {
    for (Capture& c : captures_)
      if (c.node && !c.node->run_state().visited) c.node = nullptr;  // not in this graph: unused
    const auto idx = [](Node* n) { return n->run_state().position; };
    std::vector<std::uint32_t> deps(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); ++i) deps[i] = nodes_[i]->run_state().dependencies;
    std::vector<Node*> order;
    order.reserve(nodes_.size());
    std::vector<Node*> ready;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (deps[i] == 0) ready.push_back(nodes_[i]);
    while (!ready.empty()) {
      Node* n = ready.back();
      ready.pop_back();
      order.push_back(n);
      for (const Edge& e : n->next_edges())
        if (e.valid() && --deps[idx(e.node.get())] == 0) ready.push_back(e.node.get());
    }
    std::vector<char> reaches(nodes_.size(), 0);
    for (const Capture& c : captures_)
      if (c.node) reaches[idx(c.node)] = 1;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node* n = *it;
      bool run = false;
      for (const Edge& e : n->next_edges())
        if (e.valid() && reaches[idx(e.node.get())]) run = true;
      n->run_state().needed = run && !n->is_leaf_accumulator();
      if (run) reaches[idx(n)] = 1;
    }
  }

  // Phase 3, first step: the gradient given for a root flows into the root's node.
  void seed(const Edge& root, Tensor&& gradient) {
    accumulate_into(buffers_, *root.node, root.input_nr, std::move(gradient));
  }

  // Phase 3: runs every needed node once, after all its gradients have been summed, and hands its
  // results on along its edges. Returns the captured gradients (at each capture's input_index).
  std::vector<Tensor> run(bool keep_graph, bool create_graph) {
    std::vector<Tensor> captured(captures_.size());
    std::priority_queue<Node*, std::vector<Node*>, NewestFirst> ready;
    for (Node* n : nodes_)
      if (n->run_state().dependencies == 0) ready.push(n);
    AutoGradMode mode(create_graph);
    TensorList buffer;  // the node's gradients; reused from node to node (apply takes it by reference)
    while (!ready.empty()) {
      Node* n = ready.top();
      ready.pop();
      buffer.clear();
      Tensor* slots = buffers_.of(*n);
      for (std::uint32_t k = 0; k < n->num_outputs(); ++k) buffer.push_back(std::move(slots[k]));
      run_pre_hooks(*n, buffer);
      // autograd::grad returns a leaf's gradient as its hooks leave it, as backward would accumulate
      // it (PyTorch runs a tensor's hooks before capturing); only for a leaf whose gradient is asked
      // for, since grad runs no accumulator.
      if (n->is_leaf_accumulator() && is_captured(n) && buffer[0].defined())
        static_cast<AccumulateGrad*>(n)->run_leaf_hooks(buffer[0]);
      for (const Capture& c : captures_)
        if (c.node == n && buffer[c.output_nr].defined()) captured[c.input_index] = buffer[c.output_nr];
      if (n->run_state().needed) run_node(*n, buffer, keep_graph);
      for (const Edge& e : n->next_edges()) {
        if (!e.valid()) continue;
        if (--e.node->run_state().dependencies == 0) ready.push(e.node.get());
      }
    }
    return captured;
  }

 private:
  bool is_captured(const Node* n) const {
    for (const Capture& c : captures_)
      if (c.node == n) return true;
    return false;
  }

  // Lists `n` the first time it is seen; returns whether it was new.
  bool visit(Node* n) {
    Node::RunState& rs = n->run_state();
    if (rs.visited) return false;
    // Grow first, so that push_back cannot throw with the node marked but not listed for unmarking.
    if (nodes_.size() == nodes_.capacity()) nodes_.reserve(2 * nodes_.size() + 64);
    buffers_.add_node(*n);
    rs.visited = true;
    rs.position = static_cast<std::uint32_t>(nodes_.size());
    rs.dependencies = 0;
    rs.needed = captures_.empty();  // backward runs everything; grad decides in prune_to_captures
    nodes_.push_back(n);
    return true;
  }

  // Applies one node to its summed gradients (when any is defined) and adds each result into the
  // buffer of the node its edge points at.
  void run_node(Node& n, TensorList& buffer, bool keep_graph) {
    bool any = false;
    for (const Tensor& g : buffer) any = any || g.defined();
    TensorList outputs;
    if (any) {
      {
        detail::RunningBackwardScope in_backward;  // anomaly mode checks the node's result, not each op inside
        outputs = n.apply(std::move(buffer));
      }
      buffer.clear();  // drop the incoming gradients now: a consumer may then reuse their memory
      if (is_anomaly_enabled()) [[unlikely]] detail::anomaly_check_backward(n, outputs);
      if (outputs.size() != n.num_inputs() && !(outputs.empty() && n.is_leaf_accumulator()))
        detail::fail(n.name(), ": backward returned ", outputs.size(), " gradients, expected ", n.num_inputs());
    }
    if (!keep_graph) {
      n.release_variables();
      n.mark_released();
    }
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const Edge& e = n.next_edge(i);
      if (e.valid() && outputs[i].defined()) accumulate_into(buffers_, *e.node, e.input_nr, std::move(outputs[i]));
    }
  }

  std::span<Capture> captures_;
  std::vector<Node*> nodes_;  // in discovery order; node p owns the gradient slots of position p
  GradBuffers buffers_;
};

// Checks the roots and their given gradients; returns the gradient each root starts with.
std::vector<Tensor> root_gradients(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots) {
  if (!grad_roots.empty() && grad_roots.size() != roots.size())
    detail::fail("backward: got ", grad_roots.size(), " gradients for ", roots.size(), " outputs");
  std::vector<Tensor> seeds;
  seeds.reserve(roots.size());
  for (std::size_t i = 0; i < roots.size(); ++i)
    seeds.push_back(root_gradient(roots[i], grad_roots.empty() ? Tensor() : grad_roots[i], i));
  return seeds;
}

// Runs the graph below `roots`. With captures (autograd::grad), returns their gradients and touches
// no leaf's .grad; without (backward), runs everything and leaves accumulate.
std::vector<Tensor> execute(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                            bool keep_graph, bool create_graph, std::span<Capture> captures = {}) {
  std::vector<Tensor> seeds = root_gradients(roots, grad_roots);
  std::vector<Edge> root_edges;
  root_edges.reserve(roots.size());
  for (const Tensor& r : roots) root_edges.push_back(gradient_edge(r));

  GraphRun graph(captures);
  graph.collect(root_edges);
  if (!captures.empty()) graph.prune_to_captures();
  for (std::size_t i = 0; i < roots.size(); ++i) graph.seed(root_edges[i], std::move(seeds[i]));
  return graph.run(keep_graph, create_graph);
  // End-of-backward callbacks (queue_callback, below) run in backward() once this returns.
}

}  // namespace

namespace {
// The callbacks queued during the innermost backward run on this thread (null outside one).
thread_local std::vector<std::function<void()>>* queued_callbacks = nullptr;
}  // namespace

void queue_callback(std::function<void()> callback) {
  if (!queued_callbacks) detail::fail("queue_callback: called outside a backward run");
  queued_callbacks->push_back(std::move(callback));
}

void backward(const std::vector<Tensor>& tensors, const std::vector<Tensor>& grad_tensors,
              std::optional<bool> retain_graph, bool create_graph) {
  std::vector<std::function<void()>> callbacks;
  struct Scope {  // nested runs (a backward inside a hook) keep their own list
    std::vector<std::function<void()>>* outer = queued_callbacks;
    ~Scope() { queued_callbacks = outer; }
  } scope;
  queued_callbacks = &callbacks;
  execute(tensors, grad_tensors, retain_graph.value_or(create_graph), create_graph);
  // Indexed: a callback may queue another one, which then runs too.
  for (std::size_t i = 0; i < callbacks.size(); ++i) {
    auto callback = std::move(callbacks[i]);
    callback();
  }
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph,
                         bool create_graph, bool allow_unused) {
  if (outputs.empty()) detail::fail("autograd::grad: no outputs given");
  if (inputs.empty()) detail::fail("autograd::grad: no inputs given");
  // The edges are kept for the whole run: gradient_edge may have just created a leaf's accumulator,
  // which only these edges keep alive.
  std::vector<Edge> input_edges;
  std::vector<Capture> captures;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.defined()) detail::fail("autograd::grad: input ", i, " is an undefined tensor");
    if (!in.requires_grad()) detail::fail("autograd::grad: input ", i, " does not require grad");
    input_edges.push_back(gradient_edge(in));
    captures.push_back(Capture{input_edges.back().node.get(), input_edges.back().input_nr, i});
  }
  std::vector<Tensor> result =
      execute(outputs, grad_outputs, retain_graph.value_or(create_graph), create_graph, captures);
  for (std::size_t i = 0; i < result.size(); ++i) {
    if (!result[i].defined() && !allow_unused)
      detail::fail("autograd::grad: input ", i, " (shape ", shape_str(inputs[i].shape()),
                   ") appears not to have been used in the graph; pass allow_unused=true if this is intended");
    if (result[i].defined() && !create_graph) {
      // Detached, but a tangent stays (forward mode over reverse mode: the jvp of a gradient).
      Tensor tangent = detail::tangent_of(result[i]);
      result[i] = result[i].detach();
      if (tangent.defined()) [[unlikely]]
        detail::set_tangent(result[i], std::move(tangent));
    }
  }
  return result;
}

}  // namespace xgrad::autograd
