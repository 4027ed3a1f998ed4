// What a Tensor handle points at. Internal: kernels and the engine use it, users do not.
#pragma once
#include <memory>
#include <utility>
#include <variant>
#include <vector>

#include "../node.hpp"
#include "forward_ad.hpp"
#include "../tensor.hpp"

namespace xgrad::detail {

template <class T>
using Array = xt::xarray<T>;

// The value, shared between a tensor, its detach()ed views and saved copies of it inside nodes.
// Sharing it (instead of copying) lets a node save an op's output without keeping the output's
// TensorImpl — and so its grad_fn, i.e. the node itself — alive: no reference cycle.
struct Storage {
  std::variant<Array<float>, Array<double>> value;
  template <class T>
  explicit Storage(Array<T>&& v) : value(std::in_place_type<Array<T>>, std::move(v)) {}
  // Hands a small array to this thread's recycling pool (see array_pool.hpp) instead of freeing it.
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::shared_ptr<autograd::Node> grad_fn;               // null for leaves
  std::weak_ptr<autograd::AccumulateGrad> accumulator;  // leaves that require grad
  Tensor grad;
  std::vector<std::pair<std::size_t, Tensor::Hook>> hooks;  // leaf hooks (non-leaf ones live on grad_fn)
  std::vector<std::pair<std::size_t, Tensor::PostAccumulateGradHook>> post_accumulate_hooks;  // leaves only
  std::unique_ptr<ForwardGrad> fw;  // forward-mode tangent (detail/forward_ad.hpp); null unless dual
  std::uint32_t output_nr = 0;
  Dtype dtype = kFloat32;
  bool requires_grad = false;  // leaves only; a non-leaf requires grad iff it has a grad_fn
  bool retains_grad = false;

  TensorImpl(std::shared_ptr<Storage> s, Dtype d) : storage(std::move(s)), dtype(d) {}
  ~TensorImpl();

  template <class T>
  Array<T>& array() noexcept {
    return *std::get_if<Array<T>>(&storage->value);
  }
  bool requires_grad_() const noexcept { return requires_grad || grad_fn != nullptr; }
};

// Makes a tensor owning `value` (no history).
template <class T>
Tensor make_tensor(Array<T>&& value) {
  auto storage = std::make_shared<Storage>(std::move(value));
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), dtype_of<T>::value));
}

// A new handle on the same storage, without history.
Tensor share_storage(const Tensor& t);

// Defers destruction of graph nodes to an explicit work list, so destroying a chain of a million
// nodes never recurses a million deep. Called from ~Node and ~TensorImpl.
void release_node_iteratively(std::shared_ptr<autograd::Node>&& node) noexcept;

}  // namespace xgrad::detail
