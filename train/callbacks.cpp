// The provided callbacks, rule for rule as Keras 3 (keras/src/callbacks/*.py).
#include "callbacks.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <utility>

#include "../nn/module.hpp"
#include "../optim/optimizer.hpp"
#include "state_io.hpp"

namespace xgrad {

using detail::fail;

void Callback::load_state_dict(const CallbackState& state) {
  if (!state.empty()) fail("Callback::load_state_dict: this callback keeps no state, got entry '", state.front().first, "'");
}

double monitored_value(const char* who, const std::string& monitor, const EpochMetrics& m) {
  if (monitor == "loss") return m.loss;
  if (monitor == "accuracy" || monitor == "acc") return m.accuracy;
  if (monitor == "val_loss") return m.val_loss;
  if (monitor == "val_accuracy" || monitor == "val_acc") return m.val_accuracy;
  fail(who, ": unknown monitor '", monitor, "' (fit reports loss, accuracy, val_loss, val_accuracy)");
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Keras's mode rule: "min", "max", or "auto" = max for an accuracy, min otherwise.
bool maximizes(const char* who, const std::string& monitor, const std::string& mode) {
  EpochMetrics probe;
  (void)monitored_value(who, monitor, probe);  // rejects an unknown monitor at construction
  if (mode == "min") return false;
  if (mode == "max") return true;
  if (mode == "auto") return monitor.find("acc") != std::string::npos;
  fail(who, ": mode must be \"auto\", \"min\" or \"max\", got \"", mode, "\"");
}

// Whether the monitored value is absent from this epoch (Keras: the key is missing from the logs)
// rather than a real NaN: fit reports NaN for accuracies that do not apply and for val_* without
// validation data (then val_loss and val_accuracy are both NaN). A NaN training loss is real (the
// run diverged) and counts as no improvement, as in Keras.
bool missing(const std::string& monitor, const EpochMetrics& m, double value) {
  if (!std::isnan(value) || monitor == "loss") return false;
  if (monitor == "val_loss") return std::isnan(m.val_accuracy);
  return true;  // an accuracy that does not apply
}

void warn_missing(const char* who, const std::string& monitor, bool& warned) {
  if (warned) return;
  warned = true;
  std::cerr << "xgrad: warning: " << who << " monitors '" << monitor
            << "', which fit does not report here (no validation data, or not a classification); skipping\n";
}

}  // namespace

// ---- EarlyStopping -----------------------------------------------------------------------------
EarlyStopping::EarlyStopping(EarlyStoppingOptions options)
    : options_(std::move(options)), maximize_(maximizes("EarlyStopping", options_.monitor, options_.mode)) {
  if (options_.patience < 0) fail("EarlyStopping: patience must be >= 0, got ", options_.patience);
  options_.min_delta = std::abs(options_.min_delta);
  best_ = maximize_ ? -kInf : kInf;
}

bool EarlyStopping::is_improvement(double value, double reference) const {
  // Keras: monitor_op(value - min_delta, reference) with min_delta negated for "min".
  return maximize_ ? value - options_.min_delta > reference : value + options_.min_delta < reference;
}

void EarlyStopping::on_train_begin() {
  wait_ = 0;
  stopped_epoch_ = 0;
  best_ = maximize_ ? -kInf : kInf;
  best_weights_.clear();
  best_epoch_ = 0;
}

bool EarlyStopping::on_epoch_end(int epoch, const EpochMetrics& metrics) {
  const double current = monitored_value("EarlyStopping", options_.monitor, metrics);
  const int keras_epoch = epoch - 1;  // Keras counts epochs from 0
  if (missing(options_.monitor, metrics, current)) {
    warn_missing("EarlyStopping", options_.monitor, warned_);
    return false;
  }
  if (keras_epoch < options_.start_from_epoch) return false;
  auto snapshot = [&] {
    best_weights_.clear();
    if (model() == nullptr) fail("EarlyStopping: restore_best_weights needs the model (fit sets it)");
    for (const auto& [name, t] : model()->state_dict()) best_weights_.emplace_back(name, t.detach().clone());
  };
  if (options_.restore_best_weights && best_weights_.empty()) {
    snapshot();  // the current weights are the best seen so far
    best_epoch_ = epoch;
  }
  ++wait_;
  if (is_improvement(current, best_)) {
    best_ = current;
    best_epoch_ = epoch;
    if (options_.restore_best_weights) snapshot();
    if (!options_.baseline || is_improvement(current, *options_.baseline)) wait_ = 0;
    return false;
  }
  if (wait_ >= options_.patience && keras_epoch > 0) {
    stopped_epoch_ = epoch;
    return true;
  }
  return false;
}

void EarlyStopping::on_train_end() {
  if (options_.restore_best_weights && !best_weights_.empty() && model() != nullptr) {
    nn::StateDict dict;
    for (const auto& [name, t] : best_weights_) dict.insert(name, t);
    model()->load_state_dict(dict);
  }
}

CallbackState EarlyStopping::state_dict() const {
  CallbackState s = {{"wait", tensor(double(wait_), kFloat64)},
                     {"best", tensor(best_, kFloat64)},
                     {"best_epoch", tensor(double(best_epoch_), kFloat64)},
                     {"stopped_epoch", tensor(double(stopped_epoch_), kFloat64)}};
  for (const auto& [name, t] : best_weights_) s.emplace_back("best_weights." + name, t);
  return s;
}

void EarlyStopping::load_state_dict(const CallbackState& state) {
  detail::StateReader r("EarlyStopping::load_state_dict", state, "best_weights.");
  const int wait = r.integer("wait", 0, 1 << 30);
  const double best = r.real("best");
  const int best_epoch = r.integer("best_epoch", 0, 1 << 30);
  const int stopped_epoch = r.integer("stopped_epoch", 0, 1 << 30);
  r.finish();
  wait_ = wait;
  best_ = best;
  best_epoch_ = best_epoch;
  stopped_epoch_ = stopped_epoch;
  best_weights_.clear();
  for (const auto& [name, t] : r.prefixed()) best_weights_.emplace_back(name, t.detach().clone());
}

// ---- ModelCheckpoint ---------------------------------------------------------------------------
ModelCheckpoint::ModelCheckpoint(std::string path, ModelCheckpointOptions options)
    : path_(std::move(path)),
      options_(std::move(options)),
      maximize_(maximizes("ModelCheckpoint", options_.monitor, options_.mode)),
      best_(maximize_ ? -kInf : kInf) {
  if (path_.empty()) fail("ModelCheckpoint: the path is empty");
}

std::string ModelCheckpoint::path_for(int epoch) const {
  std::string out;
  for (std::size_t i = 0; i < path_.size();) {
    if (path_.compare(i, 7, "{epoch}") == 0) {
      out += std::to_string(epoch);
      i += 7;
      continue;
    }
    // {epoch:0Nd}
    if (path_.compare(i, 8, "{epoch:0") == 0) {
      const std::size_t close = path_.find("d}", i + 8);
      if (close != std::string::npos && close > i + 8) {
        const std::string digits = path_.substr(i + 8, close - (i + 8));
        if (digits.find_first_not_of("0123456789") == std::string::npos && digits.size() <= 2) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "%0*d", std::stoi(digits), epoch);
          out += buf;
          i = close + 2;
          continue;
        }
      }
    }
    out += path_[i++];
  }
  return out;
}

