// Progress reporting for xgrad::fit: a Keras-style progress bar redrawn in place on a terminal, or
// one plain line per epoch for logs and pipes. Internal to train/.
#pragma once
#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <string>

#include "fit.hpp"

namespace xgrad::detail {

// "12s", "1:05", "1:02:03".
std::string format_duration(double seconds);
// "Epoch 3/10 - loss: 0.5123 - accuracy: 0.8123 - val_loss: 0.4011 - val_accuracy: 0.8512 - 3.2s";
// NaN metrics are left out.
std::string epoch_line(const EpochMetrics& m, int epochs);

class EpochProgress {
 public:
  // Nothing is written unless `verbose`; the bar only when `terminal`.
  EpochProgress(std::ostream& out, bool verbose, bool terminal, int epoch, int epochs, std::size_t batches);
  // After batch `done` (1-based) with the running mean loss and accuracy and samples seen so far.
  void update(std::size_t done, double loss, double accuracy, std::size_t samples);
  // The epoch's final metrics: the completed bar's last line, or the plain line. Throughput counts
  // the training time only (train_seconds), not validation.
  void finish(const EpochMetrics& m, std::size_t samples, double train_seconds);

 private:
  using Clock = std::chrono::steady_clock;
  double elapsed() const;
  std::string bar(std::size_t done) const;

  std::ostream& out_;
  bool verbose_, terminal_;
  int epoch_, epochs_;
  std::size_t batches_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  bool drawn_ = false;
};

}  // namespace xgrad::detail
