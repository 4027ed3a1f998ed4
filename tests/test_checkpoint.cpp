// fit's checkpoints: a run interrupted anywhere and resumed ends bit-identical to an uninterrupted
// one (Dropout's random state, shuffling, mid-epoch positions, a scheduler and a callback with
// tensors in its state all in play); corrupt, truncated or mismatched files give errors naming the
// file and field or fall back to the previous checkpoint; a full disk keeps the previous one.
// Crashes here are exceptions thrown from a callback; tests/fault/ kills real processes.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad.hpp>

#include "train/checkpoint.hpp"
#include "train/state_io.hpp"

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

struct Crash {};

using Bytes = std::vector<unsigned char>;

Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const fs::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("xgrad_test_ckpt_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

struct Outcome {
  Bytes params;  // every state_dict tensor's bytes, concatenated
  History history;
};

// One "process": builds data, model (Dropout included), SGD with momentum, StepLR, EarlyStopping
// with restore_best_weights, then fits 4 epochs of 6 shuffled batches with a checkpoint every 4
// steps. `crash_at` > 0 throws Crash after that optimizer step.
Outcome run(const std::string& dir, std::int64_t crash_at = -1, std::size_t hidden = 16, int epochs = 4) {
  manual_seed(100);
  Tensor x = randn({44, 4});
  Tensor labels = tensor(xt::xarray<float>(xt::arange<float>(44) - 3 * xt::floor(xt::arange<float>(44) / 3)));
  Tensor vx = randn({12, 4});
  Tensor vy = tensor(xt::xarray<float>(xt::arange<float>(12) - 3 * xt::floor(xt::arange<float>(12) / 3)));
  data::DataLoader train(data::TensorDataset(x, labels), {.batch_size = 8, .shuffle = true, .seed = 7});
  data::DataLoader val(data::TensorDataset(vx, vy), {.batch_size = 5});
  manual_seed(1);
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, hidden), std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.25),
      std::make_shared<nn::Linear>(hidden, 3)});
  optim::SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::StepLR step(sgd, 2, 0.5);
  auto stop = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.patience = 10, .restore_best_weights = true});
  auto crash = std::make_shared<LambdaCallback>(LambdaCallbackFunctions{.on_batch_end = [&](std::int64_t s, double) {
    if (s == crash_at) throw Crash{};
  }});
  nn::CrossEntropyLoss loss;
  Outcome out;
  out.history = fit(model, sgd, loss, train,
                    {.epochs = epochs,
                     .validation = &val,
                     .verbose = false,
                     .scheduler = &step,
                     .callbacks = {stop, crash},
                     .checkpoint_dir = dir,
                     .checkpoint_every_steps = 4});
  for (const auto& [name, t] : model->state_dict()) {
    const auto& a = t.data<float>();
    const auto* p = reinterpret_cast<const unsigned char*>(a.data());
    out.params.insert(out.params.end(), p, p + a.size() * sizeof(float));
  }
  return out;
}

// Histories equal bit for bit except the wall-clock seconds.
bool same_history(const History& a, const History& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (auto f : {&EpochMetrics::loss, &EpochMetrics::accuracy, &EpochMetrics::val_loss, &EpochMetrics::val_accuracy})
      if (std::memcmp(&(a[i].*f), &(b[i].*f), sizeof(double)) != 0 || a[i].epoch != b[i].epoch) return false;
  return true;
}

const Outcome& reference() {
  static const Outcome ref = run("");
  return ref;
}

// Captures std::cerr while alive.
struct CerrCapture {
  std::ostringstream text;
  std::streambuf* old = std::cerr.rdbuf(text.rdbuf());
  ~CerrCapture() { std::cerr.rdbuf(old); }
};

}  // namespace

