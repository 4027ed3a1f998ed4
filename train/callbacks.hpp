// Keras-style callbacks for xgrad::fit: hooks at the start and end of training, of each epoch and
// after each batch. The provided ones carry Keras's names, defaults and rules:
//
//   auto stop = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.patience = 3, .restore_best_weights = true});
//   fit(model, adam, loss, train, {.epochs = 50, .validation = &test, .callbacks = {stop}});
//
// Every callback has state_dict()/load_state_dict() (float64 tensors, plus the best weights of
// EarlyStopping), so that a checkpointed fit resumes them exactly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../autograd/safetensors.hpp"
#include "fit.hpp"

namespace xgrad {

namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}

// A callback's state: named tensors (0-d float64 for counters and bests).
using CallbackState = NamedTensors;

class Callback {
 public:
  virtual ~Callback() = default;

  // fit sets the model and optimizer before on_train_begin (Keras's callback.model).
  void set_model(nn::Module* model) noexcept { model_ = model; }
  nn::Module* model() const noexcept { return model_; }

  // Called once when fit starts (also when it resumes from a checkpoint: the callback's state is
  // then loaded right after this call).
  virtual void on_train_begin() {}
  // `epoch` counts from 1, like EpochMetrics::epoch. Not called again for an epoch that fit resumes
  // part-way from a checkpoint (it was called before the interruption).
  virtual void on_epoch_begin(int /*epoch*/) {}
  // After each optimizer step: `step` is the number of steps since training began (1, 2, ...,
  // continuing across epochs), `loss` the batch's loss.
  virtual void on_batch_end(std::int64_t /*step*/, double /*loss*/) {}
  // After each epoch (validation included). Returning true asks fit to stop after this epoch
  // (Keras's model.stop_training = True).
  virtual bool on_epoch_end(int /*epoch*/, const EpochMetrics& /*metrics*/) { return false; }
  virtual void on_train_end() {}

  // Everything the callback needs to continue exactly where it was; empty when it keeps nothing.
  virtual CallbackState state_dict() const { return {}; }
  // The inverse of state_dict(). Validates before changing anything; throws xgrad::Error naming
  // the callback and the entry.
  virtual void load_state_dict(const CallbackState& state);

 private:
  nn::Module* model_ = nullptr;
};

// The value of a metric by Keras's name: "loss", "accuracy" (or "acc"), "val_loss", "val_accuracy"
// (or "val_acc"). Throws xgrad::Error naming `who` for an unknown name.
double monitored_value(const char* who, const std::string& monitor, const EpochMetrics& m);

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0;  // an improvement must beat the best by more than |min_delta|
  int patience = 0;      // epochs without improvement before stopping
  std::string mode = "auto";  // "min", "max", or "auto": max for accuracies, min otherwise
  bool restore_best_weights = false;
  std::optional<double> baseline = std::nullopt;  // Keras's baseline: wait resets only when beaten
  int start_from_epoch = 0;  // epochs (Keras's 0-based count) to wait before monitoring
};

// Stops training when `monitor` has not improved for `patience` epochs, exactly as Keras 3: each
// monitored epoch increments `wait`; an improvement (better than best by more than min_delta)
// records the best (and its weights with restore_best_weights) and resets `wait` to 0; otherwise,
// when wait >= patience and the epoch is not the first, training stops. With restore_best_weights
// the weights of the best epoch are put back at the end of training. A missing metric (NaN, e.g.
// val_loss without validation data) is skipped with a warning.
class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_train_begin() override;
  bool on_epoch_end(int epoch, const EpochMetrics& metrics) override;
  void on_train_end() override;
  CallbackState state_dict() const override;
  void load_state_dict(const CallbackState& state) override;

  int wait() const noexcept { return wait_; }
  double best() const noexcept { return best_; }
  int best_epoch() const noexcept { return best_epoch_; }        // 1-based; 0 before any
  int stopped_epoch() const noexcept { return stopped_epoch_; }  // 1-based; 0 when not stopped

 private:
  bool is_improvement(double value, double reference) const;
  EarlyStoppingOptions options_;
  bool maximize_;
  int wait_ = 0;
  double best_;
  int best_epoch_ = 0;
  int stopped_epoch_ = 0;
  NamedTensors best_weights_;  // empty until recorded
  bool warned_ = false;
};

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  bool save_best_only = false;
  std::string mode = "auto";
};

