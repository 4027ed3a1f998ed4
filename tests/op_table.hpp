// The op table: one entry per public op overload (autograd/ops.hpp, autograd/ops/*.hpp,
// nn/functional.hpp), in the spirit of PyTorch's OpInfo. Each entry names the declaration it covers,
// the callable, its sample inputs (broadcasting patterns, dims incl. negative ones, keepdim, edge
// values), its 0-element samples, and which generic checks do not apply and why. test_op_table.cpp
// runs every check over every entry, in float32 and float64.
//
// Adding an op = its source file, one entry here (in the family's op_table_<family>.cpp) and its own
// value tests. Adding a check (a column) = one value of `Check`, one TEST_CASE in test_op_table.cpp,
// and a `skip` reason on the entries it cannot apply to.
//
// Lambdas here capture structured bindings by init-capture (`[f = f]`): the sanitizer build's clang 14
// cannot capture a structured binding by name.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <xgrad.hpp>

namespace xgrad::test::optable {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// The generic checks (columns of the table).
enum class Check {
  Forward,         // runs in float32 and float64, result in the inputs' dtype, float32 ≈ float64
  Gradcheck,       // first derivatives against finite differences (float64, default tolerances)
  Gradgradcheck,   // second derivatives likewise
  FusedVsFormula,  // fused backward kernel == Tensor-op formula (create_graph), bit for bit, both dtypes
  Empty,           // 0-element inputs: forward shape as PyTorch, 0-element gradients, or an xgrad::Error
  DtypeMismatch,   // mixing float32 and float64 tensor inputs throws an Error naming the op
  NoGrad,          // under NoGradGuard (or with no input requiring grad) nothing is recorded
  // Forward mode (autograd/forward_ad.hpp), float64, on every sample of a differentiable entry:
  ForwardAD,   // forward-mode Jacobian columns vs finite differences (where Gradcheck applies), and
               // <u, J·v> (one jvp) == <Jᵀ·u, v> (one vjp) for random u, v on every sample
  FwdOverRev,  // gradgradcheck with check_forward_ad: jvps of the backward pass (where Gradgradcheck applies)
  RevOverFwd,  // gradcheck of (x, v) -> jvp(x; v), i.e. reverse mode through the tangent (likewise)
  BatchedJvp,  // a batched level with 3 tangents per input == the 3 single jvps stacked
};
const char* check_name(Check c);

// One set of inputs. Values are float64; each check converts them to the dtype it runs in. `fn`, when
// set, replaces the entry's callable for this sample: that is how non-tensor arguments (dims,
// keepdim, a scalar, transpose flags, a reduction) vary from sample to sample.
struct Sample {
  std::string name;
  std::vector<Tensor> inputs;
  OpFn fn = {};
  // Checks this sample leaves out, with the reason (e.g. an edge value at a kink).
  std::map<Check, std::string> skip = {};
  bool applies(Check c) const { return !skip.contains(c); }
};

// A sample with a 0-element input: the result's shape, or (when `error` is set) the xgrad::Error that
// PyTorch's refusal becomes here; the message must contain `error`.
struct EmptySample {
  std::string name;
  std::vector<Tensor> inputs;
  Shape expected;
  std::string error = {};
  OpFn fn = {};
};

struct OpInfo {
  // The declaration covered, as the coverage guard normalises it from the headers: the name and the
  // parameter types without names, defaults, const or &, e.g. "sum(Tensor, std::vector<int>, bool)".
  std::string decl;
  // The name every xgrad::Error of this op starts with ("add" for add and a + b).
  std::string error_name;
  OpFn fn;
  std::vector<Sample> samples;
  std::vector<EmptySample> empty_samples;
  // Tensor inputs that take no gradient (class targets, indices, a condition): never requires_grad.
  std::vector<std::size_t> nondiff_inputs = {};
  // Checks that do not apply, each with the reason.
  std::map<Check, std::string> skip = {};
  // Whether the op records a gradient at all (comparisons, sign, argmax do not).
  bool differentiable = true;

  bool applies(Check c) const { return !skip.contains(c); }
  bool differentiable_input(std::size_t i) const;
  const OpFn& fn_of(const Sample& s) const { return s.fn ? s.fn : fn; }
  const OpFn& fn_of(const EmptySample& s) const { return s.fn ? s.fn : fn; }
};

// Reasons shared by many entries.
// Marks the op as recording no gradient and skips every derivative check with `why`.
OpInfo& not_differentiable(OpInfo& op, const std::string& why);

// A sample at a kink (or the end of the domain): no derivative there, so the finite-difference checks
// leave it out; the others (fused vs formula above all) run, since kinks are where the two paths may
// part.
std::map<Check, std::string> at_kink(const std::string& why = "at a kink: the derivative does not exist there");

// The whole table, built once (seeded, so the same values every run).
const std::vector<OpInfo>& op_table();

// Families, one file each (op_table_<family>.cpp), called by op_table().
void add_arithmetic_ops(std::vector<OpInfo>& table);
void add_elementwise_ops(std::vector<OpInfo>& table);
void add_reduction_ops(std::vector<OpInfo>& table);
void add_linalg_shape_ops(std::vector<OpInfo>& table);
void add_nn_ops(std::vector<OpInfo>& table);
void add_layer_ops(std::vector<OpInfo>& table);  // autograd/layer_ops.hpp

// ---- Sample values (float64, no grad) ------------------------------------------------------------
Tensor normal(const Shape& shape);                                 // standard normal
Tensor positive(const Shape& shape, double lo = 0.5, double hi = 2);  // uniform in [lo, hi)
// Standard normal pushed at least `margin` away from `kink` (for abs, relu, clamp... at their kinks).
Tensor away_from(const Shape& shape, double kink, double margin = 0.2);
// Values one by one (row-major), for edge values.
Tensor values(const Shape& shape, const std::vector<double>& v);
// Class indices in [0, classes), as float64 values.
Tensor classes(const Shape& shape, int classes);

}  // namespace xgrad::test::optable
