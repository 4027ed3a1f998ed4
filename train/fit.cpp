#include "fit.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "../autograd/grad_mode.hpp"
#include "../nn/module.hpp"
#include "../optim/optimizer.hpp"
#include "../optim/lr_scheduler.hpp"
#include "accuracy.hpp"
#include "callbacks.hpp"
#include "checkpoint.hpp"
#include "fit_collective.hpp"
#include "progress.hpp"

namespace xgrad::detail {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Puts the model in the requested mode and restores its previous mode on exit, exceptions included.
class ModeGuard {
 public:
  ModeGuard(nn::Module& model, bool training) : model_(model), previous_(model.is_training()) {
    model_.train(training);
  }
  ~ModeGuard() { model_.train(previous_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  nn::Module& model_;
  bool previous_;
};

// Sample-weighted running sums over an epoch or an evaluation.
struct Running {
  double loss_sum = 0;  // Σ batch loss × batch samples
  std::size_t samples = 0;
  std::size_t correct = 0;
  bool accuracy_applies = true;

  void add(const Tensor& output, const Tensor& target, double batch_loss, std::size_t batch_samples) {
    loss_sum += batch_loss * double(batch_samples);
    samples += batch_samples;
    if (!accuracy_applies) return;
    const CorrectCount c = count_correct(output, target);
    accuracy_applies = c.applicable;
    correct += c.correct;
  }
  double loss() const { return samples ? loss_sum / double(samples) : std::numeric_limits<double>::quiet_NaN(); }
  double accuracy() const {
    return accuracy_applies && samples ? double(correct) / double(samples) : std::numeric_limits<double>::quiet_NaN();
  }
};

std::size_t samples_in(const Tensor& input) { return input.dim() == 0 ? 1 : input.shape()[0]; }

double scalar_loss(const char* fn, const Tensor& loss) {
  if (!loss.defined() || loss.numel() != 1)
    fail(fn, ": the loss must be a single value (use Reduction::Mean or Sum), got shape ",
         loss.defined() ? shape_str(loss.shape()) : std::string("undefined"));
  return loss.item();
}

void check_loader(const char* fn, const char* which, const data::DataLoader& loader) {
  if (loader.size() == 0)
    fail(fn, ": the ", which, " loader yields no batches (", loader.dataset().size(), " samples, batch_size ",
         loader.options().batch_size, loader.options().drop_last ? ", drop_last" : "", ")");
}

// Under data-parallel training: turns this process's sums into the sums over every process, so that
// every rank reports the same metrics (over all samples of all ranks).
void sum_over_processes(Running& run) {
  const FitCollective* c = fit_collective();
  if (!c) return;
  std::vector<double> v{run.loss_sum, double(run.samples), double(run.correct), run.accuracy_applies ? 1.0 : 0.0};
  c->sum(v);
  run.loss_sum = v[0];
  run.samples = static_cast<std::size_t>(v[1]);
  run.correct = static_cast<std::size_t>(v[2]);
  run.accuracy_applies = v[3] == double(c->world_size);
}

// One rank failing while the others wait in a collective would hang the job: end it instead.
template <class F>
auto abort_job_on_error(const char* fn, F&& body) {
  const FitCollective* c = fit_collective();
  if (!c) return body();
  try {
    return body();
  } catch (const std::exception& e) {
    c->abort(std::string(fn) + ": " + e.what());
    throw;  // not reached: abort does not return
  }
}

FitCollective& installed_collective() {
  static FitCollective collective;
  return collective;
}

}  // namespace

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }
std::ostream& stdout_console() { return std::cout; }

void set_fit_collective(FitCollective collective) { installed_collective() = std::move(collective); }
const FitCollective* fit_collective() {
  const FitCollective& c = installed_collective();
  return c.sum ? &c : nullptr;
}

namespace {

// Where the loop stands: what a checkpoint saves besides the components' own state.
struct LoopState {
  History history;
  std::int64_t global_step = 0;
  int epochs_done = 0;
  std::size_t position = 0;  // batches done in epoch epochs_done + 1
  Running running;
  bool stopped = false;
};

void warn(const std::string& message) { std::cerr << "xgrad: warning: " << message << "\n"; }

CheckpointContent capture(const nn::Module& model, const optim::Optimizer& optimizer, const FitOptions& options,
                          const data::DataLoader& train, std::uint64_t loader_epoch, const LoopState& st) {
  CheckpointContent c;
  c.global_step = st.global_step;
  c.epochs_done = st.epochs_done;
  c.position = static_cast<std::int64_t>(st.position);
  c.loader_epoch = loader_epoch;
  c.val_loader_epoch = options.validation ? options.validation->epoch() : 0;
  c.loader_seed = train.options().seed;
  c.loader_shuffle = train.options().shuffle;
  c.loader_batches = train.size();
  c.loader_samples = train.dataset().size();
  c.stopped = st.stopped;
  c.rng = random_state();
  c.optimizer_name = optimizer.name();
  c.has_scheduler = options.scheduler != nullptr;
  for (const auto& [name, t] : model.state_dict()) c.model.emplace_back(name, t);
  c.optimizer = optimizer.state_dict();
  if (options.scheduler) c.scheduler = options.scheduler->state_dict();
  for (const auto& cb : options.callbacks) c.callbacks.push_back(cb->state_dict());
  c.history = st.history;
  c.running = {st.running.loss_sum, double(st.running.samples), double(st.running.correct),
               st.running.accuracy_applies ? 1.0 : 0.0};
  return c;
}

// Puts a checkpoint's state into every component, after checking that it belongs to this run.
// Throws xgrad::Error naming the file and the field.
void restore(const CheckpointContent& c, const std::string& path, nn::Module& model, optim::Optimizer& optimizer,
             const FitOptions& options, data::DataLoader& train, LoopState& st) {
  auto bad = [&](const std::string& field, const auto&... args) {
    fail("checkpoint '", path, "': field '", field, "': ", args...);
  };
  const data::DataLoaderOptions& lo = train.options();
  if (c.loader_seed != lo.seed) bad("state.loader.seed", "saved ", c.loader_seed, " but the DataLoader has ", lo.seed);
  if (c.loader_shuffle != lo.shuffle)
    bad("state.loader.shuffle", "saved ", c.loader_shuffle, " but the DataLoader has ", lo.shuffle);
  if (c.loader_batches != train.size())
    bad("state.loader.batches", "saved ", c.loader_batches, " batches per epoch but the DataLoader has ", train.size());
  if (c.loader_samples != train.dataset().size())
    bad("state.loader.samples", "saved ", c.loader_samples, " samples but the dataset has ", train.dataset().size());
  if (c.optimizer_name != optimizer.name())
    bad("state.optimizer", "saved by ", c.optimizer_name, " but fit runs ", optimizer.name());
  if (c.has_scheduler != (options.scheduler != nullptr))
    bad("state.scheduler", c.has_scheduler ? "saved with a scheduler but fit has none" : "saved without a scheduler but fit has one");
  if (c.callbacks.size() != options.callbacks.size())
    bad("state.callbacks", "saved with ", c.callbacks.size(), " callbacks but fit has ", options.callbacks.size());
  if (c.epochs_done > options.epochs || (c.epochs_done == options.epochs && c.position > 0))
    bad("state.epochs_done", c.epochs_done, " epochs and ", c.position, " batches already done, more than epochs = ",
        options.epochs);

  // The model: the same names, shapes and dtypes, checked before anything is loaded.
  const nn::StateDict current = model.state_dict();
  for (const auto& [name, t] : c.model) {
    if (!current.contains(name)) bad("model." + name, "not in the model");
    const Tensor& mine = current.at(name);
    if (t.dtype() != mine.dtype())
      bad("model." + name, "dtype ", dtype_name(t.dtype()), " in the file but ", dtype_name(mine.dtype()), " in the model");
    if (t.shape() != mine.shape())
      bad("model." + name, "shape ", shape_str(t.shape()), " in the file but ", shape_str(mine.shape()), " in the model");
  }
  if (c.model.size() != current.size())
    for (const auto& entry : current) {
      const std::string& name = entry.first;  // not a structured binding: clang 14 cannot capture one
      const bool saved = std::any_of(c.model.begin(), c.model.end(), [&](const auto& e) { return e.first == name; });
      if (!saved) bad("model." + name, "missing from the file");
    }

  model.load_state_dict(nn::StateDict(c.model));
  try {
    optimizer.load_state_dict(c.optimizer);
  } catch (const Error& e) {
    bad("optimizer", e.what());
  }
  if (options.scheduler) try {
      options.scheduler->load_state_dict(c.scheduler);
    } catch (const Error& e) {
      bad("scheduler", e.what());
    }
  for (std::size_t i = 0; i < options.callbacks.size(); ++i) try {
      options.callbacks[i]->load_state_dict(c.callbacks[i]);
    } catch (const Error& e) {
      bad("callbacks." + std::to_string(i), e.what());
    }
  set_random_state("checkpoint '" + path + "': field 'state.rng': ", c.rng);
  train.set_epoch(c.loader_epoch);
  if (options.validation) options.validation->set_epoch(c.val_loader_epoch);

  st.history = c.history;
  st.global_step = c.global_step;
  st.epochs_done = static_cast<int>(c.epochs_done);
  st.position = static_cast<std::size_t>(c.position);
  st.running.loss_sum = c.running[0];
  st.running.samples = static_cast<std::size_t>(c.running[1]);
  st.running.correct = static_cast<std::size_t>(c.running[2]);
  st.running.accuracy_applies = c.running[3] != 0;
  st.stopped = c.stopped;
}

// Resumes from the newest usable checkpoint in `dir`; an unusable one is set aside (renamed
// "<file>.corrupt") with a warning when an older one works. Returns false when `dir` holds no
// checkpoint (a fresh start); throws when it holds some but none is usable. `used` receives the
// file resumed from.
bool resume(std::string& used, const std::string& dir, nn::Module& model, optim::Optimizer& optimizer, const FitOptions& options,
            data::DataLoader& train, LoopState& st) {
  const std::vector<std::string> files = list_checkpoints(dir);
  if (files.empty()) return false;
  std::string reasons;
  for (std::size_t i = files.size(); i-- > 0;) {
    try {
      restore(read_checkpoint(files[i]), files[i], model, optimizer, options, train, st);
      for (std::size_t bad = i + 1; bad < files.size(); ++bad) {
        std::error_code ignored;
        std::filesystem::rename(files[bad], files[bad] + ".corrupt", ignored);
      }
      if (i + 1 < files.size()) warn("fit: resuming from the older checkpoint '" + files[i] + "'");
      used = files[i];
      return true;
    } catch (const Error& e) {
      if (i > 0) warn(std::string("fit: cannot use ") + e.what());
      reasons += std::string(reasons.empty() ? "" : "; ") + e.what();
    }
  }
  fail("fit: no usable checkpoint in '", dir, "' (", files.size(), " found): ", reasons);
}

void save_checkpoint(const std::string& dir, const CheckpointContent& c) {
  write_checkpoint((std::filesystem::path(dir) / checkpoint_file_name(c.global_step)).string(), c);
  // Keep the newest two.
  const std::vector<std::string> files = list_checkpoints(dir);
  for (std::size_t i = 0; i + 2 < files.size(); ++i) {
    std::error_code ignored;
    std::filesystem::remove(files[i], ignored);
  }
}

void prepare_directory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    fail("fit: cannot create the checkpoint directory '", dir, "': ", ec ? ec.message() : "not a directory");
  // Temporary files of writes a crash interrupted.
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.compare(0, 5, "ckpt-") == 0 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      std::error_code ignored;
      std::filesystem::remove(entry.path(), ignored);
    }
  }
}

