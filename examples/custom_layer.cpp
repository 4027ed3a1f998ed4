// Extending xgrad: a user-defined op and a user-defined layer, verified, then trained.
//
//   1. SwishFunction: the activation swish(x) = x·σ(x), written as an autograd::Function with a
//      hand-derived backward. Its derivative:
//        swish'(x) = σ(x) + x·σ(x)·(1 - σ(x)) = σ(x)·(1 + x·(1 - σ(x)))
//      The backward is written in Tensor ops, so it is differentiable again (gradgradcheck).
//   2. ScaledSwishLayer: an nn::Module with a learnable per-feature scale β, y = swish(β·x),
//      registered like any built-in layer (it appears in parameters(), state_dict(), summary()).
//   3. gradcheck and gradgradcheck compare both with finite differences in float64, the way a user
//      checks a new layer before trusting it.
//   4. The layer is used in a small classifier trained with Adam on two interleaved spirals.
//
// Usage: custom_layer [--epochs N]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <xgrad.hpp>

using namespace xgrad;

// ---- 1. The op ---------------------------------------------------------------------------------
struct SwishFunction : autograd::Function<SwishFunction> {
  static std::string name() { return "SwishBackward"; }
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * sigmoid(x);
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> grad_outputs) {
    Tensor x = ctx->saved()[0];
    Tensor s = sigmoid(x);
    return {grad_outputs[0] * s * (1.0 + x * (1.0 - s))};
  }
};

Tensor swish(const Tensor& x) { return SwishFunction::apply(x); }

// ---- 2. The layer ----------------------------------------------------------------------------------
class ScaledSwishLayer : public nn::Module {
 public:
  explicit ScaledSwishLayer(std::size_t features) {
    beta = register_parameter("beta", ones({features}));
  }
  Tensor forward(const Tensor& x) override { return swish(x * beta); }
  std::string type_name() const override { return "ScaledSwish"; }
  Tensor beta;
};

// ---- Data: two interleaved spirals, 2-D points, classes 0 and 1 --------------------------------
data::TensorDataset spirals(std::size_t per_class) {
  Tensor x = zeros({2 * per_class, 2});
  Tensor y = zeros({2 * per_class});
  auto& xv = x.data<float>();
  auto& yv = y.data<float>();
  Tensor noise = randn({2 * per_class, 2}) * 0.05;
  for (std::size_t i = 0; i < 2 * per_class; ++i) {
    const std::size_t cls = i / per_class;
    const double r = static_cast<double>(i % per_class) / static_cast<double>(per_class);
    const double angle = 3.0 * r * M_PI + static_cast<double>(cls) * M_PI;
    xv(i, 0) = static_cast<float>(r * std::cos(angle)) + noise.data<float>()(i, 0);
    xv(i, 1) = static_cast<float>(r * std::sin(angle)) + noise.data<float>()(i, 1);
    yv(i) = static_cast<float>(cls);
  }
  return data::TensorDataset(x, y);
}

int main(int argc, char** argv) {
  int epochs = 60;
  for (int i = 1; i + 1 < argc; i += 2)
    if (!std::strcmp(argv[i], "--epochs")) epochs = std::stoi(argv[i + 1]);
  manual_seed(0);

  // ---- 3. Verify before use (float64: finite differences need the precision) --------------------
  Tensor x = randn({3, 4}, kFloat64).requires_grad_(true);
  auto op = [](const std::vector<Tensor>& in) { return swish(in[0]); };
  std::printf("SwishFunction   gradcheck: %s, gradgradcheck: %s\n", gradcheck(op, {x}) ? "ok" : "FAILED",
              gradgradcheck(op, {x}) ? "ok" : "FAILED");
  auto checked_layer = std::make_shared<ScaledSwishLayer>(4);
  checked_layer->to(kFloat64);
  nn::init::uniform_(checked_layer->beta, 0.5, 1.5);
  auto layer_fn = [&](const std::vector<Tensor>& in) { return (*checked_layer)(in[0]); };
  // Checked with respect to the input and, through the module's parameter, to β.
  auto beta_fn = [&](const std::vector<Tensor>& in) { return swish(x.detach() * in[0]); };
  std::printf("ScaledSwish     gradcheck (input): %s, gradcheck (beta): %s\n",
              gradcheck(layer_fn, {x}) ? "ok" : "FAILED",
              gradcheck(beta_fn, {checked_layer->beta}) ? "ok" : "FAILED");

  // ---- 4. Train a classifier that uses it ------------------------------------------------------------
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(2, 32), std::make_shared<ScaledSwishLayer>(32), std::make_shared<nn::Linear>(32, 32),
      std::make_shared<ScaledSwishLayer>(32), std::make_shared<nn::Linear>(32, 2)});
  std::printf("\n%s\n", nn::summary(*model).c_str());
  data::TensorDataset train = spirals(200);
  data::DataLoader loader(train, {.batch_size = 32, .shuffle = true, .seed = 0});
  optim::Adam adam(model->parameters(), {.lr = 1e-2});
  nn::CrossEntropyLoss loss;
  History history = fit(*model, adam, loss, loader, {.epochs = epochs, .verbose = false});
  std::printf("epoch %d: loss %.4f, training accuracy %.3f\n", history.front().epoch, history.front().loss,
              history.front().accuracy);
  std::printf("epoch %d: loss %.4f, training accuracy %.3f\n", history.back().epoch, history.back().loss,
              history.back().accuracy);
  return history.back().loss < history.front().loss ? 0 : 1;
}
