// Saved-tensor hooks: the thread's stack of guards, and packing/unpacking a SavedTensor through them.
#include "saved_tensors_hooks.hpp"

#include <vector>

#include "detail/op_support.hpp"
#include "node.hpp"

namespace xgrad::detail {

struct SavedTensorsHookPair {
  autograd::PackHook pack;
  autograd::UnpackHook unpack;
};

namespace {
// The guards alive on this thread, innermost last. Touched only when a guard is made or dies and
// when a tensor is packed; the hot test is saved_tensor_hooks_on.
thread_local std::vector<std::shared_ptr<const SavedTensorsHookPair>> hook_stack;
// > 0 while hooks are suspended (SuspendSavedTensorsHooks, or a pack hook running).
thread_local std::size_t suspension_depth = 0;

void refresh_hooks_flag() noexcept { saved_tensor_hooks_on = !hook_stack.empty() && suspension_depth == 0; }

struct Suspend {
  Suspend() noexcept {
    ++suspension_depth;
    refresh_hooks_flag();
  }
  ~Suspend() {
    --suspension_depth;
    refresh_hooks_flag();
  }
};
}  // namespace

std::unique_ptr<PackedSaved> pack_saved(const Tensor& t, bool is_output) {
  auto packed = std::make_unique<PackedSaved>();
  TensorImpl& impl = *t.impl();
  packed->hooks = hook_stack.back();
  packed->shape = t.shape();
  packed->dtype = impl.dtype;
  packed->is_output = is_output;
  packed->output_nr = impl.output_nr;
  if (is_output) {
    packed->output_of = impl.grad_fn;
  } else if (impl.grad_fn) {
    packed->history = impl.grad_fn;
  } else if (impl.requires_grad) {
    // A leaf: its accumulator, so that the unpacked tensor sends gradients (under create_graph) to
    // this very leaf. Kept strongly, as the unhooked path keeps the leaf itself.
    packed->history = autograd::gradient_edge(t).node;
    packed->leaf = true;
  }
  if (forward_ad_enabled()) [[unlikely]] {
    if (is_output) {
      packed->tangent = tangent_box_for_saving(t);
    } else if (const ForwardGrad* fw = impl.fw.get(); fw && fw->tangent.defined()) {
      packed->tangent = std::make_shared<SavedTangent>();
      packed->tangent->value = fw->tangent;
      packed->tangent->level = fw->level;
    }
  }
  // The pack hook sees a saved output without history: keeping it must not keep the saving node
  // (whose grad_fn it is) alive through the node itself.
  const Tensor seen = is_output ? share_storage(t) : t;
  Suspend no_recursion;  // ops inside the hook save plainly
  packed->data = packed->hooks->pack(seen);
  return packed;
}

// unpack runs once; its values are kept without history. The history is attached per read: a
// saved output's is the saving node itself, and a cached tensor holding it would be a cycle
// (node -> saved -> tensor -> node) that outlives every backward with retain_graph.
const Tensor& unpacked_values(PackedSaved& packed, const autograd::Node* owner) {
  if (packed.unpacked.defined()) return packed.unpacked;
  const std::string who = owner ? owner->name() : std::string("a saved tensor");
  Tensor u = packed.hooks->unpack(packed.data);
  if (!u.defined()) fail(who, ": the saved-tensor unpack hook returned an undefined tensor");
  if (u.dtype() != packed.dtype || u.shape() != packed.shape)
    fail(who, ": the saved-tensor unpack hook returned a tensor of shape ", shape_str(u.shape()), " ", u.dtype(),
         ", but the saved tensor had shape ", shape_str(packed.shape), " ", packed.dtype);
  packed.unpacked = Tensor(std::make_shared<TensorImpl>(u.impl()->storage, packed.dtype));
  packed.data.reset();  // never unpacked again: whatever the hook kept can go now
  return packed.unpacked;
}

Tensor unpack_saved(PackedSaved& packed, const autograd::Node* owner) {
  const Tensor& values = unpacked_values(packed, owner);
  // Only the values come from unpack; the history is the saved tensor's own.
  auto impl = std::make_shared<TensorImpl>(values.impl()->storage, packed.dtype);
  if (packed.is_output) {
    impl->grad_fn = packed.output_of.lock();
    impl->output_nr = packed.output_nr;
  } else if (packed.leaf) {
    impl->requires_grad = true;
    impl->accumulator = std::static_pointer_cast<autograd::AccumulateGrad>(packed.history);
  } else if (packed.history) {
    impl->grad_fn = packed.history;
    impl->output_nr = packed.output_nr;
  }
  if (packed.tangent) [[unlikely]]
    if (Tensor tangent = saved_tangent(packed.tangent.get()); tangent.defined()) {
      impl->fw = std::make_unique<ForwardGrad>();
      impl->fw->tangent = std::move(tangent);
      impl->fw->level = forward_level.load(std::memory_order_relaxed);
    }
  return Tensor(std::move(impl));
}

}  // namespace xgrad::detail

namespace xgrad::autograd {

SavedTensorsHooks::SavedTensorsHooks(PackHook pack, UnpackHook unpack) {
  if (!pack || !unpack)
    detail::fail("SavedTensorsHooks: both a pack and an unpack hook are needed (got ", pack ? "a" : "no",
                 " pack hook and ", unpack ? "an" : "no", " unpack hook)");
  detail::hook_stack.push_back(
      std::make_shared<const detail::SavedTensorsHookPair>(detail::SavedTensorsHookPair{std::move(pack), std::move(unpack)}));
  detail::refresh_hooks_flag();
}

SavedTensorsHooks::~SavedTensorsHooks() {
  detail::hook_stack.pop_back();
  detail::refresh_hooks_flag();
}

SuspendSavedTensorsHooks::SuspendSavedTensorsHooks() noexcept : saved_depth_(detail::suspension_depth) {
  ++detail::suspension_depth;
  detail::refresh_hooks_flag();
}

SuspendSavedTensorsHooks::~SuspendSavedTensorsHooks() {
  detail::suspension_depth = saved_depth_;
  detail::refresh_hooks_flag();
}

}  // namespace xgrad::autograd
