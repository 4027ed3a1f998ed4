// Op table: reductions (sum, mean, max/min, argmax/argmin, logsumexp, var, sum_to), with dims
// (negative ones too), keepdim, and reductions over every dimension.
#include "op_table.hpp"

namespace xgrad::test::optable {

namespace {

using Dims = std::vector<int>;

std::string dims_str(const Dims& dims, bool keepdim) {
  std::string s = "dims {";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(dims[i]);
  }
  return s + "}" + (keepdim ? " keepdim" : "");
}

// Samples of f(x, dims, keepdim) over [2,3,4] for several dim lists, and [2,3] / 0-d for all dims.
template <class F>
std::vector<Sample> dims_samples(F f) {
  std::vector<Sample> out;
  const Tensor x = normal({2, 3, 4});
  for (const auto& [dims, keep] : std::vector<std::pair<Dims, bool>>{
           {{1}, false}, {{-1}, true}, {{0, -1}, false}, {{2, 0}, true}, {{}, false}, {{}, true}})
    out.push_back({"[2,3,4] " + dims_str(dims, keep), {x},
                   [f, dims = dims, keep = keep](const auto& v) { return f(v[0], dims, keep); }});
  out.push_back({"0-d dims {}", {normal({})}, [f](const auto& v) { return f(v[0], Dims{}, false); }});
  out.push_back({"[5,17] dims {-1} (long rows)", {normal({5, 17})}, [f](const auto& v) { return f(v[0], Dims{-1}, false); }});
  out.push_back({"[17,5] dims {0} (long columns)", {normal({17, 5})}, [f](const auto& v) { return f(v[0], Dims{0}, true); }});
  return out;
}

// 0-element samples of f(x, dims, keepdim): reducing the empty dim, and keeping it.
template <class F>
std::vector<EmptySample> dims_empty(F f) {
  const Tensor e = zeros({0, 3}, kFloat64);
  return {{"[0,3] dims {0}", {e}, {3}, {}, [f](const auto& v) { return f(v[0], Dims{0}, false); }},
          {"[0,3] dims {-1} keepdim", {e}, {0, 1}, {}, [f](const auto& v) { return f(v[0], Dims{-1}, true); }},
          {"[0,3] all dims", {e}, {}, {}, [f](const auto& v) { return f(v[0], Dims{}, false); }}};
}

// Single-dim extremes (max, min, argmax, argmin, logsumexp): dims 1, -1 keepdim, 0 on distinct values.
template <class F>
std::vector<Sample> dim_samples(F f) {
  std::vector<Sample> out;
  const Tensor x = normal({2, 3, 4});
  for (const auto& [dim, keep] : std::vector<std::pair<int, bool>>{{1, false}, {-1, true}, {0, false}, {-3, true}})
    out.push_back({"[2,3,4] dim " + std::to_string(dim) + (keep ? " keepdim" : ""), {x},
                   [f, dim = dim, keep = keep](const auto& v) { return f(v[0], dim, keep); }});
  out.push_back({"0-d dim 0", {normal({})}, [f](const auto& v) { return f(v[0], 0, false); }});
  return out;
}

}  // namespace

