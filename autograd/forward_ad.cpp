// Forward-mode AD: dual levels, make_dual / unpack_dual, and the machinery behind record_jvp.
#include "forward_ad.hpp"

#include <mutex>

#include "detail/op_support.hpp"

namespace xgrad {

using namespace detail;

namespace {

// Tensors that received a tangent while the level was open, so that closing it drops them all (a
// tangent must not outlive its level: it would keep memory and, worse, reappear in a later level).
struct LevelState {
  std::mutex mutex;
  std::vector<std::weak_ptr<TensorImpl>> duals;
  std::int64_t batch = 0;
  std::uint64_t next_id = 1;
};
LevelState& level_state() {
  static LevelState state;
  return state;
}

std::uint64_t current_level() noexcept { return forward_level.load(std::memory_order_relaxed); }

// The gradient passes through unchanged: make_dual and unpack_dual's primal are views of their input.
struct PassThroughBackward final : OpNode {
  using OpNode::OpNode;
  autograd::TensorList apply(autograd::TensorList&& g) override { return {std::move(g[0])}; }
};

// A new handle on `t`'s value that is differentiable with respect to `t` (identity backward).
Tensor differentiable_alias(const Tensor& t, const char* name) {
  Tensor out = share_storage(t);
  record<PassThroughBackward>(out, {&t}, name);
  return out;
}

// Runs a rule with tangent propagation off on this thread (the rule's ops act on primals and
// tangents, and must not compute tangents of their own).
class RuleScope {
 public:
  RuleScope() noexcept : previous_(jvp_rule_running) { jvp_rule_running = true; }
  ~RuleScope() { jvp_rule_running = previous_; }
  RuleScope(const RuleScope&) = delete;
  RuleScope& operator=(const RuleScope&) = delete;

 private:
  bool previous_;
};

Tensor select_batch_entry(const Tensor& t, std::int64_t b) {
  if (!t.defined()) return t;
  return squeeze(slice(t, 0, b, b + 1), 0);
}

Tensor run_rule(const char* op, const Tensor& out, std::vector<Tensor>& tangents, const std::vector<Tensor>& primals,
                JvpRuleRef rule, JvpBatching batching) {
  const std::int64_t batch = tangent_batch();
  RuleScope scope;
  if (batch == 0 || batching == JvpBatching::Aware) return rule(Tangents(tangents));
  // A rule written for one tangent, run per batch entry (correct for every op; the ops that matter for
  // speed are batch-aware).
  std::vector<Tensor> results;
  results.reserve(static_cast<std::size_t>(batch));
  std::vector<Tensor> entry(tangents.size());
  bool any = false;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::size_t i = 0; i < tangents.size(); ++i) entry[i] = select_batch_entry(tangents[i], b);
    // The per-entry rule sees an unbatched level.
    Tensor r;
    {
      struct Unbatch {
        std::int64_t saved;
        Unbatch() : saved(level_state().batch) { level_state().batch = 0; }
        ~Unbatch() { level_state().batch = saved; }
      } unbatch;
      r = rule(Tangents(entry));
    }
    any |= r.defined();
    results.push_back(std::move(r));
  }
  if (!any) return Tensor();
  for (Tensor& r : results)
    if (!r.defined()) r = zeros(out.shape(), out.dtype());
  (void)op;
  (void)primals;
  return stack(results, 0);
}

void finish_jvp(const char* op, const Tensor& out, std::vector<Tensor>& tangents, const std::vector<Tensor>& primals,
                JvpRuleRef rule, JvpBatching batching) {
  Tensor result = run_rule(op, out, tangents, primals, rule, batching);
  if (!result.defined()) return;
  Shape expected = out.shape();
  if (const std::int64_t batch = tangent_batch()) expected.insert(expected.begin(), static_cast<std::size_t>(batch));
  if (result.shape() != expected || result.dtype() != out.dtype())
    fail(op, ": internal error: its JVP rule gave a tangent of shape ", shape_str(result.shape()), " (",
         result.dtype(), ") for an output of tangent shape ", shape_str(expected), " (", out.dtype(), ")");
  set_tangent(out, std::move(result));
}

}  // namespace

