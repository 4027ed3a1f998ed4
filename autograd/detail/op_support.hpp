// The shared machinery behind every op: input checks, dtype dispatch, broadcasting, saving
// tensors for backward and recording nodes. Internal to autograd/.
#pragma once
#include <algorithm>
#include <any>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../anomaly.hpp"
#include "../grad_mode.hpp"
#include "../node.hpp"
#include "../ops.hpp"
#include "array_pool.hpp"
#include "dispatch.hpp"  // dispatch(dtype, f): the one dtype switch per op, never per element
#include "forward_ad.hpp"  // record_jvp: each op's forward-mode rule, beside its backward
#include "tensor_impl.hpp"

namespace xgrad::detail {

// ---- Shapes ------------------------------------------------------------------------------------
template <class S>
Shape to_shape(const S& s) {
  return Shape(s.begin(), s.end());
}
template <class S1, class S2>
bool shapes_equal(const S1& a, const S2& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}
std::size_t numel_of(const Shape& s);
// A shape as the signed sizes reshape and expand take.
inline std::vector<std::int64_t> as_i64(const Shape& s) { return std::vector<std::int64_t>(s.begin(), s.end()); }
// Whether two (defined) tensors have the same shape, without building a Shape.
inline bool same_shape(const Tensor& a, const Tensor& b) {
  return std::visit([](const auto& x, const auto& y) { return shapes_equal(x.shape(), y.shape()); },
                    a.impl()->storage->value, b.impl()->storage->value);
}

// ---- Input checks (each throws xgrad::Error naming `op`) ---------------------------------------
TensorImpl& checked(const Tensor& t, const char* op, const char* arg = "input");
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
// Wraps a possibly negative dim into [0, rank).
std::size_t wrap_dim(const char* op, std::int64_t dim, std::size_t rank);
// numpy broadcasting of two shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
std::string shapes_str(const Tensor& a, const Tensor& b);
// "[2, -1]" for a list of requested sizes.
std::string concat_dims(const std::vector<std::int64_t>& dims);

// ---- Arrays --------------------------------------------------------------------------------
template <class T>
Array<T>& arr(const Tensor& t) {
  return t.impl()->template array<T>();
}
// Refuses, before anything is allocated, a tensor whose element count or byte size overflows or
// exceeds the machine's physical memory: a bogus size must end in an xgrad::Error naming `op` and the
// shape, never in std::bad_alloc or a wrapped-around (too small) allocation.
std::size_t max_tensor_bytes() noexcept;
[[noreturn]] void fail_allocation(const char* op, const Shape& shape, std::size_t itemsize, bool overflow);
template <class S>
void check_allocation(const char* op, const S& shape, std::size_t itemsize) {
  // The product runs over the non-zero sizes: even a 0-element tensor gets strides that are products
  // of its sizes, and they must fit xtensor's signed 64-bit strides.
  std::size_t bytes = itemsize;
  bool overflow = false, empty = false;
  for (const auto d : shape) {
    if (d == 0) {
      empty = true;
      continue;
    }
    overflow |= __builtin_mul_overflow(bytes, static_cast<std::size_t>(d), &bytes);
  }
  overflow |= bytes > static_cast<std::size_t>(PTRDIFF_MAX);
  if (overflow || (!empty && bytes > max_tensor_bytes())) [[unlikely]]
    fail_allocation(op, Shape(shape.begin(), shape.end()), itemsize, overflow);
}
// `pooled` (an array from the recycling pool) given the shape `shape` of the same element count.
template <class T, class S>
Array<T> reuse_array(Array<T>& pooled, const S& shape) {
  Array<T> a(std::move(pooled));
  pop_recycled<T>(a.size());
  a.resize(typename Array<T>::shape_type(shape.begin(), shape.end()));  // same size: keeps the buffer
  return a;
}
// An uninitialised array of `shape`: a recycled one of the same element count when this thread's
// pool has one (array_pool.hpp), else a fresh allocation.
template <class T, class S>
Array<T> empty_array(const S& shape, const char* op = "tensor allocation") {
  check_allocation(op, shape, sizeof(T));
  using shape_type = typename Array<T>::shape_type;
  std::size_t n = 1;
  for (const auto d : shape) n *= static_cast<std::size_t>(d);  // no overflow: checked above
  if (n * sizeof(T) <= kMaxPooledArrayBytes)
    if (Array<T>* pooled = recycled_array<T>(n)) return reuse_array<T>(*pooled, shape);
  return Array<T>::from_shape(shape_type(shape.begin(), shape.end()));
}

// Base for built-in backward nodes with a fixed name. It also keeps the shape of the op's output
// (every built-in op has one output), so that to_dot can show each node's input shapes: an input's
// shape is the output shape of the node its edge leads to. Kept inline in a fixed array of 32-bit
// sizes — recording an op stays one allocation, the cost is a few stores and 24 bytes per node — for
// ranks up to kMaxRank; a larger rank or size is shown as "?".
class OpNode : public autograd::Node {
 public:
  explicit OpNode(const char* name) : name_(name) {}
  std::string name() const override { return name_; }

