// Op table: matrix products (matmul, mm with transpose flags, linear, t) and shape ops.
#include "op_table.hpp"

namespace xgrad::test::optable {

namespace {

Tensor e(const Shape& s) { return zeros(s, kFloat64); }  // a 0-element (or zero) input

}  // namespace

void add_linalg_shape_ops(std::vector<OpInfo>& table) {
  // ---- Linear algebra -------------------------------------------------------------------------
  table.push_back({"matmul(Tensor, Tensor)", "matmul", [](const auto& v) { return matmul(v[0], v[1]); },
                   {{"1-D . 1-D", {normal({3}), normal({3})}},
                    {"[2,3] . [3,4]", {normal({2, 3}), normal({3, 4})}},
                    {"1-D . [3,2]", {normal({3}), normal({3, 2})}},
                    {"[2,3] . 1-D", {normal({2, 3}), normal({3})}},
                    {"batched [2,2,3] . [3,4]", {normal({2, 2, 3}), normal({3, 4})}},
                    {"batch broadcast [2,1,2,3] . [3,3,2]", {normal({2, 1, 2, 3}), normal({3, 3, 2})}},
                    {"1-D . batched [2,3,2]", {normal({3}), normal({2, 3, 2})}}},
                   {{"[0,3] . [3,2]", {e({0, 3}), normal({3, 2})}, {0, 2}},
                    {"[3,0] . [0,3]", {e({3, 0}), e({0, 3})}, {3, 3}},
                    {"1-D [0] . [0]", {e({0}), e({0})}, {}}}});
  {
    std::vector<Sample> samples;
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::string flags = std::string(ta ? "aT" : "a") + (tb ? " bT" : " b");
        OpFn fn = [ta, tb](const auto& v) { return mm(v[0], v[1], ta, tb); };
        samples.push_back({"[2,3]x[3,4] as " + flags, {normal(ta ? Shape{3, 2} : Shape{2, 3}), normal(tb ? Shape{4, 3} : Shape{3, 4})}, fn});
        samples.push_back({"batched [2,...] as " + flags,
                           {normal(ta ? Shape{2, 3, 2} : Shape{2, 2, 3}), normal(tb ? Shape{2, 4, 3} : Shape{2, 3, 4})}, fn});
      }
    samples.push_back({"batch broadcast [2,1,2,3] x [3,3,2]", {normal({2, 1, 2, 3}), normal({3, 3, 2})}});
    table.push_back({"mm(Tensor, Tensor, bool, bool)", "mm", [](const auto& v) { return mm(v[0], v[1]); }, samples,
                     {{"[0,3] x [3,2]", {e({0, 3}), normal({3, 2})}, {0, 2}},
                      {"[3,0]T x [3,2]", {e({3, 0}), normal({3, 2})}, {0, 2}, {},
                       [](const auto& v) { return mm(v[0], v[1], true, false); }},
                      {"[2,0] x [4,0]T", {e({2, 0}), e({4, 0})}, {2, 4}, {},
                       [](const auto& v) { return mm(v[0], v[1], false, true); }}}});
  }
  {
    const auto with_bias = [](const auto& v) { return linear(v[0], v[1], v[2]); };
    const auto no_bias = [](const auto& v) { return linear(v[0], v[1]); };
    table.push_back({"linear(Tensor, Tensor, Tensor)", "linear", with_bias,
                     {{"[4,3] with W [2,3], b [2]", {normal({4, 3}), normal({2, 3}), normal({2})}},
                      {"1-D x [3]", {normal({3}), normal({2, 3}), normal({2})}},
                      {"3-D x [2,2,3]", {normal({2, 2, 3}), normal({2, 3}), normal({2})}},
                      {"no bias", {normal({4, 3}), normal({2, 3})}, no_bias},
                      {"no bias, 3-D x", {normal({2, 2, 3}), normal({2, 3})}, no_bias}},
                     {{"batch of 0", {e({0, 3}), normal({2, 3}), normal({2})}, {0, 2}},
                      {"0 input features", {e({4, 0}), e({2, 0}), normal({2})}, {4, 2}},
                      {"0 output features", {normal({4, 3}), e({0, 3}), e({0})}, {4, 0}}}});
  }
  table.push_back({"t(Tensor)", "t", [](const auto& v) { return t(v[0]); },
                   {{"[2,3]", {normal({2, 3})}}, {"1-D", {normal({3})}}, {"0-d", {normal({})}}},
                   {{"[3,0]", {e({3, 0})}, {0, 3}}}});

