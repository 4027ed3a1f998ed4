// Train a multilayer perceptron on Fashion-MNIST: xgrad's main job.
//
// The recipe: MLP 784-256-256-10 with ReLU, cross-entropy, Adam (lr 1e-3), batch 128, 10 epochs,
// reshuffled every epoch. The test set (10 000 images) serves as validation data after each epoch.
// At the end the program prints the final test accuracy, saves the model in the safetensors format
// and the per-epoch metrics as CSV, then reloads the saved model to show it scores the same.
//
// Usage: train_fashion_mnist [--epochs 10] [--batch-size 128] [--lr 1e-3] [--hidden 256,256]
//                            [--seed 0] [--threads 1] [--data DIR] [--limit N]
//                            [--model-out model.safetensors] [--metrics-out metrics.csv]
//                            [--min-accuracy F] [--checkpoint-dir DIR] [--checkpoint-every N]
// --checkpoint-dir DIR writes a checkpoint after every epoch (and every N steps with
// --checkpoint-every N) and, when DIR already holds one, resumes from it: run the same command again
// after a crash or a kill and training continues where it stopped, to the same final weights.
// --limit N trains on the first N training images only (for quick runs); --min-accuracy makes the
// program fail when the final test accuracy is below F (used by the slow test).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>
#include <xgrad.hpp>

using namespace xgrad;

struct Options {
  int epochs = 10;
  std::size_t batch_size = 128;
  double lr = 1e-3;
  std::vector<std::size_t> hidden{256, 256};
  std::uint64_t seed = 0;
  int threads = 1;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::size_t limit = 0;
  std::string model_out = "model.safetensors";
  std::string metrics_out = "metrics.csv";
  double min_accuracy = 0;
  std::string checkpoint_dir;
  std::int64_t checkpoint_every = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf(
          "usage: train_fashion_mnist [--epochs 10] [--batch-size 128] [--lr 1e-3] [--hidden 256,256] [--seed 0]\n"
          "                           [--threads 1] [--data DIR] [--limit N] [--model-out model.safetensors]\n"
          "                           [--metrics-out metrics.csv] [--min-accuracy F] [--checkpoint-dir DIR]\n"
          "                           [--checkpoint-every N]\n");
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
    else if (flag == "--model-out") o.model_out = value;
    else if (flag == "--metrics-out") o.metrics_out = value;
    else if (flag == "--min-accuracy") o.min_accuracy = std::stod(value);
    else if (flag == "--checkpoint-dir") o.checkpoint_dir = value;
    else if (flag == "--checkpoint-every") o.checkpoint_every = std::stoll(value);
    else if (flag == "--hidden") {
      o.hidden.clear();
      std::stringstream ss(value);
      for (std::string part; std::getline(ss, part, ',');) o.hidden.push_back(std::stoul(part));
    } else {
      throw Error("unknown option " + flag);
    }
  }
  return o;
}

// Linear-ReLU blocks for each hidden size, then a Linear layer to the 10 classes.
std::shared_ptr<nn::Sequential> make_mlp(const std::vector<std::size_t>& hidden) {
  auto model = std::make_shared<nn::Sequential>();
  std::size_t in = 784;
  for (std::size_t h : hidden) {
    model->push_back(std::make_shared<nn::Linear>(in, h));
    model->push_back(std::make_shared<nn::ReLU>());
    in = h;
  }
  model->push_back(std::make_shared<nn::Linear>(in, 10));
  return model;
}

int run(const Options& o) {
  manual_seed(o.seed);
  set_num_threads(o.threads);

  data::Split split = data::load_fashion_mnist(o.data_dir);
  data::TensorDataset train = split.train;
  if (o.limit > 0 && o.limit < train.size()) {
    const auto n = static_cast<std::int64_t>(o.limit);
    train = data::TensorDataset(slice(train.inputs(), 0, 0, n), slice(train.targets(), 0, 0, n));
  }
  std::printf("Fashion-MNIST: %zu training images, %zu test images\n", train.size(), split.test.size());

  auto model = make_mlp(o.hidden);
  {
    NoGradGuard no_grad;  // one forward pass on a dummy batch lets the summary show output shapes
    (*model)(zeros({1, 784}));
  }
  std::cout << nn::summary(*model) << "\n";

  optim::Adam adam(model->parameters(), {.lr = o.lr});
  nn::CrossEntropyLoss loss;
  data::DataLoader train_loader(train, {.batch_size = o.batch_size, .shuffle = true, .seed = o.seed});
  data::DataLoader test_loader(split.test, {.batch_size = 1000});

  if (!o.checkpoint_dir.empty())
    std::printf("checkpoints in %s (resuming from the newest if there is one)\n", o.checkpoint_dir.c_str());
  History history = fit(*model, adam, loss, train_loader,
                        {.epochs = o.epochs,
                         .validation = &test_loader,
                         .checkpoint_dir = o.checkpoint_dir,
                         .checkpoint_every_steps = o.checkpoint_every});
  history.to_csv(o.metrics_out);

  Metrics test = evaluate(*model, loss, test_loader);
  std::printf("test loss: %.4f\n", test.loss);
  std::printf("test accuracy: %.2f%%\n", 100.0 * test.accuracy);

  // Save, reload into a fresh model, and check the reloaded model scores exactly the same.
  model->save(o.model_out);
  auto reloaded = make_mlp(o.hidden);
  reloaded->load(o.model_out);
  Metrics again = evaluate(*reloaded, loss, test_loader);
  std::printf("saved %s; reloaded model test accuracy: %.2f%%\n", o.model_out.c_str(), 100.0 * again.accuracy);
  std::printf("metrics written to %s\n", o.metrics_out.c_str());
  if (again.accuracy != test.accuracy) {
    std::fprintf(stderr, "the reloaded model scores differently\n");
    return 1;
  }
  if (test.accuracy < o.min_accuracy) {
    std::fprintf(stderr, "test accuracy %.4f is below the required %.4f\n", test.accuracy, o.min_accuracy);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 1;
  }
}