  template <class S>
  void remember_output_shape(const S& shape) noexcept {
    rank_ = kUnknownRank;
    if (shape.size() > kMaxRank) return;
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] > UINT32_MAX) return;
      dims_[i] = static_cast<std::uint32_t>(shape[i]);
    }
    rank_ = static_cast<std::uint8_t>(shape.size());
  }
  bool output_shape(std::uint32_t output_nr, Shape& shape) const override {
    if (output_nr != 0 || rank_ == kUnknownRank) return false;
    shape.assign(dims_, dims_ + rank_);
    return true;
  }

 private:
  static constexpr std::size_t kMaxRank = 5;
  static constexpr std::uint8_t kUnknownRank = 0xFF;
  const char* name_;
  std::uint32_t dims_[kMaxRank];
  std::uint8_t rank_ = kUnknownRank;
};

// ---- Recording the graph -------------------------------------------------------------------------
// True when grad mode is on and any input requires grad.
inline bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->impl()->requires_grad_()) return true;
  return false;
}
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches `node` as the grad_fn of `out` (output number `output_nr`).
void set_history(const Tensor& out, const std::shared_ptr<autograd::Node>& node, std::uint32_t output_nr = 0);

// Creates a node of type NodeT for an op with these inputs and makes it the grad_fn of `out`,
// or returns null when no gradient is needed (grad mode off or no input requires grad).
// `inputs` is a list of tensor pointers (record) or a vector of tensors (record_list); both share
// record_node's body.
inline const Tensor& input_at(const Tensor* t) { return *t; }
inline const Tensor& input_at(const Tensor& t) { return t; }
template <class NodeT, class Inputs, class... Args>
std::shared_ptr<NodeT> record_node(const Tensor& out, const Inputs& inputs, Args&&... args) {
  if (!needs_grad(inputs)) {
    // Anomaly mode checks every op, recorded or not; the node is built only to learn the op's name.
    if (anomaly_checks_forward()) [[unlikely]]
      anomaly_check_unrecorded(out, NodeT(std::forward<Args>(args)...).name(), inputs);
    return nullptr;
  }
  auto node = std::make_shared<NodeT>(std::forward<Args>(args)...);
  if (inputs.size() <= 2) {  // the node's inline edge slots: no allocation beyond the node itself
    for (const auto& t : inputs) node->add_next_edge(autograd::gradient_edge(input_at(t)));
  } else {
    std::vector<autograd::Edge> edges;
    edges.reserve(inputs.size());
    for (const auto& t : inputs) edges.push_back(autograd::gradient_edge(input_at(t)));
    node->set_next_edges(std::move(edges));
  }
  set_history(out, node);
  if constexpr (std::is_base_of_v<OpNode, NodeT>)
    std::visit([&](const auto& a) { node->remember_output_shape(a.shape()); }, out.impl()->storage->value);
  if (anomaly_checks_forward()) [[unlikely]] anomaly_check_forward(out, node, inputs);
  return node;
}
template <class NodeT, class... Args>
std::shared_ptr<NodeT> record(const Tensor& out, std::initializer_list<const Tensor*> inputs, Args&&... args) {
  return record_node<NodeT>(out, inputs, std::forward<Args>(args)...);
}
template <class NodeT, class... Args>
std::shared_ptr<NodeT> record_list(const Tensor& out, const std::vector<Tensor>& inputs, Args&&... args) {
  return record_node<NodeT>(out, inputs, std::forward<Args>(args)...);
}

