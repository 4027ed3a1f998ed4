// Graphviz rendering of the graph behind a tensor: `dot -Tsvg graph.dot -o graph.svg`.
#pragma once
#include <string>

#include "tensor.hpp"

namespace xgrad {

// DOT text of the graph that produced `root`: one box per leaf (its shape and dtype), one ellipse per
// backward node (its name, and its inputs' shapes where the node knows them), edges from inputs to the
// ops that consumed them, and the root itself as the highlighted "output". Node ids follow a fixed
// walk of the graph, so the same graph always gives the same text.
std::string to_dot(const Tensor& root);

}  // namespace xgrad
