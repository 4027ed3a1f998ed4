// Every public name of ../shared/API.md, used exactly as the API text writes it. If a name is
// renamed, a default or a field order changes, or a signature drifts, this file stops compiling or
// these checks fail. Behaviour is tested in depth elsewhere; here each call is checked for the one
// property that shows it did what its name says.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <sstream>
#include <type_traits>
#include <xgrad.hpp>

using namespace xgrad;

TEST_CASE("api: dtypes, creation, inspection") {
  static_assert(std::is_same_v<decltype(kFloat32), const Dtype>);
  CHECK(Dtype::Float32 == kFloat32);
  CHECK(Dtype::Float64 == kFloat64);
  Tensor a = tensor(xt::xarray<float>{1.f, 2.f}, true);
  Tensor b = tensor(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}});
  CHECK(a.dtype() == kFloat32);  // the array's value type decides the dtype
  CHECK(b.dtype() == kFloat64);
  CHECK(zeros({2, 3}).dtype() == kFloat32);  // Float32 by default everywhere
  CHECK(ones({2}, kFloat64).dtype() == kFloat64);
  CHECK(full({1}, 3.5, kFloat64).item() == 3.5);
  CHECK(rand({4}).numel() == 4);
  CHECK(randn({2, 2}, kFloat64).dim() == 2);
  CHECK(arange(5).shape() == Shape{5});
  CHECK(eye(3).data<float>()(1, 1) == 1.f);
  CHECK(zeros_like(b).shape() == b.shape());
  CHECK(ones_like(a).dtype() == kFloat32);
  manual_seed(7);
  const double first = rand({1}).item();
  manual_seed(7);
  CHECK(rand({1}).item() == first);  // manual_seed reproduces every draw
  Tensor scalar = sum(b);
  CHECK(scalar.shape() == Shape{});  // 0-d tensors exist
  CHECK(scalar.dim() == 0);
  CHECK(b.defined());
  CHECK_FALSE(Tensor().defined());
  CHECK(a.requires_grad());
  CHECK(a.is_leaf());
  CHECK_FALSE(a.grad().defined());  // undefined until a gradient arrives
  const Tensor& cb = b;
  const xt::xarray<double>& values = cb.data<double>();
  CHECK(values(1, 0) == 3.0);
  b.data<double>()(1, 0) = 5.0;  // the mutable overload bypasses autograd
  CHECK(cb.data<double>()(1, 0) == 5.0);
  std::ostringstream os;
  os << b;
  CHECK(os.str().find("[2, 2]") != std::string::npos);
}

TEST_CASE("api: change and autograd") {
  Tensor x = tensor(xt::xarray<double>{1.0, 2.0});
  x.requires_grad_();
  Tensor y = (x * x).sum();
  y.backward(Tensor{}, false, false);
  CHECK(x.grad().data<double>()(1) == 4.0);  // d(x²)/dx = 2x
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  x.set_grad(ones_like(x));
  CHECK(x.grad().data<double>()(0) == 1.0);
  CHECK(x.detach().requires_grad() == false);
  CHECK(x.clone().grad_fn() != nullptr);
  CHECK(x.to(kFloat32).dtype() == kFloat32);
  std::vector<Tensor> g = autograd::grad({(x * x).sum()}, {x}, {}, std::nullopt, false, false);
  CHECK(g[0].data<double>()(0) == 2.0);
  {
    NoGradGuard guard;
    CHECK_FALSE(is_grad_enabled());
    CHECK_FALSE((x * 2.0).requires_grad());
  }
  CHECK(is_grad_enabled());
  GradcheckOptions opts{.eps = 1e-6, .atol = 1e-5, .rtol = 1e-3, .raise = true};
  auto fn = [](const std::vector<Tensor>& in) { return in[0].exp(); };
  CHECK(gradcheck(fn, {x}, opts));
  CHECK(gradgradcheck(fn, {x}, opts));
  auto multi = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0].sin(), in[0].cos()}; };
  CHECK(gradcheck(multi, {x}));
  CHECK(to_dot((x * x).sum()).find("digraph") != std::string::npos);
}

