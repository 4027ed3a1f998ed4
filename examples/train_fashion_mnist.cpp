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
//
// Data-parallel: `mpirun -np N train_fashion_mnist` (built with xgrad::distributed) trains on N
// processes with no other change: each rank takes its shard of every epoch (DataLoaderOptions
// .num_replicas/.rank) with batch-size / N rows, so the global batch stays --batch-size, and the
// model is wrapped in DistributedDataParallel. Rank 0 prints and writes the files.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>
#include <xgrad.hpp>
#ifdef XGRAD_HAVE_DISTRIBUTED
#include <distributed/distributed.hpp>
#endif

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

// This process's place in a data-parallel job: rank 0 of 1 unless started by mpirun.
struct Place {
  std::size_t rank = 0, world = 1;
  bool main() const { return rank == 0; }
};

int run(const Options& o, const Place& place) {
  manual_seed(o.seed);
  set_num_threads(o.threads);
  if (place.world > 1 && o.batch_size % place.world != 0)
    throw Error("--batch-size " + std::to_string(o.batch_size) + " does not split evenly over " +
                std::to_string(place.world) + " processes");
  // Everything below prints on rank 0 only.
  auto say = [&](const char* fmt, auto... args) {
    if (place.main()) std::printf(fmt, args...);
  };

  data::Split split = data::load_fashion_mnist(o.data_dir);
  data::TensorDataset train = split.train;
  if (o.limit > 0 && o.limit < train.size()) {
    const auto n = static_cast<std::int64_t>(o.limit);
    train = data::TensorDataset(slice(train.inputs(), 0, 0, n), slice(train.targets(), 0, 0, n));
  }
  say("Fashion-MNIST: %zu training images, %zu test images\n", train.size(), split.test.size());

  auto model = make_mlp(o.hidden);
  {
    NoGradGuard no_grad;  // one forward pass on a dummy batch lets the summary show output shapes
    (*model)(zeros({1, 784}));
  }
  if (place.main()) std::cout << nn::summary(*model) << "\n";

  // The module that trains: the model itself, or its DistributedDataParallel wrapper over N processes.
  std::shared_ptr<nn::Module> trained = model;
#ifdef XGRAD_HAVE_DISTRIBUTED
  if (place.world > 1) trained = std::make_shared<distributed::DistributedDataParallel>(model);
#endif
  optim::Adam adam(trained->parameters(), {.lr = o.lr});
  nn::CrossEntropyLoss loss;
  data::DataLoader train_loader(train, {.batch_size = o.batch_size / place.world, .shuffle = true, .seed = o.seed,
                                        .num_replicas = place.world, .rank = place.rank});
  // Each rank evaluates its share of the test set; fit and evaluate average over all of them.
  data::DataLoader test_loader(split.test, {.batch_size = 1000, .num_replicas = place.world, .rank = place.rank});

  if (!o.checkpoint_dir.empty()) {
    if (place.world > 1) {  // checkpoints hold one process's state (see train/checkpoint.hpp)
      say("%s", "--checkpoint-dir is for single-process runs; drop it under mpirun\n");
      return 2;
    }
    std::printf("checkpoints in %s (resuming from the newest if there is one)\n", o.checkpoint_dir.c_str());
  }
  History history = fit(*trained, adam, loss, train_loader,
                        {.epochs = o.epochs,
                         .validation = &test_loader,
                         .checkpoint_dir = o.checkpoint_dir,
                         .checkpoint_every_steps = o.checkpoint_every});
  if (place.main()) history.to_csv(o.metrics_out);

  Metrics test = evaluate(*trained, loss, test_loader);
  say("test loss: %.4f\n", test.loss);
  say("test accuracy: %.2f%%\n", 100.0 * test.accuracy);

  // Save, reload into a fresh model, and check the reloaded model scores exactly the same.
  if (place.main()) model->save(o.model_out);
#ifdef XGRAD_HAVE_DISTRIBUTED
  distributed::barrier();  // the file is complete before any rank reads it
#endif
  auto reloaded = make_mlp(o.hidden);
  reloaded->load(o.model_out);
  Metrics again = evaluate(*reloaded, loss, test_loader);
  say("saved %s; reloaded model test accuracy: %.2f%%\n", o.model_out.c_str(), 100.0 * again.accuracy);
  say("metrics written to %s\n", o.metrics_out.c_str());
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
  Place place;
#ifdef XGRAD_HAVE_DISTRIBUTED
  place.world = static_cast<std::size_t>(distributed::init());
  place.rank = static_cast<std::size_t>(distributed::rank());
#endif
  try {
    const int status = run(parse(argc, argv), place);
#ifdef XGRAD_HAVE_DISTRIBUTED
    distributed::finalize();
#endif
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 1;
  }
}