// True while a SavedTensorsHooks guard is active on this thread (and not suspended): saving then
// goes through the guard's pack hook. Constant-initialised, so testing it is one TLS load.
inline thread_local bool saved_tensor_hooks_on = false;
struct SavedTensorsHookPair;
// A saved tensor as a pack hook left it (saved_tensors_hooks.cpp): what pack returned, the hooks
// that unpack it, and the saved tensor's shape, dtype and history, re-attached at unpack.
struct PackedSaved {
  std::any data;
  std::shared_ptr<const SavedTensorsHookPair> hooks;
  std::shared_ptr<autograd::Node> history;     // a saved input's grad_fn or leaf accumulator
  std::weak_ptr<autograd::Node> output_of;     // a saved output's grad_fn (the saving node: weak)
  Shape shape;
  std::uint32_t output_nr = 0;
  Dtype dtype = kFloat32;
  bool is_output = false;
  bool leaf = false;  // `history` is the leaf's AccumulateGrad
  // The saved tensor's tangent under forward AD (a saved output's is filled in when its op's JVP
  // runs): re-attached at unpack, so forward mode over reverse mode works through packed tensors.
  std::shared_ptr<SavedTangent> tangent;
  Tensor unpacked;    // unpack's values (no history), kept until the node releases its saved tensors
};
std::unique_ptr<PackedSaved> pack_saved(const Tensor& t, bool is_output);
// The saved tensor with its history (unpack runs on the first read only).
Tensor unpack_saved(PackedSaved& packed, const autograd::Node* owner);
// Only its values, for fused kernels.
const Tensor& unpacked_values(PackedSaved& packed, const autograd::Node* owner);

// A tensor saved for backward. An op's input is kept as is; an op's output is kept as its value plus
// a weak link to its grad_fn (the saving node itself), which avoids the cycle node -> output -> node
// and still lets create_graph differentiate through the saved output. Under saved-tensor hooks
// (saved_tensors_hooks.hpp) only what the pack hook returned is kept, and every read (unpack, value,
// storage) goes through the unpack hook once.
class SavedTensor {
 public:
  SavedTensor() = default;
  void save_input(const Tensor& t) {
    if (saved_tensor_hooks_on) [[unlikely]]
      packed_ = pack_saved(t, false);
    else
      tensor_ = t;
  }
  void save_output(const Tensor& t);
  // The saved tensor; throws the second-backward error if `owner` has released it.
  Tensor unpack(const autograd::Node* owner) const;
  // Only its value, for fused backward kernels (no Tensor handle is made); throws like unpack.
  template <class T>
  const Array<T>& value(const autograd::Node* owner) const {
    return *std::get_if<Array<T>>(&storage(owner).value);
  }
  const Storage& storage(const autograd::Node* owner) const;
  void reset() noexcept;
  bool empty() const noexcept { return !tensor_.defined() && !storage_ && !packed_; }

 private:
  Tensor tensor_;
  std::shared_ptr<Storage> storage_;
  std::weak_ptr<autograd::Node> grad_fn_;
  // A saved output's tangent (forward AD over reverse mode): filled in when the op's JVP runs.
  std::shared_ptr<SavedTangent> tangent_;
  std::unique_ptr<PackedSaved> packed_;  // set instead of the above when a pack hook was active
  std::uint32_t output_nr_ = 0;
  Dtype dtype_ = kFloat32;
};

// Small helpers used in backward formulas.
inline Tensor maybe(bool want, Tensor t) { return want ? std::move(t) : Tensor(); }

// ---- Cheap backward -------------------------------------------------------------------------------
// Whether a backward formula may take its fused, allocation-free path: no graph of the backward is
// being recorded (no create_graph). With create_graph, formulas are Tensor ops so that they are
// differentiable again.
// Nor while forward AD is on: the formulas' ops then carry the tangents of gradients and saved tensors
// (forward mode over reverse mode), which a fused kernel would drop.
inline bool fused_backward() noexcept { return !is_grad_enabled() && !forward_ad_enabled(); }
// Whether `t`'s value may be overwritten in place: this handle is the only one on its TensorImpl,
// the TensorImpl the only owner of the value (no saved copy, no detach()ed view), and it has no
// history. Gradients flowing through the engine usually are, so a backward kernel can write its
// result over the incoming gradient instead of allocating.
bool exclusively_owned(const Tensor& t) noexcept;
// acc += g for gradients being summed (engine buffers, leaf .grad): in place into whichever of the
// two can be overwritten when no graph is recorded, else acc = add(acc, g). Same shape and dtype.
void accumulate_gradient(Tensor& acc, Tensor&& g);

}  // namespace xgrad::detail
