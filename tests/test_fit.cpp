#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <xgrad.hpp>
#include "train/progress.hpp"

using namespace xgrad;

namespace {

// Two Gaussian blobs in the plane, n per class, standard deviation 0.5 per coordinate, centred at
// (-2, -2) (class 0) and (2, 2) (class 1). Why a linear model must separate them: the line
// x1 + x2 = 0 splits the centres, and x1 + x2 of a class-0 point is normal with mean -4 and standard
// deviation 0.5·√2 ≈ 0.71, so it crosses 0 only beyond 5.7 standard deviations (probability ~1e-8
// per point); class 1 is symmetric. The Bayes accuracy is 1 - 1e-8: logistic regression reaching
// 0.95 is a low bar, and failing it means training is broken.
struct Blobs {
  Tensor x;       // (2n, 2)
  Tensor labels;  // (2n) class indices 0/1
  Tensor binary;  // (2n, 1) the same as 0/1 targets for a sigmoid output
};
Blobs make_blobs(std::size_t n, std::uint64_t seed) {
  manual_seed(seed);
  Tensor noise = randn({2 * n, 2}) * 0.5;
  xt::xarray<float> centres = xt::xarray<float>::from_shape({2 * n, 2});
  xt::xarray<float> labels = xt::xarray<float>::from_shape({2 * n});
  for (std::size_t i = 0; i < 2 * n; ++i) {
    const float c = i < n ? -2.f : 2.f;
    centres(i, 0) = centres(i, 1) = c;
    labels(i) = i < n ? 0.f : 1.f;
  }
  Tensor y = tensor(labels);
  return Blobs{noise + tensor(centres), y, reshape(y, {-1, 1})};
}

// A Linear(2, 1) with weight [1, 1] and bias 0: output = x1 + x2.
std::shared_ptr<nn::Linear> sum_model() {
  auto model = std::make_shared<nn::Linear>(2, 1);
  model->weight.data<float>() = xt::xarray<float>{{1.f, 1.f}};
  model->bias.data<float>() = xt::xarray<float>{0.f};
  return model;
}

// Three samples whose sum-model outputs are 1, 1, 3 against targets 0, 1, 1.
data::TensorDataset three_samples() {
  return data::TensorDataset(tensor({{1, 0}, {0, 1}, {2, 1}}), reshape(tensor({0, 1, 1}), {-1, 1}));
}

}  // namespace

TEST_CASE("fit: logistic regression separates two Gaussian blobs") {
  Blobs train = make_blobs(100, 1);
  Blobs test = make_blobs(100, 2);
  manual_seed(3);
  auto model = std::make_shared<nn::Sequential>(
      std::initializer_list<std::shared_ptr<nn::Module>>{std::make_shared<nn::Linear>(2, 1), std::make_shared<nn::Sigmoid>()});
  optim::SGD sgd(model->parameters(), {.lr = 0.1});
  nn::BCELoss loss;
  data::DataLoader train_loader(data::TensorDataset(train.x, train.binary), {.batch_size = 16, .shuffle = true, .seed = 4});
  data::DataLoader test_loader(data::TensorDataset(test.x, test.binary), {.batch_size = 64});

  model->eval();  // fit trains in training mode and restores this one
  History history = fit(model, sgd, loss, train_loader, {.epochs = 8, .validation = &test_loader, .verbose = false});
  CHECK_FALSE(model->is_training());
  REQUIRE(history.size() == 8);
  for (std::size_t e = 0; e < history.size(); ++e) {
    CHECK(history[e].epoch == int(e) + 1);
    CHECK(history[e].seconds >= 0);
    CHECK(history[e].accuracy >= 0);
    CHECK(history[e].accuracy <= 1);
  }
  CHECK(history.back().loss < history.front().loss);
  CHECK(history.back().accuracy > 0.95);
  CHECK(history.back().val_accuracy > 0.95);

  model->train();
  Metrics m = evaluate(model, loss, test_loader);
  CHECK(model->is_training());  // evaluate restores the mode it found
  CHECK(m.accuracy > 0.95);
  // evaluate on the validation loader is what fit reported for the last epoch (no change since).
  CHECK(m.loss == doctest::Approx(history.back().val_loss).epsilon(1e-6));
  CHECK(m.accuracy == history.back().val_accuracy);
}

TEST_CASE("fit: softmax classifier with class-index targets, loss module or nn::functional by name") {
  Blobs train = make_blobs(100, 5);
  manual_seed(6);
  auto model = std::make_shared<nn::Linear>(2, 2);
  optim::Adam adam(model->parameters(), {.lr = 0.05});
  data::DataLoader loader(data::TensorDataset(train.x, train.labels), {.batch_size = 20, .shuffle = true});
  // cross_entropy's third parameter (the reduction) defaults to Mean, as fit passes it.
  History h = fit(*model, adam, nn::functional::cross_entropy, loader, {.epochs = 5, .verbose = false});
  CHECK(h.back().accuracy > 0.95);
  CHECK(std::isnan(h.back().val_loss));  // no validation data
  CHECK(std::isnan(h.back().val_accuracy));
  nn::CrossEntropyLoss ce;
  CHECK(evaluate(*model, ce, loader).accuracy > 0.95);
}