namespace {
struct Cube : autograd::Function<Cube> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    ctx->saved_data["power"] = 3;
    return x * x * x;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> grad_outputs) {
    Tensor x = ctx->saved()[0];
    const int p = std::any_cast<int>(ctx->saved_data["power"]);
    CHECK(ctx->needs_input_grad(0));
    return {grad_outputs[0] * static_cast<double>(p) * x * x};  // d(x³)/dx = 3x²
  }
};
}  // namespace

TEST_CASE("api: custom Function") {
  Tensor x = tensor(xt::xarray<double>{2.0}, true);
  Cube::apply(x).sum().backward();
  CHECK(x.grad().item() == 12.0);  // 3·2²
}

TEST_CASE("api: ops as free functions and methods") {
  Tensor a = tensor(xt::xarray<double>{{1.0, -2.0}, {3.0, 4.0}}, true);
  Tensor b = tensor(xt::xarray<double>{0.5, 2.0});
  for (const Tensor& r : {a + b, a - b, a * b, a / b, a + 2, 2 + a, a - 0.5f, 0.5 - a, a * 1e-3, 3 * a, a / 2, 1 / (a + b), -a,
                          add(a, b), sub(a, b), mul(a, b), div(a, b), neg(a), pow(a, 2.0), pow(a, a), exp(a), log(abs(a)),
                          sqrt(abs(a)), abs(a), tanh(a), sigmoid(a), relu(a), leaky_relu(a, 0.1), sin(a), cos(a),
                          clamp(a, -1, 1), maximum(a, b), minimum(a, b), where(gt(a, 0.0), a, b)})
    CHECK(r.shape() == Shape{2, 2});
  // (Each op's dtype, no-grad path, gradients and 0-element behaviour: the op table, test_op_table.cpp.)
  for (const Tensor& r : {eq(a, b), ne(a, b), lt(a, b), le(a, b), gt(a, b), ge(a, b)}) CHECK(r.shape() == Shape{2, 2});
  CHECK(gt(a, b).data<double>()(1, 0) == 1.0);  // 3 > 0.5: 0/1 values
  CHECK(sum(a).dim() == 0);
  CHECK(sum(a, {1}, true).shape() == Shape{2, 1});
  CHECK(mean(a).item() == 1.5);
  CHECK(mean(a, {0}).shape() == Shape{2});
  CHECK(max(a).item() == 4.0);
  CHECK(max(a, 1).shape() == Shape{2});
  CHECK(min(a, -1, true).shape() == Shape{2, 1});
  CHECK(argmax(a, 1).data<double>()(0) == 0.0);
  CHECK(logsumexp(a, 1).shape() == Shape{2});
  CHECK(var(a, {0}, true, false).shape() == Shape{2});
  CHECK(matmul(a, a).shape() == Shape{2, 2});
  CHECK(a.t().shape() == Shape{2, 2});
  CHECK(reshape(a, {-1}).shape() == Shape{4});
  CHECK(flatten(a, 0, -1).shape() == Shape{4});
  CHECK(transpose(a, 0, 1).shape() == Shape{2, 2});
  CHECK(permute(a, {1, 0}).shape() == Shape{2, 2});
  CHECK(squeeze(unsqueeze(a, 0), 0).shape() == Shape{2, 2});
  CHECK(expand(b, {3, -1}).shape() == Shape{3, 2});
  CHECK(slice(a, 1, 0, 1, 1).shape() == Shape{2, 1});
  CHECK(index_select(a, 0, tensor({1.0, 1.0}, kFloat64)).shape() == Shape{2, 2});
  CHECK(cat({a, a}, 0).shape() == Shape{4, 2});
  CHECK(stack({a, a}, 0).shape() == Shape{2, 2, 2});
  CHECK(softmax(a, 1).shape() == Shape{2, 2});
  CHECK(log_softmax(a, -1).shape() == Shape{2, 2});
  // methods
  CHECK(a.exp().sum({1}, true).shape() == Shape{2, 1});
  for (const Tensor& r : {a.neg(), a.exp(), a.abs().log(), a.abs().sqrt(), a.abs(), a.tanh(), a.sigmoid(), a.relu(),
                          a.leaky_relu(0.2), a.sin(), a.cos(), a.clamp(0, 1), a.pow(2.0), a.softmax(1), a.log_softmax(1),
                          a.matmul(a), a.t(), a.transpose(0, 1), a.permute({1, 0})})
    CHECK(r.shape() == Shape{2, 2});
  CHECK(a.sum().dim() == 0);
  CHECK(a.mean().dim() == 0);
  CHECK(a.max().dim() == 0);
  CHECK(a.min(0).shape() == Shape{2});
  CHECK(a.argmax(1).shape() == Shape{2});
  CHECK(a.reshape({4}).shape() == Shape{4});
  CHECK(a.flatten().shape() == Shape{4});
  CHECK(a.unsqueeze(0).squeeze(0).shape() == Shape{2, 2});
  CHECK(b.expand({2, 2}).shape() == Shape{2, 2});
}