void add_reduction_ops(std::vector<OpInfo>& table) {
  const std::vector<EmptySample> empty_all{{"[0,3]", {zeros({0, 3}, kFloat64)}, {}}};

  table.push_back({"sum(Tensor)", "sum", [](const auto& v) { return sum(v[0]); },
                   {{"[2,3]", {normal({2, 3})}}, {"0-d", {normal({})}}, {"[2,1,3]", {normal({2, 1, 3})}},
                    {"[5,17]", {normal({5, 17})}}},
                   empty_all});
  table.push_back({"sum(Tensor, std::vector<int>, bool)", "sum", {},
                   dims_samples([](const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); }),
                   dims_empty([](const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); })});
  table.push_back({"mean(Tensor)", "mean", [](const auto& v) { return mean(v[0]); },
                   {{"[2,3]", {normal({2, 3})}}, {"0-d", {normal({})}}, {"[5,17]", {normal({5, 17})}}}, empty_all});
  table.push_back({"mean(Tensor, std::vector<int>, bool)", "mean", {},
                   dims_samples([](const Tensor& x, const Dims& d, bool k) { return mean(x, d, k); }),
                   dims_empty([](const Tensor& x, const Dims& d, bool k) { return mean(x, d, k); })});

  // max/min of everything: distinct values, and ties (the gradient spreads evenly over them, which is
  // what central differences see too: half of the step moves the maximum).
  const std::string kink = "a tie between extremes: the derivative does not exist there";
  for (const auto& [name, all, along] :
       {std::tuple<std::string, Tensor (*)(const Tensor&), Tensor (*)(const Tensor&, int, bool)>{"max", max, max},
        std::tuple<std::string, Tensor (*)(const Tensor&), Tensor (*)(const Tensor&, int, bool)>{"min", min, min}}) {
    const double extreme = name == "max" ? 3 : -3;
    table.push_back({name + "(Tensor)", name, [all = all](const auto& v) { return all(v[0]); },
                     {{"[2,3]", {normal({2, 3})}},
                      {"0-d", {normal({})}},
                      {"edge: two-way tie", {values({2, 2}, {1, extreme, extreme, 0})}, {},
                       {{Check::Gradgradcheck, "the gradient jumps at a tie (first derivatives agree: even spread)"}}}},
                     // PyTorch refuses the extreme of nothing.
                     {{"[0,3]", {zeros({0, 3}, kFloat64)}, {}, "cannot reduce an empty tensor"}}});
    OpInfo op{name + "(Tensor, int, bool)", name, {}, dim_samples(along),
              {{"[0,3] dim 1", {zeros({0, 3}, kFloat64)}, {0}, {}, [along = along](const auto& v) { return along(v[0], 1, false); }},
               {"[0,3] dim -1 keepdim", {zeros({0, 3}, kFloat64)}, {0, 1}, {},
                [along = along](const auto& v) { return along(v[0], -1, true); }},
               // PyTorch refuses to reduce over an empty dim.
               {"[0,3] dim 0", {zeros({0, 3}, kFloat64)}, {}, "cannot reduce over dimension 0 of size 0",
                [along = along](const auto& v) { return along(v[0], 0, false); }}}};
    // A tie along dim: the gradient goes to the first occurrence (PyTorch's choice), a kink.
    op.samples.push_back({"edge: tie along dim 1", {values({2, 2}, {extreme, extreme, 0, 1})},
                          [along = along](const auto& v) { return along(v[0], 1, false); },
                          {{Check::Gradcheck, kink}, {Check::Gradgradcheck, kink}}});
    table.push_back(std::move(op));
  }

  for (const auto& [name, all, along] :
       {std::tuple<std::string, Tensor (*)(const Tensor&), Tensor (*)(const Tensor&, int, bool)>{"argmax", argmax, argmax},
        std::tuple<std::string, Tensor (*)(const Tensor&), Tensor (*)(const Tensor&, int, bool)>{"argmin", argmin, argmin}}) {
    OpInfo a{name + "(Tensor)", name, [all = all](const auto& v) { return all(v[0]); },
             {{"[2,3]", {normal({2, 3})}}, {"0-d", {normal({})}}, {"edge: ties", {values({2, 2}, {1, 1, 1, 1})}}},
             {{"[0,3]", {zeros({0, 3}, kFloat64)}, {}, "cannot reduce an empty tensor"}}};
    table.push_back(not_differentiable(a, "indices: piecewise constant, no gradient"));
    OpInfo d{name + "(Tensor, int, bool)", name, {}, dim_samples(along),
             {{"[0,3] dim 1", {zeros({0, 3}, kFloat64)}, {0}, {}, [along = along](const auto& v) { return along(v[0], 1, false); }},
              {"[0,3] dim 0", {zeros({0, 3}, kFloat64)}, {}, "of size 0",
               [along = along](const auto& v) { return along(v[0], 0, false); }}}};
    table.push_back(not_differentiable(d, "indices: piecewise constant, no gradient"));
  }

  {
    OpInfo op{"logsumexp(Tensor, int, bool)", "logsumexp", {},
              dim_samples([](const Tensor& x, int d, bool k) { return logsumexp(x, d, k); }),
              // The empty sum's log is -inf, as in PyTorch; reducing the non-empty dim of [0,3] gives [0].
              {{"[0,3] dim 1", {zeros({0, 3}, kFloat64)}, {0}, {}, [](const auto& v) { return logsumexp(v[0], 1); }},
               {"[0,3] dim 0 keepdim", {zeros({0, 3}, kFloat64)}, {1, 3}, {},
                [](const auto& v) { return logsumexp(v[0], 0, true); }}}};
    op.samples.push_back({"edge: large values", {values({2, 2}, {1000, 1000.5, -1000, -999})},
                          [](const auto& v) { return logsumexp(v[0], 1); }});
    table.push_back(std::move(op));
  }
  {
    std::vector<Sample> samples;
    const Tensor x = normal({2, 3, 4});
    for (const auto& [dims, unbiased, keep] : std::vector<std::tuple<Dims, bool, bool>>{
             {{1}, true, false}, {{-1}, false, true}, {{0, 2}, true, true}, {{}, true, false}, {{}, false, false}})
      samples.push_back({"[2,3,4] " + dims_str(dims, keep) + (unbiased ? " unbiased" : " biased"), {x},
                         [dims = dims, unbiased = unbiased, keep = keep](const auto& v) {
                           return var(v[0], dims, unbiased, keep);
                         }});
    table.push_back({"var(Tensor, std::vector<int>, bool, bool)", "var", {}, samples,
                     {{"[0,3] dims {0}", {zeros({0, 3}, kFloat64)}, {3}, {},
                       [](const auto& v) { return var(v[0], {0}); }},
                      {"[0,3] dims {1} keepdim", {zeros({0, 3}, kFloat64)}, {0, 1}, {},
                       [](const auto& v) { return var(v[0], {1}, true, true); }}}});
  }
  {
    std::vector<Sample> samples;
    for (const auto& [in, to] : std::vector<std::pair<Shape, Shape>>{
             {{2, 3}, {1, 3}}, {{2, 3}, {3}}, {{2, 3, 4}, {3, 1}}, {{2, 3}, {}}, {{2, 3}, {2, 3}}})
      samples.push_back({shape_str(in) + " to " + shape_str(to), {normal(in)},
                         [to = to](const auto& v) { return sum_to(v[0], to); }});
    // Nothing to sum: the input itself comes back (as PyTorch's at::sum_to), with its requires_grad.
    samples.back().skip[Check::NoGrad] = "returns its input itself, which keeps the input's requires_grad";
    table.push_back({"sum_to(Tensor, Shape)", "sum_to", {}, samples,
                     {{"[0,3] to [1,3]", {zeros({0, 3}, kFloat64)}, {1, 3}, {},
                       [](const auto& v) { return sum_to(v[0], {1, 3}); }},
                      {"[0,3] to [3]", {zeros({0, 3}, kFloat64)}, {3}, {}, [](const auto& v) { return sum_to(v[0], {3}); }},
                      {"[2,0] to [2,0]", {zeros({2, 0}, kFloat64)}, {2, 0}, {},
                       [](const auto& v) { return sum_to(v[0], {2, 0}); }}}});
  }
}

}  // namespace xgrad::test::optable
