// Callbacks on scripted metric sequences: each expected decision is derived by hand from Keras 3's
// rules (keras/src/callbacks/early_stopping.py, reduce_lr_on_plateau.py), quoted where used.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

EpochMetrics metrics(int epoch, double val_loss, double val_accuracy = kNaN) {
  EpochMetrics m;
  m.epoch = epoch;
  m.loss = 1.0 / epoch;
  m.accuracy = 0.5;
  m.val_loss = val_loss;
  m.val_accuracy = val_accuracy;
  return m;
}

// Feeds val_loss values (epochs 1, 2, ...) and returns on_epoch_end's answers.
std::vector<bool> feed(Callback& cb, const std::vector<double>& val_losses) {
  std::vector<bool> stops;
  int epoch = 0;
  for (double v : val_losses) {
    ++epoch;
    stops.push_back(cb.on_epoch_end(epoch, metrics(epoch, v)));
  }
  return stops;
}

std::vector<bool> feed_accuracy(Callback& cb, const std::vector<double>& accuracies) {
  std::vector<bool> stops;
  int epoch = 0;
  for (double a : accuracies) {
    ++epoch;
    stops.push_back(cb.on_epoch_end(epoch, metrics(epoch, 1.0, a)));
  }
  return stops;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("xgrad_test_callbacks_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("EarlyStopping: patience 0 stops at the first epoch without improvement") {
  EarlyStopping es;  // monitor val_loss, patience 0, mode auto -> min
  es.on_train_begin();
  // e1: 1.0 < inf improves (wait 1 -> 0); e2: 0.9 improves; e3: 0.95 does not, wait = 1 >= 0 -> stop.
  CHECK(feed(es, {1.0, 0.9, 0.95}) == std::vector<bool>{false, false, true});
  CHECK(es.stopped_epoch() == 3);
  CHECK(es.best() == 0.9);
  CHECK(es.best_epoch() == 2);
}

TEST_CASE("EarlyStopping: patience counts epochs since the last improvement") {
  EarlyStopping es({.patience = 2});
  es.on_train_begin();
  // e1 best 1.0 (wait 0); e2 1.1: wait 1 < 2; e3 0.9 improves: wait 0; e4 wait 1; e5 wait 2 -> stop.
  CHECK(feed(es, {1.0, 1.1, 0.9, 1.0, 1.0}) == std::vector<bool>{false, false, false, false, true});
  CHECK(es.wait() == 2);
  // on_train_begin resets the counters (a second fit starts afresh).
  es.on_train_begin();
  CHECK(es.wait() == 0);
  CHECK(std::isinf(es.best()));
}

TEST_CASE("EarlyStopping: min_delta is the margin an improvement must exceed") {
  EarlyStopping es({.min_delta = -0.1, .patience = 2});  // |min_delta| is used, as Keras does
  es.on_train_begin();
  // "min": improvement iff current + 0.1 < best. e2: 0.95 + 0.1 = 1.05 > 1.0, not (wait 1);
  // e3: 0.85 + 0.1 = 0.95 < 1.0, improvement (best 0.85, wait 0); e4: 0.8 + 0.1 = 0.9 > 0.85 (wait 1);
  // e5: wait 2 -> stop.
  CHECK(feed(es, {1.0, 0.95, 0.85, 0.8, 0.8}) == std::vector<bool>{false, false, false, false, true});
  CHECK(es.best() == 0.85);
}

TEST_CASE("EarlyStopping: mode auto maximises accuracies, mode min is honoured") {
  EarlyStopping up({.monitor = "val_accuracy"});
  up.on_train_begin();
  // max: e2 0.6 > 0.5 improves; e3 0.6 > 0.6 is false -> wait 1 >= 0 -> stop.
  CHECK(feed_accuracy(up, {0.5, 0.6, 0.6}) == std::vector<bool>{false, false, true});
  EarlyStopping down({.monitor = "val_accuracy", .mode = "min"});
  down.on_train_begin();
  // min: e2 0.6 < 0.5 is false -> stop.
  CHECK(feed_accuracy(down, {0.5, 0.6}) == std::vector<bool>{false, true});
}

TEST_CASE("EarlyStopping: a baseline not beaten keeps wait counting") {
  // Keras: wait += 1 each epoch; an improvement resets wait only if it also beats the baseline.
  // baseline 0.5, patience 2: e1 0.8 improves on inf but not the baseline (wait 1); e2 0.7 likewise
  // (wait 2; an improvement returns before the patience test); e3 0.9: wait 3 >= 2 -> stop.
  EarlyStopping with({.patience = 2, .baseline = 0.5});
  with.on_train_begin();
  CHECK(feed(with, {0.8, 0.7, 0.9}) == std::vector<bool>{false, false, true});
  // Without a baseline the same sequence leaves wait at 1 after e3.
  EarlyStopping without({.patience = 2});
  without.on_train_begin();
  CHECK(feed(without, {0.8, 0.7, 0.9}) == std::vector<bool>{false, false, false});
  CHECK(without.wait() == 1);
}

TEST_CASE("EarlyStopping: a missing metric is skipped, bad options are errors") {
  EarlyStopping es({.patience = 0});
  es.on_train_begin();
  CHECK(feed(es, {kNaN, kNaN}) == std::vector<bool>{false, false});
  CHECK(es.wait() == 0);
  // A NaN training loss is a value (the run diverged): no improvement, as NaN < best is false.
  EarlyStopping on_loss({.monitor = "loss"});
  on_loss.on_train_begin();
  EpochMetrics diverged = metrics(2, 1.0);
  diverged.loss = kNaN;
  CHECK_FALSE(on_loss.on_epoch_end(1, metrics(1, 1.0)));
  CHECK(on_loss.on_epoch_end(2, diverged));
  CHECK_THROWS_WITH_AS(EarlyStopping({.monitor = "val_los"}), doctest::Contains("unknown monitor 'val_los'"), Error);
  CHECK_THROWS_WITH_AS(EarlyStopping({.mode = "up"}), doctest::Contains("mode"), Error);
  CHECK_THROWS_WITH_AS(EarlyStopping({.patience = -1}), doctest::Contains("patience"), Error);
}

TEST_CASE("EarlyStopping: restore_best_weights puts back the best epoch's weights at the end") {
  auto model = std::make_shared<nn::Linear>(1, 1, false);
  EarlyStopping es({.patience = 2, .restore_best_weights = true});
  es.set_model(model.get());
  es.on_train_begin();
  const std::vector<double> losses{1.0, 0.5, 0.7, 0.8};
  std::vector<bool> stops;
  for (int e = 1; e <= 4; ++e) {
    model->weight.data<float>().fill(float(e));  // the weights "after epoch e"
    stops.push_back(es.on_epoch_end(e, metrics(e, losses[e - 1])));
  }
  // e2 is best; e3 wait 1, e4 wait 2 -> stop.
  CHECK(stops == std::vector<bool>{false, false, false, true});
  CHECK(model->weight.data<float>()(0, 0) == 4.f);
  es.on_train_end();
  CHECK(model->weight.data<float>()(0, 0) == 2.f);
}

TEST_CASE("EarlyStopping: state_dict and load_state_dict continue the same decisions") {
  auto model = std::make_shared<nn::Linear>(1, 1, false);
  const std::vector<double> seq{1.0, 0.5, 0.7, 0.8, 0.4, 0.6, 0.7, 0.9};
  EarlyStoppingOptions opts{.patience = 3, .restore_best_weights = true};
  EarlyStopping whole(opts);
  whole.set_model(model.get());
  whole.on_train_begin();
  std::vector<bool> expected;
  for (int e = 1; e <= 8; ++e) {
    model->weight.data<float>().fill(float(e));
    expected.push_back(whole.on_epoch_end(e, metrics(e, seq[e - 1])));
  }
  EarlyStopping first(opts), second(opts);
  first.set_model(model.get());
  second.set_model(model.get());
  first.on_train_begin();
  std::vector<bool> got;
  for (int e = 1; e <= 4; ++e) {
    model->weight.data<float>().fill(float(e));
    got.push_back(first.on_epoch_end(e, metrics(e, seq[e - 1])));
  }
  second.on_train_begin();
  second.load_state_dict(first.state_dict());
  for (int e = 5; e <= 8; ++e) {
    model->weight.data<float>().fill(float(e));
    got.push_back(second.on_epoch_end(e, metrics(e, seq[e - 1])));
  }
  CHECK(got == expected);
  CHECK(second.wait() == whole.wait());
  CHECK(second.best_epoch() == 5);
  second.on_train_end();
  CHECK(model->weight.data<float>()(0, 0) == 5.f);  // the best weights travelled through the state
  CHECK_THROWS_WITH_AS(second.load_state_dict({{"wait", tensor(1.5, kFloat64)}}), doctest::Contains("'wait'"), Error);
  CHECK_THROWS_WITH_AS(second.load_state_dict({{"bogus", tensor(1.0, kFloat64)}}), doctest::Contains("missing"), Error);
}

TEST_CASE("ReduceLROnPlateau: factor after patience epochs, then again") {
  Tensor w = zeros({1}).requires_grad_();
  optim::SGD sgd({w}, {.lr = 1.0});
  ReduceLROnPlateau plateau(sgd, {.factor = 0.5, .patience = 1, .min_delta = 0});
  plateau.on_train_begin();
  std::vector<double> lrs;
  const std::vector<double> seq{1.0, 1.0, 1.0, 0.5, 0.5};
  for (int e = 1; e <= 5; ++e) {
    plateau.on_epoch_end(e, metrics(e, seq[e - 1]));
    lrs.push_back(sgd.lr());
  }
  // e1 best 1.0; e2 wait 1 >= 1 -> 0.5; e3 -> 0.25; e4 0.5 improves; e5 wait 1 -> 0.125.
  CHECK(lrs == std::vector<double>{1.0, 0.5, 0.25, 0.25, 0.125});
}

TEST_CASE("ReduceLROnPlateau: cooldown, min_lr and the default min_delta") {
  Tensor w = zeros({1}).requires_grad_();
  {
    optim::SGD sgd({w}, {.lr = 1.0});
    ReduceLROnPlateau plateau(sgd, {.factor = 0.5, .patience = 1, .min_delta = 0, .cooldown = 2});
    plateau.on_train_begin();
    std::vector<double> lrs;
    for (int e = 1; e <= 4; ++e) {
      plateau.on_epoch_end(e, metrics(e, 1.0));
      lrs.push_back(sgd.lr());
    }
    // e2 reduces (cooldown 2); e3: cooldown 2 -> 1, still cooling: nothing; e4: 1 -> 0, wait 1 -> reduce.
    CHECK(lrs == std::vector<double>{1.0, 0.5, 0.5, 0.25});
  }
  {
    optim::SGD sgd({w}, {.lr = 1.0});
    ReduceLROnPlateau plateau(sgd, {.factor = 0.5, .patience = 1, .min_lr = 0.3, .min_delta = 0});
    plateau.on_train_begin();
    std::vector<double> lrs;
    for (int e = 1; e <= 4; ++e) {
      plateau.on_epoch_end(e, metrics(e, 1.0));
      lrs.push_back(sgd.lr());
    }
    // e2 0.5; e3 max(0.25, 0.3) = 0.3; e4: 0.3 > float32(0.3) = 0.30000001 is false -> unchanged.
    CHECK(lrs == std::vector<double>{1.0, 0.5, 0.3, 0.3});
  }
  {
    optim::SGD sgd({w}, {.lr = 1.0});
    ReduceLROnPlateau plateau(sgd, {.patience = 1});  // factor 0.1, min_delta 1e-4
    plateau.on_train_begin();
    // 0.99995 < 1.0 - 1e-4 is false: no improvement -> wait 1 -> lr 0.1.
    plateau.on_epoch_end(1, metrics(1, 1.0));
    plateau.on_epoch_end(2, metrics(2, 0.99995));
    CHECK(sgd.lr() == doctest::Approx(0.1).epsilon(1e-15));
    CHECK_THROWS_WITH_AS(ReduceLROnPlateau(sgd, {.factor = 1.0}), doctest::Contains("factor"), Error);
  }
}

TEST_CASE("ReduceLROnPlateau: state_dict resumes the counters") {
  Tensor w = zeros({1}).requires_grad_();
  optim::SGD a({w}, {.lr = 1.0}), b({w}, {.lr = 1.0});
  ReduceLROnPlateau pa(a, {.factor = 0.5, .patience = 2, .min_delta = 0});
  ReduceLROnPlateau pb(b, {.factor = 0.5, .patience = 2, .min_delta = 0});
  pa.on_train_begin();
  pa.on_epoch_end(1, metrics(1, 1.0));
  pa.on_epoch_end(2, metrics(2, 1.0));  // wait 1
  pb.on_train_begin();
  pb.load_state_dict(pa.state_dict());
  CHECK(pb.wait() == 1);
  pb.on_epoch_end(3, metrics(3, 1.0));  // wait 2 -> reduce
  CHECK(b.lr() == 0.5);
}

TEST_CASE("CSVLogger: History's columns, append, and resume from its state") {
  const fs::path dir = fresh_dir("csv");
  const fs::path file = dir / "log.csv";
  CSVLogger logger(file.string());
  logger.on_train_begin();
  CHECK(read_text(file) == "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n");
  EpochMetrics m1 = metrics(1, 0.25, 0.5);
  m1.seconds = 1.5;
  logger.on_epoch_end(1, m1);
  const CallbackState after_one = logger.state_dict();
  EpochMetrics m2 = metrics(2, 0.125);
  logger.on_epoch_end(2, m2);
  CHECK(read_text(file) ==
        "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,1,0.5,0.25,0.5,1.5000\n2,0.5,0.5,0.125,,0.0000\n");
  // A restarted run resumes from the state after epoch 1: epoch 2's row is gone until re-run.
  CSVLogger again(file.string());
  again.on_train_begin();
  again.load_state_dict(after_one);
  CHECK(read_text(file) == "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,1,0.5,0.25,0.5,1.5000\n");
  // append: the header is not repeated.
  CSVLogger appending(file.string(), ';', true);
  appending.on_train_begin();
  appending.on_epoch_end(1, m2);
  CHECK(read_text(file) ==
        "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,1,0.5,0.25,0.5,1.5000\n2;0.5;0.5;0.125;;0.0000\n");
  fs::remove_all(dir);
}

TEST_CASE("ModelCheckpoint: every epoch, or only improvements with save_best_only") {
  const fs::path dir = fresh_dir("modelckpt");
  auto model = std::make_shared<nn::Linear>(2, 1);
  ModelCheckpoint best((dir / "best-{epoch:02d}.safetensors").string(), {.save_best_only = true});
  ModelCheckpoint every((dir / "every-{epoch}.safetensors").string());
  for (Callback* cb : {static_cast<Callback*>(&best), static_cast<Callback*>(&every)}) {
    cb->set_model(model.get());
    cb->on_train_begin();
  }
  int e = 0;
  for (double v : {1.0, 2.0, 0.5}) {
    ++e;
    model->bias.data<float>().fill(float(e));
    best.on_epoch_end(e, metrics(e, v));
    every.on_epoch_end(e, metrics(e, v));
  }
  CHECK(fs::exists(dir / "best-01.safetensors"));
  CHECK_FALSE(fs::exists(dir / "best-02.safetensors"));  // 2.0 is worse than 1.0
  CHECK(fs::exists(dir / "best-03.safetensors"));
  for (int k = 1; k <= 3; ++k) CHECK(fs::exists(dir / ("every-" + std::to_string(k) + ".safetensors")));
  nn::Linear loaded(2, 1);
  loaded.load((dir / "best-03.safetensors").string());
  CHECK(loaded.bias.data<float>()(0) == 3.f);
  CHECK(best.path_for(7) == (dir / "best-07.safetensors").string());
  fs::remove_all(dir);
}

TEST_CASE("fit: callbacks see train, epoch and batch events in Keras's order and can stop") {
  manual_seed(3);
  data::TensorDataset ds(randn({6, 2}), tensor({0, 1, 0, 1, 0, 1}));
  data::DataLoader loader(ds, {.batch_size = 3});
  auto model = std::make_shared<nn::Linear>(2, 2);
  optim::SGD sgd(model->parameters(), {.lr = 0.1});
  optim::StepLR step(sgd, 1, 0.5);
  std::vector<std::string> events;
  std::vector<double> lrs;
  auto recorder = std::make_shared<LambdaCallback>(LambdaCallbackFunctions{
      .on_epoch_begin = [&](int e) { events.push_back("epoch_begin " + std::to_string(e)); lrs.push_back(sgd.lr()); },
      .on_epoch_end = [&](int e, const EpochMetrics& m) {
        events.push_back("epoch_end " + std::to_string(e) + " " + std::to_string(m.epoch));
        return e == 2;  // stop after epoch 2
      },
      .on_batch_end = [&](std::int64_t s, double) { events.push_back("batch " + std::to_string(s)); },
      .on_train_begin = [&] { events.push_back("train_begin"); },
      .on_train_end = [&] { events.push_back("train_end"); },
  });
  nn::CrossEntropyLoss loss;
  History h = fit(model, sgd, loss, loader, {.epochs = 5, .verbose = false, .scheduler = &step, .callbacks = {recorder}});
  CHECK(h.size() == 2);
  CHECK(events == std::vector<std::string>{"train_begin", "epoch_begin 1", "batch 1", "batch 2", "epoch_end 1 1",
                                           "epoch_begin 2", "batch 3", "batch 4", "epoch_end 2 2", "train_end"});
  // StepLR(step_size 1, gamma 0.5) stepped after each epoch: 0.1 in epoch 1, 0.05 in epoch 2.
  CHECK(lrs == std::vector<double>{0.1, 0.05});
  CHECK(sgd.lr() == 0.025);
  CHECK_THROWS_WITH_AS(fit(model, sgd, loss, loader, {.epochs = 1, .verbose = false, .callbacks = {nullptr}}),
                       doctest::Contains("callback 0 is null"), Error);
}

TEST_CASE("lr_scheduler: state_dict and load_state_dict resume the schedule") {
  Tensor w = zeros({1}).requires_grad_();
  optim::SGD a({w}, {.lr = 0.1}), b({w}, {.lr = 0.1});
  optim::CosineAnnealingLR ca(a, 5, 0.01), cb(b, 5, 0.01);
  for (int i = 0; i < 3; ++i) ca.step();
  cb.load_state_dict(ca.state_dict());
  b.load_state_dict(a.state_dict());  // the learning rate travels with the optimizer, as in PyTorch
  CHECK(cb.last_epoch() == 3);
  CHECK(cb.get_last_lr() == ca.get_last_lr());
  for (int i = 0; i < 4; ++i) {
    ca.step();
    cb.step();
    CHECK(a.lr() == b.lr());  // bitwise: the same recurrence from the same state
  }
  CHECK_THROWS_WITH_AS(cb.load_state_dict({{"last_epoch", tensor(1.0, kFloat64)}}), doctest::Contains("missing entry"),
                       Error);
  CHECK_THROWS_WITH_AS(cb.load_state_dict({{"last_epoch", tensor(0.5, kFloat64)},
                                           {"_step_count", tensor(1.0, kFloat64)},
                                           {"base_lr", tensor(0.1, kFloat64)},
                                           {"last_lr", tensor(0.1, kFloat64)}}),
                       doctest::Contains("'last_epoch' must be an integer"), Error);
  CHECK(cb.last_epoch() == 7);  // a failed load changed nothing
}