TEST_CASE("checkpoint: resuming after a crash at any step is bit-identical to an uninterrupted run") {
  const Outcome& ref = reference();
  REQUIRE(ref.history.size() == 4);
  // 4 epochs of 6 batches = 24 steps; checkpoints after steps 4, 6 (epoch end), 8, 12 (epoch end), ...
  for (std::int64_t crash_at : {1, 3, 4, 5, 6, 7, 11, 13, 22, 24}) {
    CAPTURE(crash_at);
    const fs::path dir = fresh_dir("resume");
    CHECK_THROWS_AS(run(dir.string(), crash_at), Crash);
    const Outcome resumed = run(dir.string());
    CHECK(resumed.params == ref.params);
    CHECK(same_history(resumed.history, ref.history));
    fs::remove_all(dir);
  }
}

TEST_CASE("checkpoint: several crashes in a row, and a finished run is not trained again") {
  const Outcome& ref = reference();
  const fs::path dir = fresh_dir("multi");
  for (std::int64_t crash_at : {2, 5, 9, 10, 17, 23}) CHECK_THROWS_AS(run(dir.string(), crash_at), Crash);
  const Outcome resumed = run(dir.string());
  CHECK(resumed.params == ref.params);
  CHECK(same_history(resumed.history, ref.history));
  // Only the newest two are kept, no temporary file is left.
  const std::vector<std::string> files = detail::list_checkpoints(dir.string());
  CHECK(files.size() == 2);
  for (const auto& entry : fs::directory_iterator(dir)) CHECK(entry.path().extension() == ".safetensors");
  // Run again: the last checkpoint says every epoch is done; the same result comes back.
  const Outcome again = run(dir.string());
  CHECK(again.params == ref.params);
  CHECK(same_history(again.history, ref.history));
  // Checkpointing itself changes nothing: an uninterrupted run with a directory equals one without.
  const fs::path dir2 = fresh_dir("plain");
  CHECK(run(dir2.string()).params == ref.params);
  fs::remove_all(dir);
  fs::remove_all(dir2);
}

TEST_CASE("checkpoint: a corrupt, truncated or header-damaged newest file falls back to the previous one") {
  const Outcome& ref = reference();
  enum Damage { FlipData, Truncate, Header };
  for (Damage damage : {FlipData, Truncate, Header}) {
    CAPTURE(int(damage));
    const fs::path dir = fresh_dir("fallback");
    CHECK_THROWS_AS(run(dir.string(), 10), Crash);  // checkpoints after steps 6 and 8 remain
    std::vector<std::string> files = detail::list_checkpoints(dir.string());
    REQUIRE(files.size() == 2);
    Bytes b = read_bytes(files[1]);
    if (damage == FlipData) b[b.size() - 100] ^= 0x10;
    if (damage == Truncate) b.resize(b.size() / 2);
    if (damage == Header) std::memcpy(b.data() + 40, "#####", 5);
    write_bytes(files[1], b);
    CerrCapture cerr;
    const Outcome resumed = run(dir.string());
    CHECK(resumed.params == ref.params);
    CHECK(same_history(resumed.history, ref.history));
    CHECK(cerr.text.str().find("warning") != std::string::npos);
    CHECK(cerr.text.str().find(files[1]) != std::string::npos);
    CHECK(cerr.text.str().find("resuming from the older checkpoint '" + files[0] + "'") != std::string::npos);
    CHECK(fs::exists(files[1] + ".corrupt"));  // set aside, not silently reused later
    fs::remove_all(dir);
  }
}