TEST_CASE("fit: per-epoch loss is the sample-weighted mean of batch losses") {
  // lr = 0 keeps the sum model fixed, so each epoch measures the same thing. Squared errors of the
  // three samples: (1-0)² = 1, (1-1)² = 0, (3-1)² = 4. Batches of 2: MSE 0.5 over 2 samples, then 4
  // over 1 sample; the sample-weighted mean is (0.5·2 + 4·1) / 3 = 5/3 (the plain mean of the batch
  // means would be 2.25). Predictions output > 0.5 are 1, 1, 1 against 0, 1, 1: accuracy 2/3.
  auto model = sum_model();
  optim::SGD frozen(model->parameters(), {.lr = 0.0});
  data::DataLoader loader(three_samples(), {.batch_size = 2});
  nn::MSELoss mse;
  History h = fit(*model, frozen, mse, loader, {.epochs = 2, .verbose = false});
  REQUIRE(h.size() == 2);
  for (const EpochMetrics& m : h) {
    CHECK(m.loss == doctest::Approx(5.0 / 3.0));
    CHECK(m.accuracy == doctest::Approx(2.0 / 3.0));
  }
  Metrics e = evaluate(*model, mse, loader);
  CHECK(e.loss == doctest::Approx(5.0 / 3.0));
  CHECK(e.accuracy == doctest::Approx(2.0 / 3.0));
}

TEST_CASE("evaluate: accuracy rules, no graph, eval mode") {
  nn::Identity id;
  // Several outputs, class indices: argmax rows [1,0]→0, [0,1]→1, [2,1]→0 against 0, 0, 0 → 2/3.
  // The loss is mean(output): batches {rows 0, 1} → 0.5 over 2 samples, {row 2} → 1.5 over 1:
  // (0.5·2 + 1.5) / 3 = 5/6.
  bool saw_grad_mode = false, saw_training = false, saw_requires_grad = false;
  auto mean_loss = [&](const Tensor& out, const Tensor&) {
    saw_grad_mode |= is_grad_enabled();
    saw_training |= id.is_training();
    saw_requires_grad |= out.requires_grad();
    return mean(out);
  };
  Tensor x = tensor({{1, 0}, {0, 1}, {2, 1}});
  Tensor w = tensor({1.0}, kFloat32, true);
  // x * w requires grad outside no-grad mode; evaluate must not record it.
  auto scaled = [&](const Tensor& out, const Tensor& t) { return mean_loss(out * w, t); };
  data::DataLoader indices(data::TensorDataset(x, tensor({0, 0, 0})), {.batch_size = 2});
  Metrics m = evaluate(id, scaled, indices);
  CHECK(m.accuracy == doctest::Approx(2.0 / 3.0));
  CHECK(m.loss == doctest::Approx(5.0 / 6.0));
  CHECK_FALSE(saw_grad_mode);
  CHECK_FALSE(saw_training);
  CHECK_FALSE(saw_requires_grad);
  CHECK(id.is_training());

  // One-hot targets of the output's shape: argmax [0, 1, 0] against [0, 0, 1] → 1/3.
  data::DataLoader onehot(data::TensorDataset(x, tensor({{1, 0}, {1, 0}, {0, 1}})), {.batch_size = 3});
  CHECK(evaluate(id, mean_loss, onehot).accuracy == doctest::Approx(1.0 / 3.0));

  // One output: threshold 0.5 (0.5 itself is class 0). Predictions 0, 1, 0, 1 against 0, 1, 1, 0 → 2/4.
  data::DataLoader binary(data::TensorDataset(reshape(tensor({0.2, 0.7, 0.5, 0.9}), {-1, 1}), tensor({0, 1, 1, 0})),
                          {.batch_size = 3});
  CHECK(evaluate(id, mean_loss, binary).accuracy == doctest::Approx(0.5));

  // Targets that are not labels (a regression) leave accuracy undefined.
  data::DataLoader regression(data::TensorDataset(reshape(tensor({0.2, 0.7}), {-1, 1}), tensor({2.5, -1})), {.batch_size = 2});
  CHECK(std::isnan(evaluate(id, mean_loss, regression).accuracy));
  data::DataLoader bad_index(data::TensorDataset(x, tensor({0, 2, 0})), {.batch_size = 3});
  CHECK(std::isnan(evaluate(id, mean_loss, bad_index).accuracy));
}

