// The classic Keras example, line for line in C++:
//
//   model = Sequential()
//   model.add(Dense(10, input_dim=10, activation='relu'))
//   model.add(Dense(1, activation='sigmoid'))
//   model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])
//   model.fit(X_train, y_train, epochs=10, batch_size=32)
//   loss, accuracy = model.evaluate(X_test, y_test)
//   print('Loss:', loss); print('Accuracy:', accuracy)
//
// Data: the ten "mean" features of the Breast Cancer Wisconsin set (embedded in examples/data),
// standardised with the training set's statistics, on a fixed 80/20 split.
//
// Usage: seed_keras_mlp [--data PATH] [--epochs N] [--seed N] [--min-accuracy F]
#include <cstdio>
#include <cstring>
#include <string>
#include <xgrad.hpp>

using namespace xgrad;

#ifndef XGRAD_EXAMPLE_DATA_DIR
#define XGRAD_EXAMPLE_DATA_DIR "examples/data"
#endif

int main(int argc, char** argv) {
  std::string path = XGRAD_EXAMPLE_DATA_DIR "/breast_cancer.csv";
  int epochs = 10;
  std::uint64_t seed = 0;
  double min_accuracy = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--data")) path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--epochs")) epochs = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seed")) seed = std::stoull(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--min-accuracy")) min_accuracy = std::stod(argv[i + 1]);
    else { std::fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
  }
  manual_seed(seed);

  // ---- Data: 569 rows; columns 0-9 are the "mean" features, column 30 the class (0/1) -------------
  Tensor table = data::read_csv(path, {.skip_rows = 1});
  Tensor features = slice(table, 1, 0, 10);
  Tensor labels = slice(table, 1, 30, 31);  // shape (569, 1), like the model's sigmoid output
  // A fixed 80/20 split of a seeded permutation (the file is not in random order).
  const std::size_t n = table.size(0), n_train = n * 4 / 5;
  Tensor order = randperm(n);
  Tensor train_idx = slice(order, 0, 0, static_cast<std::int64_t>(n_train));
  Tensor test_idx = slice(order, 0, static_cast<std::int64_t>(n_train), static_cast<std::int64_t>(n));
  Tensor X_train = index_select(features, 0, train_idx), y_train = index_select(labels, 0, train_idx);
  Tensor X_test = index_select(features, 0, test_idx), y_test = index_select(labels, 0, test_idx);
  // Standardise with the training statistics only (area ~1000, smoothness ~0.1).
  Tensor mu = mean(X_train, {0}, true);
  Tensor sigma = sqrt(var(X_train, {0}, false, true));
  X_train = (X_train - mu) / sigma;
  X_test = (X_test - mu) / sigma;

  // ---- model = Sequential([Dense(10, relu), Dense(1, sigmoid)]) -----------------------------------
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(10, 10), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(10, 1), std::make_shared<nn::Sigmoid>()});
  // Keras initialises Dense layers with glorot_uniform weights and zero biases.
  for (auto& [name, p] : model->named_parameters()) {
    if (name.ends_with("weight")) nn::init::xavier_uniform_(p);
    else nn::init::zeros_(p);
  }

  // ---- model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy']) ---------
  nn::BCELoss loss;
  optim::Adam adam(model->parameters(), {.lr = 1e-3});

  // ---- model.fit(X_train, y_train, epochs=10, batch_size=32) --------------------------------------
  data::TensorDataset train_set(X_train, y_train), test_set(X_test, y_test);
  data::DataLoader train_loader(train_set, {.batch_size = 32, .shuffle = true, .seed = seed});
  data::DataLoader test_loader(test_set, {.batch_size = 32});
  fit(*model, adam, loss, train_loader, {.epochs = epochs});

  // ---- loss, accuracy = model.evaluate(X_test, y_test) --------------------------------------------
  Metrics result = evaluate(*model, loss, test_loader);
  std::printf("Loss: %.4f\n", result.loss);
  std::printf("Accuracy: %.4f\n", result.accuracy);
  if (result.accuracy < min_accuracy) {
    std::fprintf(stderr, "accuracy %.4f is below the required %.4f\n", result.accuracy, min_accuracy);
    return 1;
  }
  return 0;
}
