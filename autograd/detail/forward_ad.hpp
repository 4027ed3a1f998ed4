// Forward-mode AD inside autograd/: where tangents live, and how an op states its JVP rule beside its
// forward and backward (record_jvp). Internal: ops and autograd/functional use it, users do not.
//
// Writing a JVP rule (see ops/unary.cpp, ops/arithmetic.cpp, ops/linalg.cpp for examples):
//   Tensor out = ...forward...;
//   record_unary(out, x, ...backward...);                         // backward first, then:
//   record_jvp("sin", out, {&x}, [&](Tangents t) { return mul(t[0], cos(x)); });
// - The rule gets one tangent per input (undefined = zero: that input carries none) and returns the
//   output's tangent (undefined = zero), in Tensor ops, so that reverse mode can differentiate it.
// - Inside the rule no tangent propagates (jvp_rule_running): the rule's ops work on primals and
//   tangents. It may read inputs freely, but never `out` itself: use output_alias(out) (the same value
//   and history without the tangent, so that out -> tangent -> node -> out is no reference cycle).
// - Batched levels (functional transforms) give every tangent an extra leading dimension of size
//   tangent_batch(). A rule passed with JvpBatching::Aware handles that itself (the tangent_* helpers
//   below make it easy); any other rule is run once per batch entry and the results stacked.
#pragma once
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../tensor.hpp"

namespace xgrad::autograd {
class AutogradContext;
}

namespace xgrad::detail {

// The open level's id, 0 when none: every op reads it (one relaxed load and one branch).
inline std::atomic<std::uint64_t> forward_level{0};
// True while a JVP rule runs on this thread: the rule's own ops compute no tangents.
inline constinit thread_local bool jvp_rule_running = false;

inline bool forward_ad_enabled() noexcept {
  return forward_level.load(std::memory_order_relaxed) != 0 && !jvp_rule_running;
}

// What a saved copy of an op's output sees of its tangent (SavedTensor::save_output): the tangent's
// value without history, filled in when the op's JVP runs (after the node saved the output).
struct SavedTangent {
  Tensor value;
  std::uint64_t level = 0;
};
// A tangent as it rides on a TensorImpl.
struct ForwardGrad {
  Tensor tangent;
  std::uint64_t level = 0;
  std::shared_ptr<SavedTangent> for_savers;  // made when a node saves this tensor as its output
};

// The tangent of `t` at the open level (undefined when none).
Tensor tangent_of(const Tensor& t) noexcept;
// Sets `t`'s tangent at the open level (shape and dtype checked by the callers).
void set_tangent(const Tensor& t, Tensor tangent);
// The open level's batch size, 0 when its tangents are not batched.
std::int64_t tangent_batch() noexcept;
// For SavedTensor::save_output while forward AD is enabled: the box its tangent will be found in.
std::shared_ptr<SavedTangent> tangent_box_for_saving(const Tensor& out);
// The tangent in a box, if it belongs to the open level.
Tensor saved_tangent(const SavedTangent* box) noexcept;
// A handle on `out`'s value and history without its tangent: what JVP rules read of an op's output.
Tensor output_alias(const Tensor& out);

// An open level with batched tangents (for autograd::functional).
class BatchedDualLevel;

// ---- Helpers for rules --------------------------------------------------------------------------
using Tangents = std::span<const Tensor>;
// Zeros shaped like `primal`'s tangent at this level.
Tensor zero_tangent(const Tensor& primal);
// a + b where either may be undefined (= zero).
Tensor add_tangents(const Tensor& a, const Tensor& b);
// Batched levels: dim `dim` of a primal of rank `rank` as a dim of its tangent (wrapped, shifted past
// the batch dim). Unbatched: the wrapped dim.
int tangent_dim(std::int64_t dim, std::size_t rank);
// A tangent of a primal of rank r made broadcastable against a primal-shaped operand of rank
// out_rank: a batched [B, s...] becomes [B, 1, ..., 1, s...]; unbatched ones broadcast as they are.
Tensor align_tangent(const Tensor& t, std::size_t out_rank);
// A tangent expanded to the tangent shape of a primal of shape `shape` (broadcasting).
Tensor expand_tangent(const Tensor& t, const Shape& shape);
// The leading dims of a tangent (the batch dim, or nothing), followed by `dims`: the shape a tangent
// takes for a primal of shape `dims` (for reshape-like rules).
std::vector<std::int64_t> tangent_shape(const Shape& dims);

// ---- Recording the JVP -----------------------------------------------------------------------------
enum class JvpBatching { Loop, Aware };

// A non-owning reference to the rule (no allocation per op).
class JvpRuleRef {
 public:
  template <class F>
  JvpRuleRef(F& f) noexcept  // NOLINT(google-explicit-constructor)
      : object_(static_cast<void*>(&f)), call_([](void* o, Tangents t) -> Tensor { return (*static_cast<F*>(o))(t); }) {}
  Tensor operator()(Tangents t) const { return call_(object_, t); }

 private:
  void* object_;
  Tensor (*call_)(void*, Tangents);
};

void compute_jvp(const char* op, const Tensor& out, std::span<const Tensor* const> inputs, JvpRuleRef rule,
                 JvpBatching batching);
void compute_jvp_list(const char* op, const Tensor& out, const std::vector<Tensor>& inputs, JvpRuleRef rule,
                      JvpBatching batching);

// Gives `out` its tangent from the inputs' tangents by `rule`, when a dual level is open and some input
// carries a tangent. Costs one branch otherwise.
template <class Rule>
inline void record_jvp(const char* op, const Tensor& out, std::initializer_list<const Tensor*> inputs, Rule&& rule,
                       JvpBatching batching = JvpBatching::Loop) {
  if (!forward_ad_enabled()) [[likely]]
    return;
  compute_jvp(op, out, std::span<const Tensor* const>(inputs.begin(), inputs.size()), JvpRuleRef(rule), batching);
}
// The same for ops over a list of tensors (cat, stack).
template <class Rule>
inline void record_jvp_list(const char* op, const Tensor& out, const std::vector<Tensor>& inputs, Rule&& rule,
                            JvpBatching batching = JvpBatching::Loop) {
  if (!forward_ad_enabled()) [[likely]]
    return;
  compute_jvp_list(op, out, inputs, JvpRuleRef(rule), batching);
}

// A custom Function's outputs' tangents by its jvp (null: the error naming the Function), from the
// tangents of its Tensor inputs (zeros where an input carries none).
using CustomJvp = std::vector<Tensor> (*)(autograd::AutogradContext*, std::vector<Tensor>);
void apply_custom_jvp(const std::string& name, CustomJvp jvp, autograd::AutogradContext* ctx,
                      const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs);

}  // namespace xgrad::detail

#include "../forward_ad.hpp"

namespace xgrad::detail {
class BatchedDualLevel : public autograd::forward_ad::DualLevel {
 public:
  explicit BatchedDualLevel(std::int64_t batch) : DualLevel(Batched{batch}) {}
};
}  // namespace xgrad::detail
