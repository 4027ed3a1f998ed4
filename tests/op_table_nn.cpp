// Op table: softmax/log_softmax, the fused losses (*_op) and nn::functional (dropout and the losses,
// each with every Reduction).
#include "op_table.hpp"

namespace xgrad::test::optable {

namespace {

namespace F = nn::functional;
using Loss = Tensor (*)(const Tensor&, const Tensor&, Reduction);

const std::vector<std::pair<Reduction, std::string>> kReductions{
    {Reduction::Mean, "Mean"}, {Reduction::Sum, "Sum"}, {Reduction::None, "None"}};

Tensor e(const Shape& s) { return zeros(s, kFloat64); }

// `base` samples (input, target) repeated for every reduction, and the 0-element forms: a [0, ...]
// input reduces to a 0-d value (Mean: NaN, Sum: 0) or keeps its [0, ...] shape (None).
OpInfo loss_entry(const std::string& decl, const std::string& name, Loss f, const std::vector<Sample>& base,
                  const std::vector<Tensor>& empty_inputs, const Shape& empty_none_shape) {
  OpInfo op{decl, name, [f = f](const auto& v) { return f(v[0], v[1], Reduction::Mean); }, {}, {}};
  for (const auto& [r, rname] : kReductions) {
    OpFn fn = [f = f, r = r](const std::vector<Tensor>& v) { return f(v[0], v[1], r); };
    for (const Sample& s : base) op.samples.push_back({s.name + ", " + rname, s.inputs, fn, s.skip});
    op.empty_samples.push_back({"empty, " + rname, empty_inputs, r == Reduction::None ? empty_none_shape : Shape{}, {}, fn});
  }
  return op;
}

const char* kEdgeOutsideDomain = "an edge value at the end of the domain: finite differences step outside it";

}  // namespace

void add_nn_ops(std::vector<OpInfo>& table) {
  for (const auto& [name, f] : {std::pair<std::string, Tensor (*)(const Tensor&, int)>{"softmax", softmax},
                                std::pair<std::string, Tensor (*)(const Tensor&, int)>{"log_softmax", log_softmax}}) {
    const Tensor x = normal({2, 3, 4});
    const auto along = [f = f](int d) { return [f = f, d](const std::vector<Tensor>& v) { return f(v[0], d); }; };
    table.push_back({name + "(Tensor, int)", name, along(1),
                     {{"[2,3,4] dim 1", {x}, along(1)},
                      {"[2,3,4] dim -1", {x}, along(-1)},
                      {"[2,3,4] dim 0", {x}, along(0)},
                      {"1-D dim 0", {normal({5})}, along(0)},
                      {"[4,17] dim -1 (vectorised rows)", {normal({4, 17})}, along(-1)},
                      {"0-d dim 0", {normal({})}, along(0)},
                      {"edge: large logits", {values({2, 3}, {1000, 1001, 999, -1000, 0, 1000})}, along(1)}},
                     {{"[0,3] dim 1", {e({0, 3})}, {0, 3}, {}, along(1)},
                      {"[0,3] dim 0 (the empty dim)", {e({0, 3})}, {0, 3}, {}, along(0)}}});
  }

  // Class-index losses: the target takes no gradient.
  const auto class_samples = [](bool log_probs) {
    const auto in = [log_probs](const Shape& s) { return log_probs ? log_softmax(normal(s), -1) : normal(s); };
    return std::vector<Sample>{{"[4,3]", {in({4, 3}), classes({4}, 3)}},
                               {"[6,9]", {in({6, 9}), classes({6}, 9)}},
                               {"[3] with a 0-d target", {in({3}), values({}, {2})}},
                               {"edge: large logits", {values({2, 3}, {1000, -1000, 0, 50, 50, -50}), values({2}, {1, 0})}}};
  };
  const std::vector<Tensor> class_empty{e({0, 3}), e({0})};
  for (const auto& [decl, name, f, log_probs] :
       {std::tuple<std::string, std::string, Loss, bool>{"cross_entropy_op", "cross_entropy", cross_entropy_op, false},
        std::tuple<std::string, std::string, Loss, bool>{"nll_loss_op", "nll_loss", nll_loss_op, true},
        std::tuple<std::string, std::string, Loss, bool>{"nn::functional::cross_entropy", "cross_entropy", F::cross_entropy, false},
        std::tuple<std::string, std::string, Loss, bool>{"nn::functional::nll_loss", "nll_loss", F::nll_loss, true}}) {
    OpInfo op = loss_entry(decl + "(Tensor, Tensor, Reduction)", name, f, class_samples(log_probs), class_empty, {0});
    op.nondiff_inputs = {1};
    table.push_back(std::move(op));
  }

  // Binary cross-entropy on probabilities (and soft targets, which take a gradient too).
  const std::vector<Sample> bce_samples{
      {"[2,3]", {positive({2, 3}, 0.05, 0.95), positive({2, 3}, 0, 1)}},
      {"[5,7]", {positive({5, 7}, 0.05, 0.95), positive({5, 7}, 0, 1)}},
      {"0-d", {positive({}, 0.05, 0.95), positive({}, 0, 1)}},
      {"edge: p = 0 and 1 (logs clamped at -100)", {values({4}, {0, 1, 0, 1}), values({4}, {1, 0, 0, 1})}, {},
       at_kink(kEdgeOutsideDomain)}};
  const std::vector<Sample> logit_samples{
      {"[2,3]", {normal({2, 3}), positive({2, 3}, 0, 1)}},
      {"[5,7]", {normal({5, 7}), positive({5, 7}, 0, 1)}},
      {"0-d", {normal({}), positive({}, 0, 1)}},
      {"edge: large logits and 0", {values({4}, {-50, 50, 0, 30}), values({4}, {1, 0, 0.5, 1})}}};
  const std::vector<Tensor> pair_empty{e({0, 3}), e({0, 3})};
  table.push_back(loss_entry("bce_op(Tensor, Tensor, Reduction)", "binary_cross_entropy", bce_op, bce_samples, pair_empty, {0, 3}));
  table.push_back(loss_entry("nn::functional::binary_cross_entropy(Tensor, Tensor, Reduction)", "binary_cross_entropy",
                             F::binary_cross_entropy, bce_samples, pair_empty, {0, 3}));
  table.push_back(loss_entry("bce_with_logits_op(Tensor, Tensor, Reduction)", "binary_cross_entropy_with_logits",
                             bce_with_logits_op, logit_samples, pair_empty, {0, 3}));
  table.push_back(loss_entry("nn::functional::binary_cross_entropy_with_logits(Tensor, Tensor, Reduction)",
                             "binary_cross_entropy_with_logits", F::binary_cross_entropy_with_logits, logit_samples,
                             pair_empty, {0, 3}));

  const std::vector<Sample> regression_samples{
      {"[2,3]", {normal({2, 3}), normal({2, 3})}},
      {"[5,7]", {normal({5, 7}), normal({5, 7})}},
      {"0-d", {normal({}), normal({})}}};
  table.push_back(loss_entry("nn::functional::mse_loss(Tensor, Tensor, Reduction)", "mse_loss", F::mse_loss,
                             regression_samples, pair_empty, {0, 3}));
  {
    // |input - target| has a kink where they are equal: the inputs stay at least 0.2 apart.
    const Tensor t23 = normal({2, 3}), t0 = normal({});
    const std::vector<Sample> l1_samples{{"[2,3]", {t23 + away_from({2, 3}, 0.0), t23}},
                                         {"0-d", {t0 + away_from({}, 0.0), t0}},
                                         {"edge: input == target", {values({3}, {1, 0, 2}), values({3}, {1, 0, -2})}, {}, at_kink()}};
    table.push_back(loss_entry("nn::functional::l1_loss(Tensor, Tensor, Reduction)", "l1_loss", F::l1_loss, l1_samples,
                               pair_empty, {0, 3}));
  }

  // Dropout draws its mask from the global generator: reseeded on every call, the mask is fixed, so
  // finite differences and both backward paths see the same function.
  {
    const auto drop = [](double p, bool training) {
      return [p, training](const std::vector<Tensor>& v) {
        manual_seed(77);
        return F::dropout(v[0], p, training);
      };
    };
    const std::string returns_input = "returns its input itself (as PyTorch does), which keeps the input's requires_grad";
    table.push_back({"nn::functional::dropout(Tensor, double, bool)", "dropout", drop(0.4, true),
                     {{"[3,4] p 0.4", {normal({3, 4})}},
                      {"[5,7] p 0.3", {normal({5, 7})}, drop(0.3, true)},
                      {"[2,3] p 0.75", {normal({2, 3})}, drop(0.75, true)},
                      {"0-d p 0.5", {normal({})}, drop(0.5, true)},
                      {"not training", {normal({2, 3})}, drop(0.4, false), {{Check::NoGrad, returns_input}}},
                      {"p 0", {normal({2, 3})}, drop(0.0, true), {{Check::NoGrad, returns_input}}}},
                     {{"[0,3]", {e({0, 3})}, {0, 3}}}});
  }
}

}  // namespace xgrad::test::optable
