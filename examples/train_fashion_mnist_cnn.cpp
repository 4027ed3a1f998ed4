// Train a small convolutional network on Fashion-MNIST.
//
// The recipe: three conv-BatchNorm-ReLU-maxpool blocks (32, 64, 128 channels, 3×3 kernels), dropout,
// a linear head; cross-entropy, Adam (lr 1e-3) with cosine annealing of the learning rate over the
// epochs, batch 128, 15 epochs, seed 0. Images are N×1×28×28, standardised with the training set's
// mean and standard deviation. The test set (10 000 images) is evaluated after every epoch; the
// program prints seconds per epoch, the final test accuracy, saves the model (safetensors) and the
// metrics (CSV), and reloads the model to show it scores the same.
//
// Usage: train_fashion_mnist_cnn [--epochs 15] [--batch-size 128] [--lr 1e-3] [--seed 0] [--threads 1]
//                                [--data DIR] [--limit N] [--test-limit N]
//                                [--model-out cnn.safetensors] [--metrics-out cnn_metrics.csv]
//                                [--min-accuracy F]
// --limit / --test-limit use only the first N training / test images (quick runs); --min-accuracy makes
// the program fail when the final test accuracy is below F (the slow test uses 0.925).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <xgrad.hpp>

using namespace xgrad;

struct Options {
  int epochs = 15;
  std::size_t batch_size = 128;
  double lr = 1e-3;
  std::uint64_t seed = 0;
  int threads = 1;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::size_t limit = 0, test_limit = 0;
  std::string model_out = "cnn.safetensors";
  std::string metrics_out = "cnn_metrics.csv";
  double min_accuracy = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf(
          "usage: train_fashion_mnist_cnn [--epochs 15] [--batch-size 128] [--lr 1e-3] [--seed 0] [--threads 1]\n"
          "                               [--data DIR] [--limit N] [--test-limit N] [--model-out cnn.safetensors]\n"
          "                               [--metrics-out cnn_metrics.csv] [--min-accuracy F]\n");
      std::exit(0);
    }
    if (i + 1 >= argc) throw Error("missing value after " + flag);
    const std::string value = argv[++i];
    if (flag == "--epochs") o.epochs = std::stoi(value);
    else if (flag == "--batch-size") o.batch_size = std::stoul(value);
    else if (flag == "--lr") o.lr = std::stod(value);
    else if (flag == "--seed") o.seed = std::stoull(value);
    else if (flag == "--threads") o.threads = std::stoi(value);
    else if (flag == "--data") o.data_dir = value;
    else if (flag == "--limit") o.limit = std::stoul(value);
    else if (flag == "--test-limit") o.test_limit = std::stoul(value);
    else if (flag == "--model-out") o.model_out = value;
    else if (flag == "--metrics-out") o.metrics_out = value;
    else if (flag == "--min-accuracy") o.min_accuracy = std::stod(value);
    else throw Error("unknown option " + flag);
  }
  return o;
}

// conv 3×3 (same size) -> BatchNorm -> ReLU -> 2×2 max pooling: halves the image, widens the channels.
void add_block(nn::Sequential& model, std::size_t in, std::size_t out) {
  model.push_back(std::make_shared<nn::Conv2d>(in, out, 3, nn::Conv2dOptions{.padding = 1, .bias = false}));
  model.push_back(std::make_shared<nn::BatchNorm2d>(out));
  model.push_back(std::make_shared<nn::ReLU>());
  model.push_back(std::make_shared<nn::MaxPool2d>(2));
}

std::shared_ptr<nn::Sequential> make_cnn() {
  auto model = std::make_shared<nn::Sequential>();
  add_block(*model, 1, 32);    // 28×28 -> 14×14
  add_block(*model, 32, 64);   // -> 7×7
  add_block(*model, 64, 128);  // -> 3×3
  model->push_back(std::make_shared<nn::Flatten>());
  model->push_back(std::make_shared<nn::Dropout>(0.3));
  model->push_back(std::make_shared<nn::Linear>(128 * 3 * 3, 10));
  return model;
}

data::TensorDataset first(const data::TensorDataset& d, std::size_t n) {
  if (n == 0 || n >= d.size()) return d;
  const auto k = static_cast<std::int64_t>(n);
  return data::TensorDataset(slice(d.inputs(), 0, 0, k), slice(d.targets(), 0, 0, k));
}

int run(const Options& o) {
  manual_seed(o.seed);
  set_num_threads(o.threads);

  data::Split split = data::load_fashion_mnist(o.data_dir, {.flatten = false});
  // Standardise with the training set's statistics (Fashion-MNIST: mean 0.2860, std 0.3530).
  const double mean = split.train.inputs().mean().item(), std = split.train.inputs().var({}, false).sqrt().item();
  auto standardise = [&](const data::TensorDataset& d) {
    return data::TensorDataset((d.inputs() - mean) / std, d.targets());
  };
  data::TensorDataset train = first(standardise(split.train), o.limit);
  data::TensorDataset test = first(standardise(split.test), o.test_limit);
  std::printf("Fashion-MNIST: %zu training images, %zu test images (N×1×28×28, mean %.4f, std %.4f)\n",
              train.size(), test.size(), mean, std);

  auto model = make_cnn();
  {
    NoGradGuard no_grad;  // a forward pass on a dummy batch (eval: no statistics change) fills the summary's shapes
    model->eval();
    (*model)(zeros({1, 1, 28, 28}));
    model->train();
  }
  std::cout << nn::summary(*model) << "\n";

  optim::Adam adam(model->parameters(), {.lr = o.lr});
  optim::CosineAnnealingLR schedule(adam, o.epochs);
  nn::CrossEntropyLoss loss;
  data::DataLoader train_loader(train, {.batch_size = o.batch_size, .shuffle = true, .seed = o.seed});
  data::DataLoader test_loader(test, {.batch_size = 500});

  // One fit call per epoch, then the schedule's step.
  History history;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    std::printf("epoch %d/%d, lr %.6f\n", epoch, o.epochs, adam.lr());
    History h = fit(*model, adam, loss, train_loader, {.epochs = 1, .validation = &test_loader});
    h.front().epoch = epoch;
    history.push_back(h.front());
    std::printf("  %.1f s/epoch, test accuracy %.2f%%\n", h.front().seconds, 100.0 * h.front().val_accuracy);
    schedule.step();
  }
  history.to_csv(o.metrics_out);
  double seconds = 0;
  for (const auto& e : history) seconds += e.seconds;

  Metrics result = evaluate(*model, loss, test_loader);
  std::printf("mean seconds per epoch: %.1f\n", seconds / static_cast<double>(history.size()));
  std::printf("test loss: %.4f\n", result.loss);
  std::printf("test accuracy: %.2f%%\n", 100.0 * result.accuracy);

  model->save(o.model_out);
  auto reloaded = make_cnn();
  reloaded->load(o.model_out);
  Metrics again = evaluate(*reloaded, loss, test_loader);
  std::printf("saved %s; reloaded model test accuracy: %.2f%%\n", o.model_out.c_str(), 100.0 * again.accuracy);
  std::printf("metrics written to %s\n", o.metrics_out.c_str());
  if (again.accuracy != result.accuracy) {
    std::fprintf(stderr, "the reloaded model scores differently\n");
    return 1;
  }
  if (result.accuracy < o.min_accuracy) {
    std::fprintf(stderr, "test accuracy %.4f is below the required %.4f\n", result.accuracy, o.min_accuracy);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_fashion_mnist_cnn: %s\n", e.what());
    return 1;
  }
}