TEST_CASE("checkpoint: no usable checkpoint is an error naming the file and the field") {
  {
    const fs::path dir = fresh_dir("none_usable");
    CHECK_THROWS_AS(run(dir.string(), 5), Crash);  // one checkpoint, after step 4
    const std::vector<std::string> files = detail::list_checkpoints(dir.string());
    REQUIRE(files.size() == 1);
    Bytes b = read_bytes(files[0]);
    b[b.size() - 3] ^= 1;
    write_bytes(files[0], b);
    CHECK_THROWS_WITH_AS(run(dir.string()),
                         doctest::Contains(std::string("checkpoint '" + files[0] + "': field '__metadata__.crc32'").c_str()), Error);
    fs::remove_all(dir);
  }
  {
    // A model with another hidden size: both checkpoints mismatch, the error names the field.
    const fs::path dir = fresh_dir("mismatch");
    CHECK_THROWS_AS(run(dir.string(), 10), Crash);
    const std::vector<std::string> files = detail::list_checkpoints(dir.string());
    CHECK_THROWS_WITH_AS(run(dir.string(), -1, 12),
                         doctest::Contains(std::string("checkpoint '" + files[1] +
                                           "': field 'model.0.weight': shape [16, 4] in the file but [12, 4] in the model").c_str()),
                         Error);
    CHECK_THROWS_WITH_AS(run(dir.string(), -1, 12), doctest::Contains(std::string("no usable checkpoint in '" + dir.string()).c_str()),
                         Error);
    // Asking for 1 epoch: the newest (mid-epoch 2) has done more, the previous (end of epoch 1) fits.
    CerrCapture cerr;
    CHECK(run(dir.string(), -1, 16, 1).history.size() == 1);
    CHECK(cerr.text.str().find("field 'state.epochs_done': 1 epochs and 2 batches already done, more than epochs = 1") !=
          std::string::npos);
    fs::remove_all(dir);
  }
  {
    // A directory holding other files only is a fresh start.
    const fs::path dir = fresh_dir("other_files");
    fs::create_directories(dir);
    std::ofstream(dir / "notes.txt") << "not a checkpoint";
    std::ofstream(dir / "ckpt-000000000004.safetensors.tmp") << "an interrupted write";
    CHECK(run(dir.string()).params == reference().params);
    CHECK_FALSE(fs::exists(dir / "ckpt-000000000004.safetensors.tmp"));
    fs::remove_all(dir);
  }
  {
    const fs::path file = fresh_dir("a_file");
    std::ofstream(file) << "x";
    CHECK_THROWS_WITH_AS(run(file.string()), doctest::Contains(std::string("cannot create the checkpoint directory '" + file.string()).c_str()),
                         Error);
    fs::remove(file);
  }
}

TEST_CASE("checkpoint: a full disk is a clear error and the previous checkpoint stays loadable") {
  const fs::path dir = fresh_dir("disk_full");
  CHECK_THROWS_AS(run(dir.string(), 5), Crash);  // checkpoint after step 4
  const std::string kept = detail::list_checkpoints(dir.string()).at(0);
  const Bytes before = read_bytes(kept);
  detail::write_faults().fail_after_bytes = 1000;  // every write of more than 1000 bytes fails: ENOSPC
  const std::string next = (dir / "ckpt-000000000006.safetensors.tmp").string();
  CHECK_THROWS_WITH_AS(run(dir.string()), doctest::Contains(std::string("cannot write '" + next + "'").c_str()), Error);
  CHECK_THROWS_WITH_AS(run(dir.string()), doctest::Contains("No space left on device"), Error);
  detail::write_faults().fail_after_bytes = -1;
  CHECK(detail::list_checkpoints(dir.string()) == std::vector<std::string>{kept});
  CHECK_FALSE(fs::exists(next));
  CHECK(read_bytes(kept) == before);
  CHECK_NOTHROW(detail::read_checkpoint(kept));
  // With space again, the run completes exactly.
  CHECK(run(dir.string()).params == reference().params);
  fs::remove_all(dir);
}

TEST_CASE("checkpoint: every single-bit flip and every truncation is detected by the reader") {
  const fs::path dir = fresh_dir("bits");
  CHECK_THROWS_AS(run(dir.string(), 5), Crash);
  const std::string file = detail::list_checkpoints(dir.string()).at(0);
  const Bytes good = read_bytes(file);
  const detail::CheckpointContent c = detail::read_checkpoint(file);
  CHECK(c.global_step == 4);
  CHECK(c.position == 4);
  CHECK(c.epochs_done == 0);
  CHECK(c.loader_shuffle);
  const fs::path bad = dir / "bad.safetensors";
  std::size_t detected = 0, tried = 0;
  for (std::size_t i = 0; i < good.size(); i += 3) {
    Bytes b = good;
    b[i] ^= static_cast<unsigned char>(1u << (i % 8));
    write_bytes(bad, b);
    ++tried;
    try {
      detail::read_checkpoint(bad.string());
    } catch (const Error& e) {
      detected += std::string(e.what()).find("checkpoint '" + bad.string() + "'") != std::string::npos;
    }
  }
  CHECK(detected == tried);
  detected = tried = 0;
  for (std::size_t n = 0; n < good.size(); n += 7) {
    write_bytes(bad, Bytes(good.begin(), good.begin() + std::ptrdiff_t(n)));
    ++tried;
    try {
      detail::read_checkpoint(bad.string());
    } catch (const Error&) {
      ++detected;
    }
  }
  CHECK(detected == tried);
  fs::remove_all(dir);
}