// Saves the model (Module::save, safetensors) after every epoch, or only when `monitor` improves
// with save_best_only. `path` may contain "{epoch}" or "{epoch:0Nd}" (Keras's formatting), filled
// with the 1-based epoch.
class ModelCheckpoint : public Callback {
 public:
  explicit ModelCheckpoint(std::string path, ModelCheckpointOptions options = {});
  void on_train_begin() override;
  bool on_epoch_end(int epoch, const EpochMetrics& metrics) override;
  CallbackState state_dict() const override;
  void load_state_dict(const CallbackState& state) override;
  // The file name for `epoch`.
  std::string path_for(int epoch) const;
  double best() const noexcept { return best_; }

 private:
  std::string path_;
  ModelCheckpointOptions options_;
  bool maximize_;
  double best_;
};

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;  // new_lr = lr * factor, must be < 1
  int patience = 10;
  double min_lr = 0;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int cooldown = 0;
};

// Multiplies the optimizer's learning rate by `factor` (not below min_lr) once `monitor` has not
// improved by more than min_delta for `patience` epochs, then waits `cooldown` epochs — Keras's
// rules, counter for counter.
class ReduceLROnPlateau : public Callback {
 public:
  ReduceLROnPlateau(optim::Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  void on_train_begin() override;
  bool on_epoch_end(int epoch, const EpochMetrics& metrics) override;
  CallbackState state_dict() const override;
  void load_state_dict(const CallbackState& state) override;
  int wait() const noexcept { return wait_; }
  double best() const noexcept { return best_; }
  int cooldown_counter() const noexcept { return cooldown_counter_; }

 private:
  bool improves(double value) const;
  optim::Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  bool maximize_;
  double best_;
  int wait_ = 0;
  int cooldown_counter_ = 0;
  bool warned_ = false;
};

// Writes one CSV row per epoch: the columns of History::csv() ("epoch,loss,accuracy,val_loss,
// val_accuracy,seconds"), so scripts/plot_history.sh plots it. The file is rewritten atomically
// after every epoch; with `append`, rows are added after the file's previous content.
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string path, char separator = ',', bool append = false);
  void on_train_begin() override;
  bool on_epoch_end(int epoch, const EpochMetrics& metrics) override;
  CallbackState state_dict() const override;
  void load_state_dict(const CallbackState& state) override;

 private:
  void write() const;
  std::string path_;
  char separator_;
  bool append_;
  std::string previous_;  // the file's content before this run (append only)
  History rows_;
};

// A callback from plain functions (Keras's LambdaCallback); an unset function does nothing.
// on_epoch_end's function returns true to stop training.
struct LambdaCallbackFunctions {
  std::function<void(int)> on_epoch_begin = {};
  std::function<bool(int, const EpochMetrics&)> on_epoch_end = {};
  std::function<void(std::int64_t, double)> on_batch_end = {};
  std::function<void()> on_train_begin = {};
  std::function<void()> on_train_end = {};
};

class LambdaCallback : public Callback {
 public:
  explicit LambdaCallback(LambdaCallbackFunctions functions);
  void on_train_begin() override;
  void on_epoch_begin(int epoch) override;
  void on_batch_end(std::int64_t step, double loss) override;
  bool on_epoch_end(int epoch, const EpochMetrics& metrics) override;
  void on_train_end() override;

 private:
  LambdaCallbackFunctions fns_;
};

}  // namespace xgrad