TEST_CASE("fit/evaluate: errors") {
  auto model = sum_model();
  optim::SGD sgd(model->parameters(), {.lr = 0.1});
  data::DataLoader loader(three_samples(), {.batch_size = 2});
  nn::MSELoss per_element(nn::Reduction::None);
  CHECK_THROWS_WITH_AS(fit(*model, sgd, per_element, loader, {.epochs = 1, .verbose = false}),
                       doctest::Contains("single value"), Error);
  CHECK_THROWS_WITH_AS(evaluate(*model, per_element, loader), doctest::Contains("evaluate: the loss must be a single value"),
                       Error);
  nn::MSELoss mse;
  CHECK_THROWS_WITH_AS(fit(*model, sgd, mse, loader, {.epochs = -1, .verbose = false}),
                       doctest::Contains("epochs must be >= 0, got -1"), Error);
  data::DataLoader empty(three_samples(), {.batch_size = 5, .drop_last = true});
  CHECK_THROWS_WITH_AS(fit(*model, sgd, mse, empty, {.verbose = false}), doctest::Contains("no batches"), Error);
  CHECK_THROWS_WITH_AS(fit(*model, sgd, mse, loader, {.validation = &empty, .verbose = false}),
                       doctest::Contains("validation loader yields no batches"), Error);
  CHECK_THROWS_WITH_AS(evaluate(*model, mse, empty), doctest::Contains("evaluate"), Error);
  CHECK(fit(*model, sgd, mse, loader, {.epochs = 0}).empty());
}

TEST_CASE("fit: History CSV") {
  History h;
  h.push_back({.epoch = 1, .loss = 0.5, .accuracy = 0.75, .seconds = 1.25});
  h.push_back({.epoch = 2, .loss = 0.25, .accuracy = 1, .val_loss = 0.125, .val_accuracy = 0.5, .seconds = 2});
  // NaN metrics (no validation in epoch 1) are empty cells.
  const std::string expected =
      "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n"
      "1,0.5,0.75,,,1.2500\n"
      "2,0.25,1,0.125,0.5,2.0000\n";
  CHECK(h.csv() == expected);
  const auto path = std::filesystem::temp_directory_path() / ("xgrad_test_history_" + std::to_string(::getpid()) + ".csv");
  save_history_csv(h, path.string());
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  CHECK(content.str() == expected);
  CHECK_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  std::filesystem::remove(path);
  CHECK_THROWS_WITH_AS(h.to_csv("/nonexistent/xgrad/history.csv"), doctest::Contains("cannot write"), Error);
}

TEST_CASE("fit: progress output, plain lines off a terminal, a redrawn bar on one") {
  auto model = sum_model();
  optim::SGD frozen(model->parameters(), {.lr = 0.0});
  data::DataLoader loader(three_samples(), {.batch_size = 2});
  data::DataLoader validation(three_samples(), {.batch_size = 3});
  nn::MSELoss mse;
  const auto loss = detail::make_loss_call(mse);

  // Not a terminal: exactly one line per epoch. Loss 5/3 and accuracy 2/3 as derived above, the same
  // on the validation set (same samples, same frozen model).
  std::ostringstream plain;
  detail::fit_impl(*model, frozen, loss, loader, {.epochs = 2, .validation = &validation}, plain, false);
  std::istringstream lines(plain.str());
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    ++count;
    const std::string prefix = "Epoch " + std::to_string(count) +
                               "/2 - loss: 1.6667 - accuracy: 0.6667 - val_loss: 1.6667 - val_accuracy: 0.6667 - ";
    CHECK(line.rfind(prefix, 0) == 0);
    CHECK(line.back() == 's');
    CHECK(line.find('\r') == std::string::npos);
  }
  CHECK(count == 2);

  // verbose = false: silent, also through the public fit writing to std::cout.
  std::ostringstream quiet;
  detail::fit_impl(*model, frozen, loss, loader, {.epochs = 1, .verbose = false}, quiet, true);
  CHECK(quiet.str().empty());
  std::ostringstream captured;
  auto* old = std::cout.rdbuf(captured.rdbuf());
  fit(*model, frozen, mse, loader, {.epochs = 1, .verbose = false});
  std::cout.rdbuf(old);
  CHECK(captured.str().empty());

  // A terminal: a header line, then the bar redrawn with \r and finished with the epoch's metrics.
  std::ostringstream bar;
  detail::fit_impl(*model, frozen, loss, loader, {.epochs = 1}, bar, true);
  const std::string s = bar.str();
  CHECK(s.rfind("Epoch 1/1\n", 0) == 0);
  CHECK(s.find("\r1/2 [===============>..............] - ETA: ") != std::string::npos);
  CHECK(s.find("samples/s") != std::string::npos);
  CHECK(s.find("\r2/2 [==============================] - ") != std::string::npos);
  CHECK(s.find("loss: 1.6667 - accuracy: 0.6667") != std::string::npos);
  CHECK(s.back() == '\n');
  CHECK(detail::format_duration(5) == "5s");
  CHECK(detail::format_duration(65) == "1:05");
  CHECK(detail::format_duration(3723) == "1:02:03");
}