TEST_CASE("api: nn") {
  manual_seed(163);  // fixed draws: the init checks below hold for them
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(10, 10), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(10, 1),
      std::make_shared<nn::Sigmoid>()});
  model->push_back(std::make_shared<nn::Identity>());
  CHECK(model->size() == 5);
  CHECK((*model)[0] != nullptr);
  auto named = model->named_parameters(true);
  CHECK(named.size() == 4);
  CHECK(named.begin()->first == "0.weight");  // dotted names, registration order
  CHECK(model->parameters().size() == 4);
  CHECK(model->children().size() == 5);
  CHECK(model->named_children()[1].first == "1");
  model->eval();
  CHECK_FALSE(model->is_training());
  model->train(true);
  CHECK(model->is_training());
  Tensor out = model->forward(rand({3, 10}));
  CHECK((*model)(rand({3, 10})).shape() == Shape{3, 1});
  CHECK(out.shape() == Shape{3, 1});
  nn::StateDict sd = model->state_dict();
  for (auto& [name, t] : sd) CHECK(t.defined());
  CHECK(sd.contains("2.bias"));
  CHECK(sd.at("2.bias").shape() == Shape{1});
  CHECK(sd.size() == 4);
  const nn::LoadStateDictResult loaded = model->load_state_dict(sd, true);
  CHECK(loaded.missing_keys.empty());
  CHECK(loaded.unexpected_keys.empty());
  // save then load restores a value changed in between (the file name is unique to this process).
  const auto path = std::filesystem::temp_directory_path() /
                    ("xgrad_api_model_" + std::to_string(::getpid()) + ".safetensors");
  const float saved_bias = sd.at("2.bias").data<float>()(0);
  model->save(path.string());
  sd.at("2.bias").data<float>()(0) = saved_bias + 1.0f;  // shares storage with the module's bias
  model->load(path.string());
  CHECK(model->state_dict().at("2.bias").data<float>()(0) == saved_bias);
  std::filesystem::remove(path);
  model->to(kFloat64);
  CHECK(model->parameters()[0].dtype() == kFloat64);
  std::ostringstream os;
  os << *model;
  CHECK(os.str().find("Linear") != std::string::npos);
  CHECK(nn::summary(*model).find("Total") != std::string::npos);

  nn::Linear lin(4, 3, true);
  CHECK(lin.weight.shape() == Shape{3, 4});
  CHECK(lin.bias.shape() == Shape{3});
  nn::LeakyReLU leaky(0.01);
  nn::Softmax sm(1);
  nn::LogSoftmax lsm(1);
  nn::Dropout drop(0.5);
  nn::Flatten flat;
  nn::Tanh tanh_layer;
  CHECK(flat(rand({2, 3, 4})).shape() == Shape{2, 12});
  CHECK(sm(rand({2, 3})).shape() == Shape{2, 3});
  CHECK(lsm(leaky(tanh_layer(drop(rand({2, 3}))))).shape() == Shape{2, 3});

  Tensor p = sigmoid(randn({4}));
  Tensor t01 = tensor({0.0, 1.0, 1.0, 0.0});
  Tensor logits = randn({4, 3});
  Tensor cls = tensor({0.0, 2.0, 1.0, 2.0});
  CHECK(nn::MSELoss(nn::Reduction::Mean)(p, t01).dim() == 0);
  CHECK(nn::L1Loss(nn::Reduction::Sum)(p, t01).dim() == 0);
  CHECK(nn::BCELoss(nn::Reduction::None)(p, t01).shape() == Shape{4});
  CHECK(nn::BCEWithLogitsLoss()(p, t01).dim() == 0);
  CHECK(nn::CrossEntropyLoss()(logits, cls).dim() == 0);
  CHECK(nn::NLLLoss()(log_softmax(logits, 1), cls).dim() == 0);
  namespace F = nn::functional;
  CHECK(F::mse_loss(p, t01, nn::Reduction::Mean).dim() == 0);
  CHECK(F::l1_loss(p, t01).dim() == 0);
  CHECK(F::binary_cross_entropy(p, t01).dim() == 0);
  CHECK(F::binary_cross_entropy_with_logits(p, t01).dim() == 0);
  CHECK(F::cross_entropy(logits, cls).dim() == 0);
  CHECK(F::nll_loss(log_softmax(logits, 1), cls).dim() == 0);

  // Each init fills w (fan_in 4, fan_out 3) in place; the checks tell the fills apart.
  Tensor w = zeros({3, 4});
  const auto& wv = w.data<float>();
  CHECK(nn::init::uniform_(w, 0, 1).is_same(w));  // fills in place and returns t
  CHECK((xt::amin(wv)() >= 0.0f && xt::amax(wv)() < 1.0f && xt::amax(wv)() > xt::amin(wv)()));
  nn::init::normal_(w, 0, 1);
  CHECK(xt::amin(wv)() < 0.0f);  // 12 standard normals are all >= 0 with probability 2^-12
  nn::init::zeros_(w);
  CHECK(xt::all(xt::equal(wv, 0.0f)));
  nn::init::ones_(w);
  CHECK(xt::all(xt::equal(wv, 1.0f)));
  nn::init::constant_(w, 2.0);
  CHECK(xt::all(xt::equal(wv, 2.0f)));
  nn::init::xavier_uniform_(w, 1.0);  // U(±sqrt(6 / (4 + 3)))
  CHECK(xt::amax(xt::abs(wv))() <= std::sqrt(6.0f / 7.0f));
  CHECK(xt::amax(wv)() > xt::amin(wv)());
  nn::init::constant_(w, 2.0);
  nn::init::xavier_normal_(w);
  CHECK(xt::amin(wv)() < 2.0f);
  nn::init::kaiming_uniform_(w, 0);  // U(±sqrt(6 / fan_in)) = U(±sqrt(1.5))
  CHECK(xt::amax(xt::abs(wv))() <= std::sqrt(1.5f));
  nn::init::constant_(w, 2.0);
  nn::init::kaiming_normal_(w);
  CHECK(xt::amin(wv)() < 2.0f);
  std::vector<Tensor> params = model->parameters();
  (*model)(rand({2, 10}, kFloat64)).sum().backward();
  CHECK(nn::utils::clip_grad_norm_(params, 1.0) >= 0.0);
  CHECK(params[0].grad().defined());
  model->zero_grad();  // drops every gradient
  for (const Tensor& param : params) CHECK_FALSE(param.grad().defined());
}

