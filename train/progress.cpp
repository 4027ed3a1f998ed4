#include "progress.hpp"

#include <cmath>
#include <cstdio>
#include <ostream>

namespace xgrad::detail {
namespace {

constexpr std::size_t kBarWidth = 30;
// Redraw at most this often: a terminal repaint per batch would cost more than a small batch.
constexpr double kRedrawSeconds = 0.1;

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string metric(const char* name, double v) {
  if (std::isnan(v)) return {};
  return std::string(" - ") + name + ": " + fixed(v, 4);
}

std::string throughput(std::size_t samples, double seconds) {
  if (seconds <= 0) return {};
  return " - " + fixed(double(samples) / seconds, 0) + " samples/s";
}

}  // namespace

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || std::isinf(seconds)) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[64];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

std::string epoch_line(const EpochMetrics& m, int epochs) {
  return "Epoch " + std::to_string(m.epoch) + "/" + std::to_string(epochs) + metric("loss", m.loss) +
         metric("accuracy", m.accuracy) + metric("val_loss", m.val_loss) + metric("val_accuracy", m.val_accuracy) +
         " - " + fixed(m.seconds, m.seconds < 10 ? 2 : 1) + "s";
}

EpochProgress::EpochProgress(std::ostream& out, bool verbose, bool terminal, int epoch, int epochs,
                             std::size_t batches)
    : out_(out), verbose_(verbose), terminal_(terminal), epoch_(epoch), epochs_(epochs), batches_(batches),
      start_(Clock::now()), last_draw_(start_) {
  if (verbose_ && terminal_) out_ << "Epoch " << epoch_ << "/" << epochs_ << "\n" << std::flush;
}

double EpochProgress::elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

std::string EpochProgress::bar(std::size_t done) const {
  const std::string count = std::to_string(batches_);
  std::string done_str = std::to_string(done);
  done_str.insert(0, count.size() - std::min(count.size(), done_str.size()), ' ');
  const std::size_t filled = batches_ ? done * kBarWidth / batches_ : kBarWidth;
  std::string bar(kBarWidth, '.');
  for (std::size_t i = 0; i < filled; ++i) bar[i] = '=';
  if (filled < kBarWidth && done > 0) bar[filled] = '>';
  return done_str + "/" + count + " [" + bar + "]";
}

void EpochProgress::update(std::size_t done, double loss, double accuracy, std::size_t samples) {
  if (!verbose_ || !terminal_) return;
  const auto now = Clock::now();
  if (drawn_ && done < batches_ && std::chrono::duration<double>(now - last_draw_).count() < kRedrawSeconds) return;
  last_draw_ = now;
  drawn_ = true;
  const double t = elapsed();
  const double eta = done ? t * double(batches_ - done) / double(done) : 0;
  // \r returns to the line start, \033[K clears what a longer previous line left behind.
  out_ << "\r" << bar(done) << " - ETA: " << format_duration(eta) << metric("loss", loss)
       << metric("accuracy", accuracy) << throughput(samples, t) << "\033[K" << std::flush;
}

void EpochProgress::finish(const EpochMetrics& m, std::size_t samples, double train_seconds) {
  if (!verbose_) return;
  if (!terminal_) {
    out_ << epoch_line(m, epochs_) << "\n" << std::flush;
    return;
  }
  out_ << "\r" << bar(batches_) << " - " << format_duration(m.seconds) << metric("loss", m.loss)
       << metric("accuracy", m.accuracy) << metric("val_loss", m.val_loss) << metric("val_accuracy", m.val_accuracy)
       << throughput(samples, train_seconds) << "\033[K\n"
       << std::flush;
}

}  // namespace xgrad::detail