TEST_CASE("DataLoader::begin_at resumes an epoch part-way with the batches begin() gives") {
  manual_seed(5);
  data::TensorDataset ds(randn({10, 2}), randn({10}));
  data::DataLoader a(ds, {.batch_size = 3, .shuffle = true, .seed = 9});
  data::DataLoader b(ds, {.batch_size = 3, .shuffle = true, .seed = 9});
  for (auto& batch : a) (void)batch;  // epoch 0 on both
  for (auto& batch : b) (void)batch;
  std::vector<Tensor> full;
  for (auto& [x, y] : a) full.push_back(x);  // epoch 1
  std::vector<Tensor> tail;
  for (auto it = b.begin_at(2); it != b.end(); ++it) tail.push_back(it->input);
  REQUIRE(full.size() == 4);
  REQUIRE(tail.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) CHECK(xt::all(xt::equal(tail[i].data<float>(), full[i + 2].data<float>())));
  CHECK(b.epoch() == a.epoch());
  CHECK(b.begin_at(4) == b.end());  // an epoch whose batches are all done
  CHECK_THROWS_WITH_AS(b.begin_at(5), "DataLoader::begin_at: batch 5 out of range for 4 batches", Error);
}

TEST_CASE("fit: checkpoint options are checked") {
  manual_seed(5);
  data::DataLoader loader(data::TensorDataset(randn({4, 2}), randn({4, 1})), {.batch_size = 2});
  auto model = std::make_shared<nn::Linear>(2, 1);
  optim::SGD sgd(model->parameters(), {.lr = 0.1});
  nn::MSELoss loss;
  CHECK_THROWS_WITH_AS(fit(model, sgd, loss, loader, {.epochs = 1, .verbose = false, .checkpoint_every_steps = -2}),
                       "fit: checkpoint_every_steps must be >= 0, got -2", Error);
}

TEST_CASE("checkpoint: a dtype or name mismatch with the model names the field") {
  const fs::path dir = fresh_dir("dtype");
  manual_seed(5);
  data::DataLoader loader(data::TensorDataset(randn({4, 2}), randn({4, 1})), {.batch_size = 2});
  nn::MSELoss loss;
  {
    auto model = std::make_shared<nn::Linear>(2, 1);
    optim::SGD sgd(model->parameters(), {.lr = 0.1});
    fit(model, sgd, loss, loader, {.epochs = 1, .verbose = false, .checkpoint_dir = dir.string()});
  }
  const std::string file = detail::list_checkpoints(dir.string()).at(0);
  {
    auto model = std::make_shared<nn::Linear>(2, 1);
    model->to(kFloat64);
    optim::SGD sgd(model->parameters(), {.lr = 0.1});
    const std::string expected =
        "checkpoint '" + file + "': field 'model.weight': dtype float32 in the file but float64 in the model";
    CHECK_THROWS_WITH_AS(fit(model, sgd, loss, loader, {.epochs = 2, .verbose = false, .checkpoint_dir = dir.string()}),
                         doctest::Contains(expected.c_str()), Error);
  }
  {
    auto model = std::make_shared<nn::Linear>(2, 1, false);  // no bias
    optim::SGD sgd(model->parameters(), {.lr = 0.1});
    const std::string expected = "checkpoint '" + file + "': field 'model.bias': not in the model";
    CHECK_THROWS_WITH_AS(fit(model, sgd, loss, loader, {.epochs = 2, .verbose = false, .checkpoint_dir = dir.string()}),
                         doctest::Contains(expected.c_str()), Error);
  }
  fs::remove_all(dir);
}