TEST_CASE("api: optim") {
  Tensor p = tensor(xt::xarray<float>{1.f, 2.f}, true);
  std::vector<Tensor> params{p};
  optim::SGD sgd(params, {.lr = 0.1, .momentum = 0.9});
  optim::SGD sgd_all(params, {.lr = 0.01, .momentum = 0, .dampening = 0, .weight_decay = 0, .nesterov = false});
  optim::Adam adam(params, {.lr = 1e-3, .betas = {0.9, 0.999}, .eps = 1e-8, .weight_decay = 0, .amsgrad = false});
  optim::AdamW adamw(params, {.lr = 1e-3, .betas = {0.9, 0.999}, .eps = 1e-8, .weight_decay = 1e-2, .amsgrad = false});
  optim::RMSprop rms(params, {.lr = 1e-2, .alpha = 0.99, .eps = 1e-8, .weight_decay = 0, .momentum = 0});
  // Each optimizer took its options (the learning rate is the one every optimizer exposes).
  CHECK(sgd_all.lr() == 0.01);
  CHECK(adamw.lr() == 1e-3);
  CHECK(rms.lr() == 1e-2);
  CHECK(optim::AdamWOptions{}.weight_decay == 1e-2);
  static_assert(std::is_same_v<decltype(optim::AdamOptions{}.betas), std::array<double, 2>>);
  p.set_grad(ones_like(p));
  sgd.step();
  CHECK(p.data<float>()(0) == doctest::Approx(0.9).epsilon(1e-6));  // 1 - 0.1·1
  sgd.zero_grad();
  CHECK_FALSE(p.grad().defined());
  CHECK(sgd.lr() == 0.1);
  sgd.set_lr(0.05);
  CHECK(sgd.lr() == 0.05);
  optim::Optimizer& base = adam;
  p.set_grad(ones_like(p));
  base.zero_grad();
  CHECK_FALSE(p.grad().defined());  // set to none by default
  auto state = adam.state_dict();
  auto lr_entry = std::find_if(state.begin(), state.end(), [](const auto& e) { return e.first == "param_groups.0.lr"; });
  REQUIRE(lr_entry != state.end());
  CHECK(lr_entry->second.item() == 1e-3);
  adam.set_lr(0.5);
  adam.load_state_dict(state);
  CHECK(adam.lr() == 1e-3);  // restored from the state, like PyTorch
  optim::StepLR step_lr(sgd, 2, 0.1);
  optim::ExponentialLR exp_lr(adam, 0.5);
  optim::CosineAnnealingLR cos_lr(rms, 10, 0.0);
  step_lr.step();
  exp_lr.step();
  cos_lr.step();
  CHECK(sgd.lr() == doctest::Approx(0.05).epsilon(1e-12));  // step 1 of 2: unchanged
  step_lr.step();
  CHECK(sgd.lr() == doctest::Approx(0.005).epsilon(1e-12));  // step 2: times 0.1
  CHECK(adam.lr() == doctest::Approx(5e-4).epsilon(1e-12));  // 1e-3 · 0.5
  CHECK(exp_lr.get_last_lr() == doctest::Approx(5e-4).epsilon(1e-12));
  // 1e-2 · (1 + cos(π/10)) / 2
  CHECK(rms.lr() == doctest::Approx(1e-2 * (1 + std::cos(std::numbers::pi / 10)) / 2).epsilon(1e-12));
}

