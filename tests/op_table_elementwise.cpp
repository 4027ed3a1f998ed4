// Op table: elementwise math (unary functions, pow forms, clamp forms, maximum/minimum, where).
// Sample points sit away from kinks (abs, relu, clamp bounds, maximum ties) so finite differences see a
// derivative; edge values (saturation, large magnitudes) get their own samples.
#include "op_table.hpp"

namespace xgrad::test::optable {

namespace {

std::vector<EmptySample> unary_empty() {
  return {{"[0,3]", {zeros({0, 3}, kFloat64)}, {0, 3}}, {"[2,0,1]", {zeros({2, 0, 1}, kFloat64)}, {2, 0, 1}}};
}

// An entry for f(x) with samples of [2,3], 0-d and [2,1,3] drawn by `make`.
OpInfo unary(const std::string& name, OpFn fn, Tensor (*make)(const Shape&)) {
  return {name + "(Tensor)", name, std::move(fn),
          {{"[2,3]", {make({2, 3})}}, {"0-d", {make({})}}, {"[2,1,3]", {make({2, 1, 3})}},
           {"[5,7] (long enough for the vectorised loops)", {make({5, 7})}}},
          unary_empty()};
}

Tensor pos(const Shape& s) { return positive(s); }
Tensor off_zero(const Shape& s) { return away_from(s, 0.0); }

}  // namespace

void add_elementwise_ops(std::vector<OpInfo>& table) {
  table.push_back(unary("exp", [](const auto& v) { return exp(v[0]); }, normal));
  table.back().samples.push_back({"edge: large magnitudes", {values({4}, {-30, -5, 5, 20})}});
  table.push_back(unary("log", [](const auto& v) { return log(v[0]); }, pos));
  table.back().samples.push_back({"edge: small and large", {values({3}, {1e-3, 1, 1e3})}});
  table.back().samples.push_back({"edge: 0 (log 0 = -inf)", {values({2}, {0, 2})}, {}, at_kink()});
  table.push_back(unary("sqrt", [](const auto& v) { return sqrt(v[0]); }, pos));
  table.back().samples.push_back({"edge: 0 (infinite slope)", {values({3}, {0, 1e-300, 4})}, {}, at_kink()});
  table.push_back(unary("abs", [](const auto& v) { return abs(v[0]); }, off_zero));
  table.back().samples.push_back({"edge: zeros", {values({3}, {0, -0.0, -1})}, {}, at_kink()});
  table.push_back(unary("sign", [](const auto& v) { return sign(v[0]); }, normal));
  table.back().samples.push_back({"edge: zeros", {values({3}, {0, -0.0, 2})}});
  not_differentiable(table.back(), "piecewise constant: no gradient (PyTorch's is 0, here the op records none)");
  table.push_back(unary("tanh", [](const auto& v) { return tanh(v[0]); }, normal));
  table.back().samples.push_back({"edge: saturated", {values({4}, {-20, -4, 4, 20})}});
  table.push_back(unary("sigmoid", [](const auto& v) { return sigmoid(v[0]); }, normal));
  table.back().samples.push_back({"edge: saturated", {values({4}, {-30, -8, 8, 30})}});
  table.push_back(unary("relu", [](const auto& v) { return relu(v[0]); }, off_zero));
  table.back().samples.push_back({"edge: zeros", {values({3}, {0, -0.0, 1})}, {}, at_kink()});
  table.push_back(unary("sin", [](const auto& v) { return sin(v[0]); }, normal));
  table.push_back(unary("cos", [](const auto& v) { return cos(v[0]); }, normal));

  {
    OpInfo op = unary("leaky_relu", [](const auto& v) { return leaky_relu(v[0]); }, off_zero);
    op.decl = "leaky_relu(Tensor, double)";
    op.samples.push_back({"slope 0.2", {off_zero({2, 3})}, [](const auto& v) { return leaky_relu(v[0], 0.2); }});
    op.samples.push_back({"slope -1.5", {off_zero({2, 3})}, [](const auto& v) { return leaky_relu(v[0], -1.5); }});
    op.samples.push_back({"edge: zeros", {values({3}, {0, -0.0, 1})}, [](const auto& v) { return leaky_relu(v[0], 0.2); },
                          at_kink()});
    table.push_back(std::move(op));
  }

  // pow: exponent 2 (its own kernel), 3, 0.5 on positive bases, 0 and 1 (special formulas), -1.5.
  {
    OpInfo op = unary("pow", [](const auto& v) { return pow(v[0], 3.0); }, off_zero);
    op.decl = "pow(Tensor, double)";
    for (double e : {2.0, 0.5, 0.0, 1.0, -1.5})
      op.samples.push_back({"exponent " + std::to_string(e), {pos({2, 3})}, [e](const auto& v) { return pow(v[0], e); }});
    op.samples.push_back({"exponent 2, negative bases", {normal({2, 3})}, [](const auto& v) { return pow(v[0], 2.0); }});
    op.samples.push_back({"edge: base 0, exponent 3", {values({2}, {0, 1})}, {}, at_kink()});
    table.push_back(std::move(op));
  }
  table.push_back({"pow(Tensor, Tensor)", "pow", [](const auto& v) { return pow(v[0], v[1]); },
                   {{"same shape", {pos({2, 3}), normal({2, 3})}},
                    {"[5,7] (vectorised loops)", {pos({5, 7}), normal({5, 7})}},
                    {"[2,3] with [3]", {pos({2, 3}), normal({3})}},
                    {"0-d base with [2,3]", {pos({}), normal({2, 3})}},
                    {"[2,1] with [1,3]", {pos({2, 1}), normal({1, 3})}}},
                   {{"[0,3] with [0,3]", {zeros({0, 3}, kFloat64), zeros({0, 3}, kFloat64)}, {0, 3}},
                    {"[0,3] with [3]", {ones({0, 3}, kFloat64), ones({3}, kFloat64)}, {0, 3}}}});
  {
    OpInfo op = unary("pow", [](const auto& v) { return pow(2.0, v[0]); }, normal);
    op.decl = "pow(double, Tensor)";
    op.samples.push_back({"base 0.3", {normal({2, 3})}, [](const auto& v) { return pow(0.3, v[0]); }});
    op.samples.push_back({"base 0, positive exponents", {pos({2, 3})}, [](const auto& v) { return pow(0.0, v[0]); }});
    table.push_back(std::move(op));
  }

  // clamp forms: samples stay 0.2 away from the bounds (-0.5 and 0.8).
  {
    // Below, between and above the bounds, each at least 0.2 from them.
    OpInfo op = unary("clamp", [](const auto& v) { return clamp(v[0], -0.5, 0.8); }, normal);
    op.samples = {{"[2,3] around [-0.5, 0.8]", {values({2, 3}, {-1.2, -0.3, 0.1, 0.55, 1.0, 2.5})}},
                  {"0-d inside", {values({}, {0.3})}},
                  {"0-d above", {values({}, {1.7})}}};
    op.decl = "clamp(Tensor, double, double)";
    op.samples.push_back({"lo == hi", {normal({2, 3})}, [](const auto& v) { return clamp(v[0], 0.25, 0.25); }});
    op.samples.push_back({"edge: at the bounds", {values({3}, {-0.5, 0.8, 0})}, {}, at_kink()});
    table.push_back(std::move(op));
  }
  {
    OpInfo op = unary("clamp_min", [](const auto& v) { return clamp_min(v[0], -0.3); },
                      [](const Shape& s) { return away_from(s, -0.3); });
    op.decl = "clamp_min(Tensor, double)";
    op.samples.push_back({"edge: at the bound", {values({2}, {-0.3, 1})}, {}, at_kink()});
    table.push_back(std::move(op));
  }
  {
    OpInfo op = unary("clamp_max", [](const auto& v) { return clamp_max(v[0], 0.4); },
                      [](const Shape& s) { return away_from(s, 0.4); });
    op.decl = "clamp_max(Tensor, double)";
    op.samples.push_back({"edge: at the bound", {values({2}, {0.4, -1})}, {}, at_kink()});
    table.push_back(std::move(op));
  }

  // maximum / minimum: b = a ± at least 0.2, so no ties (a tie is a kink).
  const auto apart = [](const Tensor& a) { return a + away_from(a.shape(), 0.0); };
  for (const auto& [name, f] : {std::pair<std::string, Tensor (*)(const Tensor&, const Tensor&)>{"maximum", maximum},
                                std::pair<std::string, Tensor (*)(const Tensor&, const Tensor&)>{"minimum", minimum}}) {
    const Tensor a = normal({2, 3}), a0 = normal({}), b3 = normal({3}), a57 = normal({5, 7});
    table.push_back({name + "(Tensor, Tensor)", name, [f = f](const auto& v) { return f(v[0], v[1]); },
                     {{"same shape", {a, apart(a)}},
                      {"[5,7] (vectorised loops)", {a57, apart(a57)}},
                      {"[2,3] with [3]", {apart(b3.expand({2, 3}).clone()), b3}},
                      {"0-d with [2,3]", {a0, apart(a0.expand({2, 3}).clone())}},
                      {"edge: ties", {values({3}, {1, -2, 0}), values({3}, {1, -2, 0.5})}, {}, at_kink()}},
                     {{"[0,3] with [0,3]", {zeros({0, 3}, kFloat64), zeros({0, 3}, kFloat64)}, {0, 3}},
                      {"[0,3] with [3]", {zeros({0, 3}, kFloat64), ones({3}, kFloat64)}, {0, 3}}}});
  }

  // where(cond, a, b): the condition takes no gradient.
  table.push_back({"where(Tensor, Tensor, Tensor)", "where", [](const auto& v) { return where(v[0], v[1], v[2]); },
                   {{"same shape", {values({2, 3}, {1, 0, 0, 1, 1, 0}), normal({2, 3}), normal({2, 3})}},
                    {"broadcast cond [3], a [2,3], b 0-d", {values({3}, {0, 1, 1}), normal({2, 3}), normal({})}},
                    {"cond [2,1], a [3], b [2,3]", {values({2, 1}, {1, 0}), normal({3}), normal({2, 3})}}},
                   {{"[0,3]", {zeros({0, 3}, kFloat64), zeros({0, 3}, kFloat64), zeros({0, 3}, kFloat64)}, {0, 3}},
                    {"cond [0,1] with [3]", {zeros({0, 1}, kFloat64), ones({3}, kFloat64), ones({}, kFloat64)}, {0, 3}}},
                   {0}});
}

}  // namespace xgrad::test::optable
