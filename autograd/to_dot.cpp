// to_dot: walks the graph with an explicit stack (graphs may be a million nodes deep) and writes DOT.
#include "to_dot.hpp"

#include <sstream>
#include <unordered_map>
#include <vector>

#include "detail/tensor_impl.hpp"
#include "node.hpp"

namespace xgrad {

namespace {

// A DOT string literal's content: quotes and backslashes escaped, line breaks as \n.
std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string node_label(const autograd::Node& n) {
  std::string label = n.name();
  const std::string details = n.describe();
  if (n.is_leaf_accumulator()) {
    const auto& acc = static_cast<const autograd::AccumulateGrad&>(n);
    label += "\n" + details + " " + dtype_name(acc.leaf()->dtype);
  } else if (!details.empty()) {
    label += "\n" + details;
  }
  return label;
}

}  // namespace

std::string to_dot(const Tensor& root) {
  if (!root.defined()) detail::fail("to_dot: the root is an undefined tensor");
  std::ostringstream os;
  os << "digraph xgrad {\n"
     << "  node [fontname=\"Helvetica\", fontsize=10];\n";

  // Ids in discovery order of a fixed walk: deterministic for a given graph.
  std::unordered_map<const autograd::Node*, std::size_t> ids;
  std::vector<const autograd::Node*> order;
  std::vector<const autograd::Node*> stack;
  auto discover = [&](const autograd::Node* n) {
    if (ids.emplace(n, order.size()).second) {
      order.push_back(n);
      stack.push_back(n);
    }
  };
  const autograd::Node* top = root.grad_fn().get();  // null for a leaf: the output node is all there is
  if (top) discover(top);
  while (!stack.empty()) {
    const autograd::Node* n = stack.back();
    stack.pop_back();
    for (const autograd::Edge& e : n->next_edges())
      if (e.valid()) discover(e.node.get());
  }

  for (std::size_t i = 0; i < order.size(); ++i) {
    const autograd::Node& n = *order[i];
    const bool leaf = n.is_leaf_accumulator();
    os << "  n" << i << " [label=\"" << escape(node_label(n)) << "\"";
    if (leaf)
      os << ", shape=box, style=filled, fillcolor=lightblue";
    else
      os << ", shape=ellipse";
    os << "];\n";
  }
  for (std::size_t i = 0; i < order.size(); ++i) {
    for (const autograd::Edge& e : order[i]->next_edges()) {
      if (!e.valid()) continue;
      os << "  n" << ids.at(e.node.get()) << " -> n" << i;
      if (e.node->num_outputs() > 1) os << " [label=\"output " << e.input_nr << "\"]";
      os << ";\n";
    }
  }

  // The root: its value's shape and dtype, fed by the node that produced it.
  std::string label = "output\n" + shape_str(root.shape()) + " " + dtype_name(root.dtype());
  if (!top) label += root.requires_grad() ? "\n(leaf)" : "\n(no graph: does not require grad)";
  os << "  output [label=\"" << escape(label)
     << "\", shape=box, style=\"filled,bold\", fillcolor=darkolivegreen1];\n";
  if (top) os << "  n0 -> output;\n";
  os << "}\n";
  return os.str();
}

}  // namespace xgrad