void ModelCheckpoint::on_train_begin() { best_ = maximize_ ? -kInf : kInf; }

bool ModelCheckpoint::on_epoch_end(int epoch, const EpochMetrics& metrics) {
  if (model() == nullptr) fail("ModelCheckpoint: no model (fit sets it)");
  if (options_.save_best_only) {
    const double current = monitored_value("ModelCheckpoint", options_.monitor, metrics);
    if (missing(options_.monitor, metrics, current)) {
      std::cerr << "xgrad: warning: ModelCheckpoint can save best only with '" << options_.monitor
                << "' available; skipping\n";
      return false;
    }
    if (!(maximize_ ? current > best_ : current < best_)) return false;
    best_ = current;
  }
  model()->save(path_for(epoch));
  return false;
}

CallbackState ModelCheckpoint::state_dict() const { return {{"best", tensor(best_, kFloat64)}}; }

void ModelCheckpoint::load_state_dict(const CallbackState& state) {
  detail::StateReader r("ModelCheckpoint::load_state_dict", state);
  const double best = r.real("best");
  r.finish();
  best_ = best;
}

// ---- ReduceLROnPlateau -------------------------------------------------------------------------
ReduceLROnPlateau::ReduceLROnPlateau(optim::Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(optimizer),
      options_(std::move(options)),
      maximize_(maximizes("ReduceLROnPlateau", options_.monitor, options_.mode)),
      best_(maximize_ ? -kInf : kInf) {
  if (!(options_.factor < 1.0)) fail("ReduceLROnPlateau: factor must be < 1, got ", options_.factor);
  if (!(options_.factor >= 0.0)) fail("ReduceLROnPlateau: factor must be >= 0, got ", options_.factor);
  if (options_.patience < 0) fail("ReduceLROnPlateau: patience must be >= 0, got ", options_.patience);
  if (options_.cooldown < 0) fail("ReduceLROnPlateau: cooldown must be >= 0, got ", options_.cooldown);
  if (!(options_.min_lr >= 0)) fail("ReduceLROnPlateau: min_lr must be >= 0, got ", options_.min_lr);
}

bool ReduceLROnPlateau::improves(double value) const {
  return maximize_ ? value > best_ + options_.min_delta : value < best_ - options_.min_delta;
}

void ReduceLROnPlateau::on_train_begin() {
  best_ = maximize_ ? -kInf : kInf;
  wait_ = 0;
  cooldown_counter_ = 0;
}

bool ReduceLROnPlateau::on_epoch_end(int, const EpochMetrics& metrics) {
  const double current = monitored_value("ReduceLROnPlateau", options_.monitor, metrics);
  if (missing(options_.monitor, metrics, current)) {
    warn_missing("ReduceLROnPlateau", options_.monitor, warned_);
    return false;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  if (improves(current)) {
    best_ = current;
    wait_ = 0;
  } else if (cooldown_counter_ == 0) {
    ++wait_;
    if (wait_ >= options_.patience) {
      const double old_lr = optimizer_.lr();
      // Keras compares against float32(min_lr): its learning rates are float32 variables.
      if (old_lr > static_cast<double>(static_cast<float>(options_.min_lr))) {
        optimizer_.set_lr(std::max(old_lr * options_.factor, options_.min_lr));
        cooldown_counter_ = options_.cooldown;
        wait_ = 0;
      }
    }
  }
  return false;
}

CallbackState ReduceLROnPlateau::state_dict() const {
  return {{"best", tensor(best_, kFloat64)},
          {"wait", tensor(double(wait_), kFloat64)},
          {"cooldown_counter", tensor(double(cooldown_counter_), kFloat64)}};
}

void ReduceLROnPlateau::load_state_dict(const CallbackState& state) {
  detail::StateReader r("ReduceLROnPlateau::load_state_dict", state);
  const double best = r.real("best");
  const int wait = r.integer("wait", 0, 1 << 30);
  const int cooldown = r.integer("cooldown_counter", 0, 1 << 30);
  r.finish();
  best_ = best;
  wait_ = wait;
  cooldown_counter_ = cooldown;
}

// ---- CSVLogger ---------------------------------------------------------------------------------
CSVLogger::CSVLogger(std::string path, char separator, bool append)
    : path_(std::move(path)), separator_(separator), append_(append) {
  if (path_.empty()) fail("CSVLogger: the path is empty");
}

void CSVLogger::on_train_begin() {
  previous_.clear();
  rows_.clear();
  if (append_) {
    std::ifstream in(path_, std::ios::binary);
    if (in) previous_.assign(std::istreambuf_iterator<char>(in), {});
  }
  write();
}

bool CSVLogger::on_epoch_end(int, const EpochMetrics& metrics) {
  rows_.push_back(metrics);
  write();
  return false;
}

void CSVLogger::write() const {
  std::string text = rows_.csv();
  if (!previous_.empty()) text.erase(0, text.find('\n') + 1);  // the header is already there
  if (separator_ != ',')
    for (char& c : text)
      if (c == ',') c = separator_;
  detail::write_file_atomically("CSVLogger", path_, previous_ + text);
}

CallbackState CSVLogger::state_dict() const {
  return {{"rows", detail::history_to_tensor(rows_)},
          {"previous_bytes", tensor(double(previous_.size()), kFloat64)}};
}

void CSVLogger::load_state_dict(const CallbackState& state) {
  detail::StateReader r("CSVLogger::load_state_dict", state);
  History rows = detail::history_from_tensor("CSVLogger::load_state_dict: entry 'rows'", r.tensor("rows"));
  const double previous = r.integer("previous_bytes", 0, 1 << 30);
  r.finish();
  rows_ = std::move(rows);
  // The file read by on_train_begin may already hold rows of epochs after the checkpoint: keep
  // only what preceded this run.
  if (previous < double(previous_.size())) previous_.resize(static_cast<std::size_t>(previous));
  write();
}

// ---- LambdaCallback ----------------------------------------------------------------------------
LambdaCallback::LambdaCallback(LambdaCallbackFunctions functions) : fns_(std::move(functions)) {}
void LambdaCallback::on_train_begin() {
  if (fns_.on_train_begin) fns_.on_train_begin();
}
void LambdaCallback::on_epoch_begin(int epoch) {
  if (fns_.on_epoch_begin) fns_.on_epoch_begin(epoch);
}
void LambdaCallback::on_batch_end(std::int64_t step, double loss) {
  if (fns_.on_batch_end) fns_.on_batch_end(step, loss);
}
bool LambdaCallback::on_epoch_end(int epoch, const EpochMetrics& metrics) {
  return fns_.on_epoch_end ? fns_.on_epoch_end(epoch, metrics) : false;
}
void LambdaCallback::on_train_end() {
  if (fns_.on_train_end) fns_.on_train_end();
}

}  // namespace xgrad