// ---- detail ----------------------------------------------------------------------------------------
namespace detail {

Tensor tangent_of(const Tensor& t) noexcept {
  if (!t.defined()) return Tensor();
  const ForwardGrad* fw = t.impl()->fw.get();
  const std::uint64_t level = current_level();
  if (!fw || level == 0 || fw->level != level) return Tensor();
  return fw->tangent;
}

void set_tangent(const Tensor& t, Tensor tangent) {
  const std::uint64_t level = current_level();
  if (level == 0) fail("forward AD: no dual level is open");
  TensorImpl& impl = *t.impl();
  if (!impl.fw) impl.fw = std::make_unique<ForwardGrad>();
  ForwardGrad& fw = *impl.fw;
  fw.tangent = std::move(tangent);
  fw.level = level;
  if (fw.for_savers) {
    fw.for_savers->value = fw.tangent.defined() ? share_storage(fw.tangent) : Tensor();
    fw.for_savers->level = level;
  }
  LevelState& state = level_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  state.duals.push_back(t.impl_ptr());
}

std::int64_t tangent_batch() noexcept { return current_level() ? level_state().batch : 0; }

std::shared_ptr<SavedTangent> tangent_box_for_saving(const Tensor& out) {
  TensorImpl& impl = *out.impl();
  if (!impl.fw) impl.fw = std::make_unique<ForwardGrad>();
  ForwardGrad& fw = *impl.fw;
  if (!fw.for_savers) {
    fw.for_savers = std::make_shared<SavedTangent>();
    if (fw.tangent.defined()) {
      fw.for_savers->value = share_storage(fw.tangent);
      fw.for_savers->level = fw.level;
    }
  }
  return fw.for_savers;
}

Tensor saved_tangent(const SavedTangent* box) noexcept {
  const std::uint64_t level = current_level();
  if (!box || level == 0 || box->level != level) return Tensor();
  return box->value;
}

Tensor output_alias(const Tensor& out) {
  const TensorImpl& impl = *out.impl();
  auto alias = std::make_shared<TensorImpl>(impl.storage, impl.dtype);
  alias->grad_fn = impl.grad_fn;
  alias->output_nr = impl.output_nr;
  alias->requires_grad = impl.requires_grad;
  // A leaf output (an op run without recording) shares no accumulator: rules never backprop into it.
  return Tensor(std::move(alias));
}

Tensor zero_tangent(const Tensor& primal) {
  Shape s = primal.shape();
  if (const std::int64_t batch = tangent_batch()) s.insert(s.begin(), static_cast<std::size_t>(batch));
  return zeros(s, primal.dtype());
}

Tensor add_tangents(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return add(a, b);
}

int tangent_dim(std::int64_t dim, std::size_t rank) {
  const std::size_t d = wrap_dim("forward AD", dim, rank);
  return static_cast<int>(d) + (tangent_batch() ? 1 : 0);
}

Tensor align_tangent(const Tensor& t, std::size_t out_rank) {
  const std::int64_t batch = tangent_batch();
  if (!t.defined() || batch == 0) return t;
  const Shape s = t.shape();  // [B, primal...]
  const std::size_t rank = s.size() - 1;
  if (rank >= out_rank) return t;
  std::vector<std::int64_t> dims;
  dims.reserve(out_rank + 1);
  dims.push_back(batch);
  dims.insert(dims.end(), out_rank - rank, 1);
  dims.insert(dims.end(), s.begin() + 1, s.end());
  return reshape(t, dims);
}

Tensor expand_tangent(const Tensor& t, const Shape& shape) {
  if (!t.defined()) return t;
  std::vector<std::int64_t> target = tangent_shape(shape);
  Tensor aligned = align_tangent(t, shape.size());
  if (aligned.shape() == Shape(target.begin(), target.end())) return aligned;
  return expand(aligned, target);
}

std::vector<std::int64_t> tangent_shape(const Shape& dims) {
  std::vector<std::int64_t> s;
  s.reserve(dims.size() + 1);
  if (const std::int64_t batch = tangent_batch()) s.push_back(batch);
  s.insert(s.end(), dims.begin(), dims.end());
  return s;
}

void compute_jvp(const char* op, const Tensor& out, std::span<const Tensor* const> inputs, JvpRuleRef rule,
                 JvpBatching batching) {
  std::vector<Tensor> tangents;
  tangents.reserve(inputs.size());
  bool any = false;
  for (const Tensor* in : inputs) {
    tangents.push_back(in ? tangent_of(*in) : Tensor());
    any |= tangents.back().defined();
  }
  if (!any || !out.defined()) return;
  finish_jvp(op, out, tangents, {}, rule, batching);
}

void compute_jvp_list(const char* op, const Tensor& out, const std::vector<Tensor>& inputs, JvpRuleRef rule,
                      JvpBatching batching) {
  std::vector<Tensor> tangents;
  tangents.reserve(inputs.size());
  bool any = false;
  for (const Tensor& in : inputs) {
    tangents.push_back(tangent_of(in));
    any |= tangents.back().defined();
  }
  if (!any || !out.defined()) return;
  finish_jvp(op, out, tangents, {}, rule, batching);
}

void apply_custom_jvp(const std::string& name, CustomJvp jvp, autograd::AutogradContext* ctx,
                      const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) {
  if (!jvp)
    fail(name, ": forward-mode AD through this custom Function needs a static jvp(AutogradContext*, "
         "std::vector<Tensor> input_tangents) returning the outputs' tangents, and it defines none");
  std::vector<Tensor> tangents;
  tangents.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    Tensor t = tangent_of(in);
    tangents.push_back(t.defined() || !in.defined() ? t : zero_tangent(in));
  }
  const std::int64_t batch = tangent_batch();
  std::vector<Tensor> result;
  {
    RuleScope scope;
    if (batch == 0) {
      result = jvp(ctx, tangents);
    } else {
      // The Function's rule is written for one tangent: run it per batch entry and stack.
      std::vector<std::vector<Tensor>> per_entry;
      for (std::int64_t b = 0; b < batch; ++b) {
        std::vector<Tensor> entry(tangents.size());
        for (std::size_t i = 0; i < tangents.size(); ++i) entry[i] = select_batch_entry(tangents[i], b);
        LevelState& state = level_state();
        state.batch = 0;
        try {
          per_entry.push_back(jvp(ctx, std::move(entry)));
        } catch (...) {
          state.batch = batch;
          throw;
        }
        state.batch = batch;
      }
      result.resize(per_entry.empty() ? outputs.size() : per_entry[0].size());
      for (std::size_t k = 0; k < result.size() && k < outputs.size(); ++k) {
        std::vector<Tensor> parts;
        bool any = false;
        for (auto& e : per_entry) {
          any |= k < e.size() && e[k].defined();
          parts.push_back(k < e.size() && e[k].defined() ? e[k] : zeros(outputs[k].shape(), outputs[k].dtype()));
        }
        if (any) result[k] = stack(parts, 0);
      }
    }
  }
  if (result.size() != outputs.size())
    fail(name, ": jvp returned ", result.size(), " tangents for ", outputs.size(), " outputs");
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    if (!result[k].defined()) continue;
    Shape expected = outputs[k].shape();
    if (batch) expected.insert(expected.begin(), static_cast<std::size_t>(batch));
    if (result[k].shape() != expected || result[k].dtype() != outputs[k].dtype())
      fail(name, ": jvp returned a tangent of shape ", shape_str(result[k].shape()), " (", result[k].dtype(),
           ") for output ", k, " of shape ", shape_str(outputs[k].shape()), " (", outputs[k].dtype(), ")");
    set_tangent(outputs[k], std::move(result[k]));
  }
}

}  // namespace detail

