// The table's shared pieces: check names, sample value makers, and the table itself, assembled once
// from the families (op_table_<family>.cpp).
#include "op_table.hpp"

#include <algorithm>
#include <stdexcept>

namespace xgrad::test::optable {

const char* check_name(Check c) {
  switch (c) {
    case Check::Forward: return "forward";
    case Check::Gradcheck: return "gradcheck";
    case Check::Gradgradcheck: return "gradgradcheck";
    case Check::FusedVsFormula: return "fused vs formula";
    case Check::Empty: return "0-element inputs";
    case Check::DtypeMismatch: return "dtype mismatch";
    case Check::NoGrad: return "no-grad path";
    case Check::ForwardAD: return "forward AD";
    case Check::FwdOverRev: return "forward over reverse";
    case Check::RevOverFwd: return "reverse over forward";
    case Check::BatchedJvp: return "batched jvp";
  }
  return "?";
}

bool OpInfo::differentiable_input(std::size_t i) const {
  return std::find(nondiff_inputs.begin(), nondiff_inputs.end(), i) == nondiff_inputs.end();
}

OpInfo& not_differentiable(OpInfo& op, const std::string& why) {
  op.differentiable = false;
  for (Check c : {Check::Gradcheck, Check::Gradgradcheck, Check::FusedVsFormula, Check::ForwardAD, Check::FwdOverRev,
                  Check::RevOverFwd, Check::BatchedJvp})
    op.skip[c] = why;
  return op;
}

std::map<Check, std::string> at_kink(const std::string& why) {
  return {{Check::Gradcheck, why}, {Check::Gradgradcheck, why}};
}

const std::vector<OpInfo>& op_table() {
  static const std::vector<OpInfo> table = [] {
    std::vector<OpInfo> t;
    // Each family draws from its own seed, so adding an entry to one leaves the others' values alone.
    manual_seed(101);
    add_arithmetic_ops(t);
    manual_seed(202);
    add_elementwise_ops(t);
    manual_seed(303);
    add_reduction_ops(t);
    manual_seed(404);
    add_linalg_shape_ops(t);
    manual_seed(505);
    add_nn_ops(t);
    manual_seed(606);
    add_layer_ops(t);
    return t;
  }();
  return table;
}

Tensor normal(const Shape& shape) { return randn(shape, kFloat64); }

Tensor positive(const Shape& shape, double lo, double hi) { return rand(shape, kFloat64) * (hi - lo) + lo; }

Tensor away_from(const Shape& shape, double kink, double margin) {
  Tensor t = randn(shape, kFloat64);
  for (double& v : t.data<double>()) v = kink + (v >= 0 ? v + margin : v - margin);
  return t;
}

Tensor values(const Shape& shape, const std::vector<double>& v) {
  Tensor t = zeros(shape, kFloat64);
  if (t.numel() != v.size()) throw std::logic_error("op table: values() given the wrong number of values");
  std::copy(v.begin(), v.end(), t.data<double>().begin());
  return t;
}

Tensor classes(const Shape& shape, int n) { return randint(0, n, shape, kFloat64); }

}  // namespace xgrad::test::optable
