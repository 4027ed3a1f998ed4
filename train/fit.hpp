// xgrad::fit / xgrad::evaluate: the training loop most users would otherwise write by hand, the
// counterpart of Keras's compile/fit/evaluate.
//
//   nn::CrossEntropyLoss loss;
//   optim::Adam adam(model->parameters());
//   History history = fit(*model, adam, loss, train_loader, {.epochs = 10, .validation = &test_loader});
//   history.to_csv("metrics.csv");
//   Metrics test = evaluate(*model, loss, test_loader);
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../autograd/ops.hpp"
#include "../data/dataloader.hpp"

namespace xgrad {

namespace nn {
class Module;
}
namespace optim {
class Optimizer;
class LRScheduler;
}  // namespace optim
class Callback;  // train/callbacks.hpp

// The metrics of one epoch. A metric that does not apply is NaN: val_* without validation data,
// accuracy when the outputs and targets are not a classification (see fit).
struct EpochMetrics {
  int epoch = 0;  // 1-based, as printed
  double loss = std::numeric_limits<double>::quiet_NaN();
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;  // wall time of the epoch, validation included
};

// One EpochMetrics per epoch, in order.
class History : public std::vector<EpochMetrics> {
 public:
  using std::vector<EpochMetrics>::vector;
  // "epoch,loss,accuracy,val_loss,val_accuracy,seconds" then one line per epoch; NaN is an empty cell.
  std::string csv() const;
  // Writes csv() to `path` atomically (temporary file, then rename).
  void to_csv(const std::string& path) const;
};
inline void save_history_csv(const History& history, const std::string& path) { history.to_csv(path); }

struct Metrics {
  double loss;
  double accuracy;
};

struct FitOptions {
  int epochs = 10;
  data::DataLoader* validation = nullptr;  // evaluated after every epoch when set
  bool verbose = true;  // progress bar on a terminal, one line per epoch otherwise
  optim::LRScheduler* scheduler = nullptr;  // stepped once after every epoch (after the callbacks)
  std::vector<std::shared_ptr<Callback>> callbacks = {};
  // When set, a checkpoint after every epoch (and every checkpoint_every_steps optimizer steps) and
  // a resume from the newest complete checkpoint found there: see train/checkpoint.hpp.
  std::string checkpoint_dir = "";
  std::int64_t checkpoint_every_steps = 0;
};

namespace detail {

using LossCall = std::function<Tensor(const Tensor&, const Tensor&)>;

template <class>
inline constexpr bool always_false = false;

// loss(output, target); a function whose third parameter is the Reduction (nn::functional's losses,
// passed by name) gets Reduction::Mean; a pointer to a loss module is dereferenced.
template <class F>
Tensor call_loss(F& loss, const Tensor& output, const Tensor& target) {
  if constexpr (std::is_invocable_r_v<Tensor, F&, const Tensor&, const Tensor&>)
    return loss(output, target);
  else if constexpr (std::is_invocable_r_v<Tensor, F&, const Tensor&, const Tensor&, Reduction>)
    return loss(output, target, Reduction::Mean);
  else if constexpr (requires { { (*loss)(output, target) } -> std::convertible_to<Tensor>; })
    return (*loss)(output, target);
  else
    static_assert(always_false<F>, "xgrad::fit/evaluate: the loss must be callable as loss(output, target) -> Tensor");
}

template <class F>
LossCall make_loss_call(F& loss) {
  return [&loss](const Tensor& output, const Tensor& target) { return call_loss(loss, output, target); };
}

bool stdout_is_terminal();
std::ostream& stdout_console();  // std::cout, without including <iostream> here
// The loops behind fit and evaluate. fit_impl reports progress to `out`: a redrawn progress bar
// when `terminal`, one plain line per epoch otherwise, nothing when !options.verbose.
History fit_impl(nn::Module& model, optim::Optimizer& optimizer, const LossCall& loss, data::DataLoader& train,
                 const FitOptions& options, std::ostream& out, bool terminal);
Metrics evaluate_impl(nn::Module& model, const LossCall& loss, data::DataLoader& loader);

}  // namespace detail

// Trains `model` for options.epochs passes over `train`: per batch zero_grad, forward, loss,
// backward, optimizer step, with the model in training mode (its previous mode is restored at the
// end). After each epoch, evaluates on options.validation if set. Returns the per-epoch metrics:
//  - loss: the sample-weighted mean of the batch losses (the mean over the epoch's samples for a
//    mean-reduced loss), measured while training, as Keras does;
//  - accuracy: for several outputs per sample (last dim C > 1), argmax over the last dim against
//    class-index targets (or against the argmax of one-hot targets of the output's shape); for one
//    output per sample, output > 0.5 against 0/1 targets (a sigmoid output). NaN when the targets
//    do not fit either reading (e.g. regression).
// The loss must reduce to a single value (Reduction::Mean or Sum).
// Progress goes to stdout: a progress bar with batch count, running loss, throughput and ETA when
// stdout is a terminal, otherwise one line per epoch; nothing when options.verbose is false.
template <class LossFn>
History fit(nn::Module& model, optim::Optimizer& optimizer, LossFn&& loss, data::DataLoader& train,
            const FitOptions& options = {}) {
  return detail::fit_impl(model, optimizer, detail::make_loss_call(loss), train, options, detail::stdout_console(),
                          detail::stdout_is_terminal());
}

// The loss and accuracy (as defined for fit) over every batch of `loader`, sample-weighted, computed
// under NoGradGuard with the model in eval mode; the model's previous mode is restored afterwards.
template <class LossFn>
Metrics evaluate(nn::Module& model, LossFn&& loss, data::DataLoader& loader) {
  return detail::evaluate_impl(model, detail::make_loss_call(loss), loader);
}

// The same for a model held by std::shared_ptr, as modules usually are.
template <class M, class LossFn>
History fit(const std::shared_ptr<M>& model, optim::Optimizer& optimizer, LossFn&& loss, data::DataLoader& train,
            const FitOptions& options = {}) {
  return fit(*model, optimizer, loss, train, options);
}
template <class M, class LossFn>
Metrics evaluate(const std::shared_ptr<M>& model, LossFn&& loss, data::DataLoader& loader) {
  return evaluate(*model, loss, loader);
}

}  // namespace xgrad