// ---- Public API --------------------------------------------------------------------------------------
namespace autograd::forward_ad {

DualLevel::DualLevel() : DualLevel(Batched{0}) {}

DualLevel::DualLevel(Batched b) {
  if (b.batch < 0) fail("DualLevel: batch size ", b.batch, " is negative");
  LevelState& state = level_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (current_level() != 0)
    fail("DualLevel: a dual level is already open; nested forward-mode levels are not supported (as in PyTorch)");
  state.batch = b.batch;
  state.duals.clear();
  forward_level.store(state.next_id++, std::memory_order_relaxed);
}

DualLevel::~DualLevel() {
  LevelState& state = level_state();
  std::vector<std::weak_ptr<TensorImpl>> duals;
  {
    std::lock_guard<std::mutex> lock(state.mutex);
    duals.swap(state.duals);
    forward_level.store(0, std::memory_order_relaxed);
    state.batch = 0;
  }
  // Outside the lock: dropping tangents may destroy graphs.
  for (auto& weak : duals)
    if (auto impl = weak.lock()) impl->fw.reset();
}

Tensor make_dual(const Tensor& primal, const Tensor& tangent) {
  if (!primal.defined()) fail("make_dual: the primal is an undefined tensor");
  if (!tangent.defined()) fail("make_dual: the tangent is an undefined tensor");
  if (current_level() == 0)
    fail("make_dual: no dual level is open; create an autograd::forward_ad::DualLevel first");
  const std::int64_t batch = tangent_batch();
  Shape expected = primal.shape();
  if (batch) expected.insert(expected.begin(), static_cast<std::size_t>(batch));
  if (tangent.shape() != expected)
    fail("make_dual: the tangent's shape ", shape_str(tangent.shape()), " does not match the primal's shape ",
         shape_str(primal.shape()), batch ? " (with the level's batch dimension in front)" : "");
  if (tangent.dtype() != primal.dtype())
    fail("make_dual: the tangent is ", tangent.dtype(), " but the primal is ", primal.dtype(),
         " (convert with to())");
  Tensor out = differentiable_alias(primal, "MakeDualBackward");
  set_tangent(out, tangent);
  return out;
}

UnpackedDual unpack_dual(const Tensor& t) {
  if (!t.defined()) fail("unpack_dual: undefined tensor");
  Tensor tangent = tangent_of(t);
  // The primal is a view without the tangent; while the level is open, ops on it see no tangent.
  Tensor primal = differentiable_alias(t, "UnpackDualBackward");
  return {std::move(primal), std::move(tangent)};
}

}  // namespace autograd::forward_ad
}  // namespace xgrad
