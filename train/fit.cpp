#include "fit.hpp"

#include <unistd.h>

#include <chrono>
#include <iostream>

#include "../autograd/grad_mode.hpp"
#include "../nn/module.hpp"
#include "../optim/optimizer.hpp"
#include "accuracy.hpp"
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

}  // namespace

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }
std::ostream& stdout_console() { return std::cout; }

void set_fit_collective(FitCollective collective) { installed_collective() = std::move(collective); }
const FitCollective* fit_collective() {
  const FitCollective& c = installed_collective();
  return c.sum ? &c : nullptr;
}

History fit_impl(nn::Module& model, optim::Optimizer& optimizer, const LossCall& loss, data::DataLoader& train,
                 const FitOptions& options_in, std::ostream& out, bool terminal) {
  return abort_job_on_error("fit", [&] {
    FitOptions options = options_in;
    if (const FitCollective* c = fit_collective()) options.verbose = options.verbose && c->is_main;
    if (options.epochs < 0) fail("fit: epochs must be >= 0, got ", options.epochs);
    check_loader("fit", "training", train);
    if (options.validation) check_loader("fit", "validation", *options.validation);

    History history;
    history.reserve(static_cast<std::size_t>(options.epochs));
    ModeGuard mode(model, true);
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      const auto start = Clock::now();
      EpochProgress progress(out, options.verbose, terminal, epoch, options.epochs, train.size());
      model.train(true);  // validation of the previous epoch switched to eval and back; be explicit
      Running run;
      std::size_t done = 0;
      for (auto& [x, y] : train) {
        optimizer.zero_grad();
        Tensor output = model(x);
        Tensor batch_loss = loss(output, y);
        const double value = scalar_loss("fit", batch_loss);
        batch_loss.backward();
        optimizer.step();
        {
          NoGradGuard no_grad;  // counting reads values only
          run.add(output.detach(), y, value, samples_in(x));
        }
        progress.update(++done, run.loss(), run.accuracy(), run.samples);
      }
      sum_over_processes(run);
      const double train_seconds = seconds_since(start);

      EpochMetrics m;
      m.epoch = epoch;
      m.loss = run.loss();
      m.accuracy = run.accuracy();
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
      progress.finish(m, run.samples, train_seconds);
      history.push_back(m);
    }
    return history;
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