History fit_loop(nn::Module& model, optim::Optimizer& optimizer, const LossCall& loss, data::DataLoader& train,
                 const FitOptions& options, std::ostream& out, bool terminal) {
  if (options.epochs < 0) fail("fit: epochs must be >= 0, got ", options.epochs);
  if (options.checkpoint_every_steps < 0)
    fail("fit: checkpoint_every_steps must be >= 0, got ", options.checkpoint_every_steps);
  for (std::size_t i = 0; i < options.callbacks.size(); ++i)
    if (!options.callbacks[i]) fail("fit: callback ", i, " is null");
  check_loader("fit", "training", train);
  if (options.validation) check_loader("fit", "validation", *options.validation);
  const std::string& dir = options.checkpoint_dir;
  // A checkpoint holds one process's state (its loader shard, its running sums): not a job's.
  if (!dir.empty() && fit_collective())
    fail("fit: checkpoint_dir '", dir, "' is for single-process training; it is not supported under data-parallel training");

  ModeGuard mode(model, true);
  for (const auto& cb : options.callbacks) {
    cb->set_model(&model);
    cb->on_train_begin();
  }
  LoopState st;
  if (!dir.empty()) {
    prepare_directory(dir);
    std::string used;
    if (resume(used, dir, model, optimizer, options, train, st) && options.verbose)
      out << "Resuming from checkpoint '" << used << "': " << st.epochs_done << " epochs and " << st.position
          << " batches done\n";
  }
  st.history.reserve(static_cast<std::size_t>(options.epochs));

  for (int epoch = st.epochs_done + 1; epoch <= options.epochs && !st.stopped; ++epoch) {
    const auto start = Clock::now();
    if (st.position == 0) {
      st.running = Running{};
      for (const auto& cb : options.callbacks) cb->on_epoch_begin(epoch);
    }
    EpochProgress progress(out, options.verbose, terminal, epoch, options.epochs, train.size());
    model.train(true);  // validation of the previous epoch switched to eval and back; be explicit
    const std::uint64_t loader_epoch = train.epoch();
    for (auto it = train.begin_at(st.position); it != train.end(); ++it) {
      auto& [x, y] = *it;
      optimizer.zero_grad();
      Tensor output = model(x);
      Tensor batch_loss = loss(output, y);
      const double value = scalar_loss("fit", batch_loss);
      batch_loss.backward();
      optimizer.step();
      {
        NoGradGuard no_grad;  // counting reads values only
        st.running.add(output.detach(), y, value, samples_in(x));
      }
      ++st.global_step;
      ++st.position;
      progress.update(st.position, st.running.loss(), st.running.accuracy(), st.running.samples);
      for (const auto& cb : options.callbacks) cb->on_batch_end(st.global_step, value);
      // A step checkpoint at the epoch's last batch would be superseded at once by the epoch's.
      if (!dir.empty() && options.checkpoint_every_steps > 0 && st.global_step % options.checkpoint_every_steps == 0 &&
          st.position < train.size())
        save_checkpoint(dir, capture(model, optimizer, options, train, loader_epoch, st));
    }
    const double train_seconds = seconds_since(start);
    Running total = st.running;  // over every process of a data-parallel job
    sum_over_processes(total);

    EpochMetrics m;
    m.epoch = epoch;
    m.loss = total.loss();
    m.accuracy = total.accuracy();
    if (options.validation) {
      const Metrics v = evaluate_impl(model, loss, *options.validation);
      m.val_loss = v.loss;
      m.val_accuracy = v.accuracy;
    }
    m.seconds = seconds_since(start);
    if (const FitCollective* c = fit_collective()) {  // the same History on every rank: the mean wall time
      std::vector<double> t{m.seconds};
      c->sum(t);
      m.seconds = t[0] / c->world_size;
    }
    progress.finish(m, total.samples, train_seconds);
    st.history.push_back(m);
    // Every callback sees the epoch, as in Keras, even after one asked to stop.
    for (const auto& cb : options.callbacks) st.stopped = cb->on_epoch_end(epoch, m) || st.stopped;
    if (options.scheduler) options.scheduler->step();
    st.epochs_done = epoch;
    st.position = 0;
    st.running = Running{};
    if (!dir.empty()) save_checkpoint(dir, capture(model, optimizer, options, train, train.epoch(), st));
  }
  for (const auto& cb : options.callbacks) cb->on_train_end();
  return st.history;
}

}  // namespace

History fit_impl(nn::Module& model, optim::Optimizer& optimizer, const LossCall& loss, data::DataLoader& train,
                 const FitOptions& options_in, std::ostream& out, bool terminal) {
  return abort_job_on_error("fit", [&] {
    FitOptions options = options_in;
    if (const FitCollective* c = fit_collective()) options.verbose = options.verbose && c->is_main;
    return fit_loop(model, optimizer, loss, train, options, out, terminal);
  });
}

Metrics evaluate_impl(nn::Module& model, const LossCall& loss, data::DataLoader& loader) {
  return abort_job_on_error("evaluate", [&] {
    check_loader("evaluate", "evaluation", loader);
    ModeGuard mode(model, false);
    NoGradGuard no_grad;
    Running run;
    for (auto& [x, y] : loader) {
      Tensor output = model(x);
      run.add(output, y, scalar_loss("evaluate", loss(output, y)), samples_in(x));
    }
    sum_over_processes(run);
    return Metrics{run.loss(), run.accuracy()};
  });
}

}  // namespace xgrad::detail