  // ---- Shape ----------------------------------------------------------------------------------
  const auto one = [](auto f) { return [f](const std::vector<Tensor>& v) { return f(v[0]); }; };
  using Sizes = std::vector<std::int64_t>;
  table.push_back({"reshape(Tensor, std::vector<std::int64_t>)", "reshape", {},
                   {{"[2,3] to {3,2}", {normal({2, 3})}, one([](const Tensor& x) { return reshape(x, {3, 2}); })},
                    {"[2,3,2] to {-1}", {normal({2, 3, 2})}, one([](const Tensor& x) { return reshape(x, {-1}); })},
                    {"[2,3] to {2,-1,1}", {normal({2, 3})}, one([](const Tensor& x) { return reshape(x, {2, -1, 1}); })},
                    {"0-d to {1,1}", {normal({})}, one([](const Tensor& x) { return reshape(x, Sizes{1, 1}); })},
                    {"[1] to {}", {normal({1})}, one([](const Tensor& x) { return reshape(x, Sizes{}); })}},
                   {{"[0,3] to {3,0}", {e({0, 3})}, {3, 0}, {}, one([](const Tensor& x) { return reshape(x, {3, 0}); })},
                    {"[0,3] to {-1}", {e({0, 3})}, {0}, {}, one([](const Tensor& x) { return reshape(x, {-1}); })}}});
  table.push_back({"flatten(Tensor, int, int)", "flatten", {},
                   {{"[2,3,2] all", {normal({2, 3, 2})}, one([](const Tensor& x) { return flatten(x); })},
                    {"[2,3,2] from 1", {normal({2, 3, 2})}, one([](const Tensor& x) { return flatten(x, 1); })},
                    {"[2,3,2,2] dims -3..-2", {normal({2, 3, 2, 2})}, one([](const Tensor& x) { return flatten(x, -3, -2); })},
                    {"0-d", {normal({})}, one([](const Tensor& x) { return flatten(x); })}},
                   {{"[0,3]", {e({0, 3})}, {0}, {}, one([](const Tensor& x) { return flatten(x); })},
                    {"[2,0,3] from 1", {e({2, 0, 3})}, {2, 0}, {}, one([](const Tensor& x) { return flatten(x, 1); })}}});
  table.push_back({"transpose(Tensor, int, int)", "transpose", {},
                   {{"[2,3] 0,1", {normal({2, 3})}, one([](const Tensor& x) { return transpose(x, 0, 1); })},
                    {"[2,3,4] -1,0", {normal({2, 3, 4})}, one([](const Tensor& x) { return transpose(x, -1, 0); })},
                    {"[2,3] 1,1", {normal({2, 3})}, one([](const Tensor& x) { return transpose(x, 1, 1); })}},
                   {{"[0,3]", {e({0, 3})}, {3, 0}, {}, one([](const Tensor& x) { return transpose(x, 0, 1); })}}});
  table.push_back({"permute(Tensor, std::vector<int>)", "permute", {},
                   {{"[2,3,4] {2,0,1}", {normal({2, 3, 4})}, one([](const Tensor& x) { return permute(x, {2, 0, 1}); })},
                    {"[2,3,4] {-1,-3,-2}", {normal({2, 3, 4})}, one([](const Tensor& x) { return permute(x, {-1, -3, -2}); })},
                    {"0-d {}", {normal({})}, one([](const Tensor& x) { return permute(x, {}); })}},
                   {{"[2,0,3] {2,0,1}", {e({2, 0, 3})}, {3, 2, 0}, {},
                     one([](const Tensor& x) { return permute(x, {2, 0, 1}); })}}});
  table.push_back({"squeeze(Tensor)", "squeeze", one([](const Tensor& x) { return squeeze(x); }),
                   {{"[1,3,1,2]", {normal({1, 3, 1, 2})}}, {"[2,3] (nothing to squeeze)", {normal({2, 3})}}, {"[1]", {normal({1})}}},
                   {{"[0,1,3]", {e({0, 1, 3})}, {0, 3}}}});
  table.push_back({"squeeze(Tensor, int)", "squeeze", {},
                   {{"[2,1,3] dim 1", {normal({2, 1, 3})}, one([](const Tensor& x) { return squeeze(x, 1); })},
                    {"[2,3,1] dim -1", {normal({2, 3, 1})}, one([](const Tensor& x) { return squeeze(x, -1); })},
                    {"[2,3] dim 0 (size 2: unchanged)", {normal({2, 3})}, one([](const Tensor& x) { return squeeze(x, 0); })}},
                   {{"[0,1,3] dim 1", {e({0, 1, 3})}, {0, 3}, {}, one([](const Tensor& x) { return squeeze(x, 1); })}}});
  table.push_back({"unsqueeze(Tensor, int)", "unsqueeze", {},
                   {{"[2,3] dim 0", {normal({2, 3})}, one([](const Tensor& x) { return unsqueeze(x, 0); })},
                    {"[2,3] dim -1", {normal({2, 3})}, one([](const Tensor& x) { return unsqueeze(x, -1); })},
                    {"0-d dim 0", {normal({})}, one([](const Tensor& x) { return unsqueeze(x, 0); })}},
                   {{"[0,3] dim -1", {e({0, 3})}, {0, 3, 1}, {}, one([](const Tensor& x) { return unsqueeze(x, -1); })}}});
  table.push_back({"expand(Tensor, std::vector<std::int64_t>)", "expand", {},
                   {{"[3,1] to {2,3,4}", {normal({3, 1})}, one([](const Tensor& x) { return expand(x, {2, 3, 4}); })},
                    {"[3] to {2,-1}", {normal({3})}, one([](const Tensor& x) { return expand(x, {2, -1}); })},
                    {"0-d to {2,2}", {normal({})}, one([](const Tensor& x) { return expand(x, {2, 2}); })},
                    {"[2,3] unchanged", {normal({2, 3})}, one([](const Tensor& x) { return expand(x, {2, 3}); })}},
                   {{"[0,1] to {-1,4}", {e({0, 1})}, {0, 4}, {}, one([](const Tensor& x) { return expand(x, {-1, 4}); })},
                    {"[1,3] to {0,3}", {normal({1, 3})}, {0, 3}, {}, one([](const Tensor& x) { return expand(x, {0, 3}); })}}});
  table.push_back({"slice(Tensor, int, std::int64_t, std::int64_t, std::int64_t)", "slice", {},
                   {{"[4,3] dim 0 1:3", {normal({4, 3})}, one([](const Tensor& x) { return slice(x, 0, 1, 3); })},
                    {"[4,5] dim -1 0:5:2", {normal({4, 5})}, one([](const Tensor& x) { return slice(x, -1, 0, 5, 2); })},
                    {"[4,3] dim 0 -3:-1", {normal({4, 3})}, one([](const Tensor& x) { return slice(x, 0, -3, -1); })},
                    {"[4,3] dim 1 2:1 (empty)", {normal({4, 3})}, one([](const Tensor& x) { return slice(x, 1, 2, 1); })}},
                   {{"[0,3] dim 1 0:2", {e({0, 3})}, {0, 2}, {}, one([](const Tensor& x) { return slice(x, 1, 0, 2); })},
                    {"[0,3] dim 0 0:5", {e({0, 3})}, {0, 3}, {}, one([](const Tensor& x) { return slice(x, 0, 0, 5); })}}});
  {
    OpInfo op{"index_select(Tensor, int, Tensor)", "index_select", {},
              {{"[3,4] dim 1 {2,0,2}", {normal({3, 4}), values({3}, {2, 0, 2})},
                [](const auto& v) { return index_select(v[0], 1, v[1]); }},
               {"[3,4] dim -2 {1}", {normal({3, 4}), values({1}, {1})},
                [](const auto& v) { return index_select(v[0], -2, v[1]); }},
               {"[3,4] dim 0 0-d index", {normal({3, 4}), values({}, {2})},
                [](const auto& v) { return index_select(v[0], 0, v[1]); }}},
              {{"[0,3] dim 1 {2,0}", {e({0, 3}), values({2}, {2, 0})}, {0, 2}, {},
                [](const auto& v) { return index_select(v[0], 1, v[1]); }},
               {"[2,3] no indices", {normal({2, 3}), e({0})}, {2, 0}, {},
                [](const auto& v) { return index_select(v[0], 1, v[1]); }}},
              {1}};
    op.skip[Check::DtypeMismatch] =
        "the indices are read as integers whatever their dtype (PyTorch too takes an int index tensor with any input)";
    table.push_back(std::move(op));
  }
  table.push_back({"cat(std::vector<Tensor>, int)", "cat", {},
                   {{"two along 0", {normal({2, 3}), normal({1, 3})}, [](const auto& v) { return cat({v[0], v[1]}, 0); }},
                    {"three along -1", {normal({2, 1}), normal({2, 3}), normal({2, 2})}, [](const auto& v) { return cat(v, -1); }},
                    {"one", {normal({2, 3})}, [](const auto& v) { return cat(v, 1); }},
                    {"the same tensor twice", {normal({2, 3})}, [](const auto& v) { return cat({v[0], v[0]}, 1); }}},
                   {{"[0,3] with [2,3]", {e({0, 3}), normal({2, 3})}, {2, 3}, {}, [](const auto& v) { return cat(v, 0); }},
                    {"[0,3] with [0,3] along 1", {e({0, 3}), e({0, 3})}, {0, 6}, {}, [](const auto& v) { return cat(v, 1); }}}});
  table.push_back({"stack(std::vector<Tensor>, int)", "stack", {},
                   {{"two along 0", {normal({2, 3}), normal({2, 3})}, [](const auto& v) { return stack(v, 0); }},
                    {"three along -1", {normal({2}), normal({2}), normal({2})}, [](const auto& v) { return stack(v, -1); }},
                    {"0-d along 0", {normal({}), normal({})}, [](const auto& v) { return stack(v, 0); }}},
                   {{"two [0,3] along 1", {e({0, 3}), e({0, 3})}, {0, 2, 3}, {}, [](const auto& v) { return stack(v, 1); }}}});
}

}  // namespace xgrad::test::optable