TEST_CASE("api: data and training") {
  manual_seed(318);
  Tensor x = rand({10, 3});
  Tensor y = tensor({0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0});
  data::TensorDataset ds(x, y);
  data::DataLoader loader(ds, {.batch_size = 4, .shuffle = false, .drop_last = false, .seed = 0});
  static_assert(std::is_same_v<decltype(data::DataLoaderOptions{}.batch_size), std::size_t>);
  std::size_t batches = 0;
  for (auto& [input, target] : loader) {
    CHECK(input.size(0) == target.size(0));
    ++batches;
  }
  CHECK(batches == 3);  // 4 + 4 + 2
  data::Batch batch{x, y};
  CHECK(batch.input.is_same(x));
  data::CsvOptions csv{.skip_rows = 0, .delimiter = ','};
  CHECK(csv.delimiter == ',');

  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(3, 1), std::make_shared<nn::Sigmoid>()});
  optim::Adam opt(model->parameters(), {});
  nn::BCELoss loss;
  Tensor y2 = reshape(y, {10, 1});
  data::TensorDataset ds2(x, y2);
  data::DataLoader train(ds2, {.batch_size = 5});
  data::DataLoader val(ds2, {.batch_size = 5});
  History history = fit(*model, opt, loss, train, FitOptions{.epochs = 2, .validation = &val, .verbose = false});
  CHECK(history.size() == 2);
  const EpochMetrics& m = history.back();
  CHECK(m.epoch == 2);
  CHECK(m.loss > 0);
  CHECK(m.accuracy >= 0);
  CHECK(m.val_loss > 0);
  CHECK(m.val_accuracy <= 1);
  CHECK(m.seconds >= 0);
  Metrics metrics = evaluate(*model, nn::functional::binary_cross_entropy, val);
  CHECK(metrics.accuracy >= 0.0);
  CHECK(metrics.loss > 0.0);
}
