// Graph nodes: sequence numbers, leaf accumulation, and stack-safe destruction of long chains.
#include "node.hpp"

#include <atomic>

#include "detail/malloc_tuning.hpp"
#include "detail/op_support.hpp"
#include "detail/tensor_impl.hpp"
#include "grad_mode.hpp"
#include "ops.hpp"

namespace xgrad {
namespace detail {

namespace {
// At load time (this file is linked into every program that makes tensors); see malloc_tuning.hpp.
[[maybe_unused]] const bool malloc_tuned = tune_malloc_for_tensors();

// Nodes whose destruction was deferred by an outer release loop on this thread.
thread_local std::vector<std::shared_ptr<autograd::Node>>* pending_releases = nullptr;
}  // namespace

void release_node_iteratively(std::shared_ptr<autograd::Node>&& node) noexcept {
  if (!node) return;
  if (node.use_count() != 1) {  // someone else keeps it alive: just drop our reference
    node.reset();
    return;
  }
  if (pending_releases) {  // an outer loop is running: let it destroy this node
    pending_releases->push_back(std::move(node));
    return;
  }
  std::vector<std::shared_ptr<autograd::Node>> work;
  pending_releases = &work;
  work.push_back(std::move(node));
  while (!work.empty()) {
    std::shared_ptr<autograd::Node> n = std::move(work.back());
    work.pop_back();
    n.reset();  // its destructor pushes the nodes only it kept alive onto `work`
  }
  pending_releases = nullptr;
}

TensorImpl::~TensorImpl() { release_node_iteratively(std::move(grad_fn)); }

}  // namespace detail

namespace autograd {

namespace {
std::atomic<std::uint64_t> next_sequence_nr{0};
}

Node::Node() : sequence_nr_(next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

Node::~Node() {
  Edge* e = edges();
  for (std::uint32_t i = 0; i < num_edges_; ++i) detail::release_node_iteratively(std::move(e[i].node));
  destroy_edges();
}

void Node::destroy_edges() noexcept {
  if (num_edges_ > kInlineEdges) {
    std::destroy_n(heap_edges_, num_edges_);
    std::allocator<Edge>().deallocate(heap_edges_, num_edges_);
  } else {
    std::destroy_n(inline_edges_, num_edges_);
  }
  num_edges_ = 0;
}

void Node::add_next_edge(Edge e) {
  const std::uint32_t n = num_edges_;
  if (n < kInlineEdges) {
    std::construct_at(&inline_edges_[n], std::move(e));
    num_edges_ = n + 1;
    return;
  }
  // Past the inline slots: move everything to a heap array one longer (ops with more than two
  // inputs are rare, and set_next_edges sizes the array once).
  Edge* fresh = std::allocator<Edge>().allocate(n + 1);
  Edge* old = edges();
  std::uninitialized_move_n(old, n, fresh);
  std::construct_at(fresh + n, std::move(e));
  destroy_edges();  // the moved-from edges hold nothing
  heap_edges_ = fresh;
  num_edges_ = n + 1;
}

void Node::set_next_edges(std::vector<Edge> edges) {
  {
    Edge* e = this->edges();
    for (std::uint32_t i = 0; i < num_edges_; ++i) detail::release_node_iteratively(std::move(e[i].node));
    destroy_edges();
  }
  const auto n = static_cast<std::uint32_t>(edges.size());
  if (n <= kInlineEdges) {
    std::uninitialized_move_n(edges.begin(), n, inline_edges_);
  } else {
    Edge* fresh = std::allocator<Edge>().allocate(n);
    std::uninitialized_move_n(edges.begin(), n, fresh);
    heap_edges_ = fresh;
  }
  num_edges_ = n;
}

void Node::throw_released() const {
  detail::fail(name(),
               ": trying to backward through the graph a second time (or to use saved tensors after they "
               "were freed). Saved tensors are released after backward; pass retain_graph=true to the "
               "first backward if you need to backward through the graph again.");
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<detail::TensorImpl> leaf) : leaf_(std::move(leaf)) {
  mark_leaf_accumulator();
}

std::string Node::describe() const {
  std::string out;
  Shape shape;
  for (std::size_t i = 0; i < num_edges_; ++i) {
    if (i) out += ", ";
    const Edge& e = edges()[i];
    if (!e.valid())
      out += "-";
    else if (e.node->output_shape(e.input_nr, shape))
      out += shape_str(shape);
    else
      out += "?";
  }
  return out;
}

std::string AccumulateGrad::describe() const {
  Shape shape;
  output_shape(0, shape);
  return shape_str(shape);
}

bool AccumulateGrad::output_shape(std::uint32_t, Shape& shape) const {
  shape = std::visit([](const auto& a) { return detail::to_shape(a.shape()); }, leaf_->storage->value);
  return true;
}

void AccumulateGrad::run_leaf_hooks(Tensor& g) const {
  for (auto& [id, hook] : leaf_->hooks) {
    Tensor replaced = hook(g);
    if (replaced.defined()) {
      if (replaced.shape() != g.shape() || replaced.dtype() != g.dtype())
        detail::fail("hook on a leaf tensor: returned a gradient of shape ", shape_str(replaced.shape()), " ",
                     replaced.dtype(), ", expected ", shape_str(g.shape()), " ", g.dtype());
      g = std::move(replaced);
    }
  }
}

TensorList AccumulateGrad::apply(TensorList&& grads) {
  Tensor g = std::move(grads[0]);
  if (!g.defined()) return {};
  detail::TensorImpl& leaf = *leaf_;
  Tensor leaf_handle(leaf_);
  run_leaf_hooks(g);
  const Shape leaf_shape = leaf_handle.shape();
  if (g.shape() != leaf_shape || g.dtype() != leaf.dtype)
    detail::fail("AccumulateGrad: gradient of shape ", shape_str(g.shape()), " ", g.dtype(),
                 " does not match the leaf's shape ", shape_str(leaf_shape), " ", leaf.dtype);
  const bool create_graph = is_grad_enabled();
  if (!leaf.grad.defined()) {
    // Without create_graph the stored gradient has no history and is not aliased by anyone else
    // (a later in-place accumulation must not change a tensor the user or a hook still holds).
    if (create_graph) {
      // A (differentiable) copy, as in PyTorch: `g` may be shared with other leaves (AddBackward hands
      // the same tensor to both operands), and a later backward accumulates into .grad in place.
      leaf.grad = g.clone();
    } else if (!g.grad_fn() && g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1) {
      leaf.grad = std::move(g);
    } else {
      NoGradGuard no_grad;
      leaf.grad = g.detach().clone();
    }
  } else if (create_graph || leaf.grad.grad_fn()) {
    leaf.grad = add(leaf.grad, g);
  } else {
    detail::dispatch(leaf.dtype, [&](auto tag) {
      using T = decltype(tag);
      auto& acc = detail::arr<T>(leaf.grad);
      const auto& inc = detail::arr<T>(g);
      T* __restrict a = acc.data();
      const T* __restrict b = inc.data();
      const std::size_t n = acc.size();
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) a[i] += b[i];
    });
  }
  // Indexed, not range-for: a hook may register or remove hooks.
  for (std::size_t i = 0; i < leaf.post_accumulate_hooks.size(); ++i) {
    auto hook = leaf.post_accumulate_hooks[i].second;
    hook(leaf_handle);
  }
  return {};
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined()) return {};
  detail::TensorImpl* impl = t.impl();
  if (impl->grad_fn) return Edge{impl->grad_fn, impl->output_nr};
  if (!impl->requires_grad) return {};
  std::shared_ptr<AccumulateGrad> acc = impl->accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    impl->accumulator = acc;
  }
  return Edge{std::move(acc), 0};
}

}  // namespace autograd
}  // namespace xgrad
