// Anomaly mode: NaN/Inf checks of forward results and backward gradients, and the side table that
// lets a backward error name the forward op's input shapes (a node does not keep them itself).
#include "anomaly.hpp"

#include <cmath>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "node.hpp"

namespace xgrad {

namespace detail {
constinit thread_local bool anomaly_enabled = false;
constinit thread_local bool running_backward = false;
}  // namespace detail

void autograd::set_detect_anomaly(bool enabled) noexcept { detail::anomaly_enabled = enabled; }

namespace detail {
namespace {

using autograd::Node;

// What the forward pass knew about a node, kept only for nodes recorded in anomaly mode. Keyed by
// address; the weak_ptr tells a live entry from one whose node died and whose address was reused.
struct ForwardInfo {
  std::weak_ptr<Node> node;
  std::string inputs;  // "[2, 3] Float32, [3] Float32"
};

class ForwardTable {
 public:
  void remember(const std::shared_ptr<Node>& node, std::string inputs) {
    std::lock_guard<std::mutex> lock(mutex_);
    table_[node.get()] = ForwardInfo{node, std::move(inputs)};
    // Entries of destroyed graphs go when the table has doubled since the last sweep, so memory
    // stays proportional to the live graphs even in a long anomaly-mode run.
    if (table_.size() > 2 * live_after_sweep_ + 1024) {
      for (auto it = table_.begin(); it != table_.end();)
        it = it->second.node.expired() ? table_.erase(it) : std::next(it);
      live_after_sweep_ = table_.size();
    }
  }
  // The input description of `node`'s forward op, or "" when it was not recorded in anomaly mode.
  std::string inputs_of(const Node& node) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = table_.find(&node);
    if (it == table_.end()) return {};
    std::shared_ptr<Node> live = it->second.node.lock();
    return live.get() == &node ? it->second.inputs : std::string();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<const Node*, ForwardInfo> table_;
  std::size_t live_after_sweep_ = 0;
};

ForwardTable& forward_table() {
  static ForwardTable table;  // never destroyed before last use: function-local, constructed on first use
  return table;
}

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  return concat(shape_str(t.shape()), " ", t.dtype());
}

// The first NaN/Inf of `t`: its position ("element [1, 2]"), its value and how many there are.
struct NonFinite {
  bool found = false;
  std::string where;
  std::string value;
  std::size_t count = 0;
};

NonFinite find_non_finite(const Tensor& t) {
  NonFinite r;
  if (!t.defined()) return r;
  auto scan = [&](const auto& a) {
    const auto* p = a.data();
    const std::size_t n = a.size();
    std::size_t first = n;
    for (std::size_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) {
        if (first == n) first = i;
        ++r.count;
      }
    if (first == n) return;
    r.found = true;
    const double v = static_cast<double>(p[first]);
    r.value = std::isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
    // Flat index -> multi-index, row-major.
    const Shape shape = t.shape();
    std::vector<std::size_t> idx(shape.size());
    std::size_t rest = first;
    for (std::size_t d = shape.size(); d-- > 0;) {
      idx[d] = rest % shape[d];
      rest /= shape[d];
    }
    r.where = shape_str(idx);
  };
  if (t.dtype() == kFloat32)
    scan(t.data<float>());
  else
    scan(t.data<double>());
  return r;
}

template <class Inputs, class Describe>
std::string describe_inputs(const Inputs& inputs, Describe&& one) {
  std::string out;
  for (const auto& in : inputs) {
    if (!out.empty()) out += ", ";
    out += one(in);
  }
  return out;
}

void fail_if_non_finite(const Tensor& out, const std::string& node_name, const std::string& inputs) {
  const NonFinite bad = find_non_finite(out);
  if (!bad.found) return;
  fail("anomaly mode: the forward op '", forward_op_name(node_name), "' (", node_name,
                      ") produced ", bad.value, " at element ", bad.where, " of its output of shape ",
                      shape_str(out.shape()), " (", bad.count, " non-finite value", bad.count == 1 ? "" : "s",
                      "); its inputs were ", inputs.empty() ? std::string("none") : inputs);
}

void check_forward(const Tensor& out, const std::shared_ptr<Node>& node, std::string inputs) {
  if (node) forward_table().remember(node, inputs);
  fail_if_non_finite(out, node ? node->name() : std::string("?"), inputs);
}

}  // namespace

std::string forward_op_name(const std::string& node_name) {
  std::string base = node_name;
  const std::string suffix = "Backward";
  const std::size_t at = base.rfind(suffix);
  if (at != std::string::npos && at > 0) base.erase(at);  // also drops a "Backward0"-style number
  std::string out;
  for (std::size_t i = 0; i < base.size(); ++i) {
    const char c = base[i];
    if (c >= 'A' && c <= 'Z') {
      if (i > 0 && !(base[i - 1] >= 'A' && base[i - 1] <= 'Z')) out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

void anomaly_check_forward(const Tensor& out, const std::shared_ptr<autograd::Node>& node,
                           std::initializer_list<const Tensor*> inputs) {
  check_forward(out, node, describe_inputs(inputs, [](const Tensor* t) { return describe(*t); }));
}

void anomaly_check_forward(const Tensor& out, const std::shared_ptr<autograd::Node>& node,
                           const std::vector<Tensor>& inputs) {
  check_forward(out, node, describe_inputs(inputs, [](const Tensor& t) { return describe(t); }));
}

void anomaly_check_unrecorded(const Tensor& out, const std::string& node_name,
                              std::initializer_list<const Tensor*> inputs) {
  fail_if_non_finite(out, node_name, describe_inputs(inputs, [](const Tensor* t) { return describe(*t); }));
}

void anomaly_check_unrecorded(const Tensor& out, const std::string& node_name, const std::vector<Tensor>& inputs) {
  fail_if_non_finite(out, node_name, describe_inputs(inputs, [](const Tensor& t) { return describe(t); }));
}

void anomaly_check_backward(const autograd::Node& node, const std::vector<Tensor>& gradients) {
  for (std::size_t i = 0; i < gradients.size(); ++i) {
    const NonFinite bad = find_non_finite(gradients[i]);
    if (!bad.found) continue;
    const std::string name = node.name();
    const std::string inputs = forward_table().inputs_of(node);
    fail("anomaly mode: the backward node ", name, " (the gradient of the forward op '",
                        forward_op_name(name), "'",
                        inputs.empty() ? std::string(", recorded before anomaly mode was on")
                                       : ", whose inputs were " + inputs,
                        ") returned ", bad.value, " at element ", bad.where, " of its gradient for input ", i,
                        " (shape ", shape_str(gradients[i].shape()), ", ", bad.count, " non-finite value",
                        bad.count == 1 ? "" : "s", ")");
  }
}

}  // namespace detail
}  // namespace xgrad
