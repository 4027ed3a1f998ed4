// The backward engine: collects the nodes reachable from the roots with an explicit stack, counts
// dependencies, and runs nodes from a ready queue (newest first, like PyTorch) so that each node runs
// once, after every gradient for it has been summed. No recursion over the graph anywhere.
#include "engine.hpp"

#include <atomic>
#include <queue>

#include "anomaly.hpp"
#include "detail/op_support.hpp"
#include "grad_mode.hpp"
#include "node.hpp"
#include "ops.hpp"

namespace xgrad::autograd {

namespace {

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

// Runs the graph. With `captures`, gradients are returned for those (node, output) slots and no leaf
// .grad is touched; otherwise everything runs and leaves accumulate.
std::vector<Tensor> execute(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                            bool keep_graph, bool create_graph, std::vector<Capture>* captures,
                            std::size_t num_captures) {
  if (!grad_roots.empty() && grad_roots.size() != roots.size())
    detail::fail("backward: got ", grad_roots.size(), " gradients for ", roots.size(), " outputs");
  std::vector<Tensor> seeds;
  std::vector<Edge> root_edges;
  seeds.reserve(roots.size());
  for (std::size_t i = 0; i < roots.size(); ++i) {
    seeds.push_back(root_gradient(roots[i], grad_roots.empty() ? Tensor() : grad_roots[i], i));
    root_edges.push_back(gradient_edge(roots[i]));
  }

  // 1. Collect reachable nodes and count, for each, the edges that point at it.
  std::vector<Node*> nodes;
  GradBuffers buffers;
  // Whatever happens, leave every node unmarked for the next run.
  struct ClearMarks {
    std::vector<Node*>& nodes;
    ~ClearMarks() {
      for (Node* n : nodes) n->run_state().visited = false;
    }
  } clear_marks{nodes};
  std::vector<Node*> stack;
  auto visit = [&](Node* n) {
    Node::RunState& rs = n->run_state();
    if (rs.visited) return false;
    // Grow first, so that push_back cannot throw with the node marked but not listed for unmarking.
    if (nodes.size() == nodes.capacity()) nodes.reserve(2 * nodes.size() + 64);
    buffers.add_node(*n);
    rs.visited = true;
    rs.position = static_cast<std::uint32_t>(nodes.size());
    rs.dependencies = 0;
    rs.needed = captures == nullptr;
    nodes.push_back(n);
    return true;
  };
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

  // 2. For autograd::grad, run only the nodes through which a captured slot is reachable.
  if (captures) {
    for (Capture& c : *captures)
      if (c.node && !c.node->run_state().visited) c.node = nullptr;  // not in this graph: unused
    // Kahn order on a copy of the dependency counts, then propagate reachability backwards.
    std::vector<std::uint32_t> deps(nodes.size());
    std::vector<Node*> order;
    order.reserve(nodes.size());
    auto idx = [](Node* n) { return n->run_state().position; };
    for (std::size_t i = 0; i < nodes.size(); ++i) deps[i] = nodes[i]->run_state().dependencies;
    std::vector<Node*> ready;
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (deps[i] == 0) ready.push_back(nodes[i]);
    while (!ready.empty()) {
      Node* n = ready.back();
      ready.pop_back();
      order.push_back(n);
      for (const Edge& e : n->next_edges())
        if (e.valid() && --deps[idx(e.node.get())] == 0) ready.push_back(e.node.get());
    }
    std::vector<char> reaches(nodes.size(), 0);
    for (const Capture& c : *captures)
      if (c.node) reaches[idx(c.node)] = 1;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node* n = *it;
      bool run = false;
      for (const Edge& e : n->next_edges())
        if (e.valid() && reaches[idx(e.node.get())]) run = true;
      n->run_state().needed = run && dynamic_cast<AccumulateGrad*>(n) == nullptr;
      if (run) reaches[idx(n)] = 1;
    }
  }

  // 3. Seed the roots' gradients.
  for (std::size_t i = 0; i < roots.size(); ++i)
    accumulate_into(buffers, *root_edges[i].node, root_edges[i].input_nr, std::move(seeds[i]));

  // 4. Run nodes as they become ready.
  std::vector<Tensor> captured(num_captures);
  std::priority_queue<Node*, std::vector<Node*>, NewestFirst> ready;
  for (Node* n : nodes)
    if (n->run_state().dependencies == 0) ready.push(n);
  AutoGradMode mode(create_graph);
  TensorList buffer;  // the node's gradients; reused from node to node (apply takes it by reference)
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    Node::RunState& rs = n->run_state();
    buffer.clear();
    Tensor* slots = buffers.of(*n);
    for (std::uint32_t k = 0; k < n->num_outputs(); ++k) buffer.push_back(std::move(slots[k]));
    run_pre_hooks(*n, buffer);
    if (captures)
      for (const Capture& c : *captures)
        if (c.node == n && buffer[c.output_nr].defined()) captured[c.input_index] = buffer[c.output_nr];

    if (rs.needed) {
      bool any = false;
      for (const Tensor& g : buffer) any = any || g.defined();
      TensorList outputs;
      if (any) {
        {
          detail::RunningBackwardScope in_backward;  // anomaly mode checks the node's result, not each op inside
          outputs = n->apply(std::move(buffer));
        }
        buffer.clear();  // drop the incoming gradients now: a consumer may then reuse their memory
        if (is_anomaly_enabled()) [[unlikely]] detail::anomaly_check_backward(*n, outputs);
        if (outputs.size() != n->num_inputs() && !(outputs.empty() && dynamic_cast<AccumulateGrad*>(n)))
          detail::fail(n->name(), ": backward returned ", outputs.size(), " gradients, expected ", n->num_inputs());
      }
      if (!keep_graph) {
        n->release_variables();
        n->mark_released();
      }
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        const Edge& e = n->next_edge(i);
        if (e.valid() && outputs[i].defined()) accumulate_into(buffers, *e.node, e.input_nr, std::move(outputs[i]));
      }
    }
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      Node::RunState& child = e.node->run_state();
      if (--child.dependencies == 0) ready.push(e.node.get());
    }
  }
  return captured;
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
  execute(tensors, grad_tensors, retain_graph.value_or(create_graph), create_graph, nullptr, 0);
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
      execute(outputs, grad_outputs, retain_graph.value_or(create_graph), create_graph, &captures, inputs.size());
  for (std::size_t i = 0; i < result.size(); ++i) {
    if (!result[i].defined() && !allow_unused)
      detail::fail("autograd::grad: input ", i, " (shape ", shape_str(inputs[i].shape()),
                   ") appears not to have been used in the graph; pass allow_unused=true if this is intended");
    if (result[i].defined() && !create_graph) result[i] = result[i].detach();
  }
  return result;
}

}  // namespace xgrad::autograd
