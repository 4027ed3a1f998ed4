// Op table: + - * / (tensor and scalar forms, rsub, rdiv), neg, and the comparisons.
#include "op_table.hpp"

namespace xgrad::test::optable {

namespace {

// Broadcasting patterns for a binary op; `rhs` makes the second operand (a denominator stays away from 0).
std::vector<Sample> binary_samples(Tensor (*rhs)(const Shape&)) {
  return {
      {"same shape [2,3]", {normal({2, 3}), rhs({2, 3})}},
      {"same shape [5,7] (long enough for the vectorised loops)", {normal({5, 7}), rhs({5, 7})}},
      {"[5,7] with [7]", {normal({5, 7}), rhs({7})}},
      {"[2,3] with [3]", {normal({2, 3}), rhs({3})}},
      {"[3,1] with [1,4]", {normal({3, 1}), rhs({1, 4})}},
      {"[2,1,3] with [4,1]", {normal({2, 1, 3}), rhs({4, 1})}},
      {"0-d with [2,3]", {normal({}), rhs({2, 3})}},
      {"[2,3] with 0-d", {normal({2, 3}), rhs({})}},
      {"both 0-d", {normal({}), rhs({})}},
  };
}

std::vector<EmptySample> binary_empty() {
  return {
      {"[0,3] with [0,3]", {zeros({0, 3}, kFloat64), zeros({0, 3}, kFloat64)}, {0, 3}},
      {"[0,3] with [3]", {zeros({0, 3}, kFloat64), ones({3}, kFloat64)}, {0, 3}},
      {"[2,1] with [0]", {ones({2, 1}, kFloat64), zeros({0}, kFloat64)}, {2, 0}},
      {"[0,3] with 0-d", {zeros({0, 3}, kFloat64), ones({}, kFloat64)}, {0, 3}},
  };
}

Tensor nonzero(const Shape& s) { return away_from(s, 0.0, 0.5); }

std::vector<Sample> unary_samples(Tensor (*make)(const Shape&)) {
  return {{"[2,3]", {make({2, 3})}}, {"0-d", {make({})}}, {"[2,1,3]", {make({2, 1, 3})}}, {"[5,7]", {make({5, 7})}}};
}
std::vector<EmptySample> unary_empty() {
  return {{"[0,3]", {zeros({0, 3}, kFloat64)}, {0, 3}}, {"[2,0,1]", {zeros({2, 0, 1}, kFloat64)}, {2, 0, 1}}};
}

// One entry per scalar form: the scalar varies with the sample (0.7 and -2.5; the divisor is never 0).
OpInfo scalar_op(const std::string& decl, const std::string& name, Tensor (*f)(const Tensor&, double), Tensor (*make)(const Shape&)) {
  OpInfo op{decl, name, {}, {}, unary_empty()};
  for (double s : {0.7, -2.5}) {
    OpFn fn = [f, s](const std::vector<Tensor>& v) { return f(v[0], s); };
    op.samples.push_back({"[2,3], scalar " + std::to_string(s), {make({2, 3})}, fn});
    op.samples.push_back({"0-d, scalar " + std::to_string(s), {make({})}, fn});
    op.samples.push_back({"[5,7] (vectorised loops), scalar " + std::to_string(s), {make({5, 7})}, fn});
  }
  op.fn = op.samples[0].fn;
  return op;
}

}  // namespace

void add_arithmetic_ops(std::vector<OpInfo>& table) {
  const auto two = [](Tensor (*f)(const Tensor&, const Tensor&)) {
    return [f](const std::vector<Tensor>& v) { return f(v[0], v[1]); };
  };
  table.push_back({"add(Tensor, Tensor)", "add", two(add), binary_samples(normal), binary_empty()});
  table.push_back({"sub(Tensor, Tensor)", "sub", two(sub), binary_samples(normal), binary_empty()});
  table.push_back({"mul(Tensor, Tensor)", "mul", two(mul), binary_samples(normal), binary_empty()});
  table.back().samples.push_back({"the same tensor twice", {normal({2, 3})}, [](const auto& v) { return mul(v[0], v[0]); }});
  table.push_back({"div(Tensor, Tensor)", "div", two(div), binary_samples(nonzero), binary_empty()});

  table.push_back(scalar_op("add(Tensor, double)", "add", add, normal));
  table.push_back(scalar_op("sub(Tensor, double)", "sub", sub, normal));
  table.push_back(scalar_op("mul(Tensor, double)", "mul", mul, normal));
  table.push_back(scalar_op("div(Tensor, double)", "div", div, normal));
  table.push_back(scalar_op("rsub(Tensor, double)", "rsub", rsub, normal));
  table.push_back(scalar_op("rdiv(Tensor, double)", "rdiv", rdiv, nonzero));
  table.push_back({"neg(Tensor)", "neg", [](const auto& v) { return neg(v[0]); }, unary_samples(normal), unary_empty()});

  // Comparisons: 0/1 values, no gradient. Values with exact ties (representable in float32 too), so
  // each comparison sees <, == and >.
  const Tensor lhs = values({2, 3}, {1, 2, 3, -4, 5, 0.5}), rhs = values({2, 3}, {1, 0, 3, 4, -5, 0.5});
  const std::vector<Sample> cmp_samples{
      {"ties [2,3] with [2,3]", {lhs, rhs}},
      {"[2,3] with [3]", {lhs, values({3}, {1, 2, 0})}},
      {"0-d with [2,3]", {values({}, {3}), rhs}},
  };
  using Cmp = Tensor (*)(const Tensor&, const Tensor&);
  using CmpScalar = Tensor (*)(const Tensor&, double);
  const std::vector<std::tuple<const char*, Cmp, CmpScalar>> cmps{
      {"eq", eq, eq}, {"ne", ne, ne}, {"lt", lt, lt}, {"le", le, le}, {"gt", gt, gt}, {"ge", ge, ge}};
  for (const auto& [name, f, fs] : cmps) {
    OpInfo op{std::string(name) + "(Tensor, Tensor)", name, two(f), cmp_samples, binary_empty()};
    table.push_back(not_differentiable(op, "a comparison: piecewise constant, no gradient (as in PyTorch)"));
    OpInfo ops{std::string(name) + "(Tensor, double)", name, [fs = fs](const auto& v) { return fs(v[0], 3.0); },
               {{"ties [2,3] with 3", {lhs}}, {"0-d with 3", {values({}, {3})}},
                {"[2,3] with 0.5", {lhs}, [fs = fs](const auto& v) { return fs(v[0], 0.5); }}},
               unary_empty()};
    table.push_back(not_differentiable(ops, "a comparison: piecewise constant, no gradient (as in PyTorch)"));
  }
}

}  // namespace xgrad::test::optable
