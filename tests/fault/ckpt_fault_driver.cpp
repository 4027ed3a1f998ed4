// Proof by fault injection that fit's checkpoints survive kill -9 anywhere:
//
//   ckpt_fault_driver drive --kills N [--seed S] [--pause-us P]
//       runs the training below once uninterrupted (the reference), then again in a fresh
//       checkpoint directory, SIGKILLing it at random instants and restarting it, N times; a run
//       that completes before its kill is compared and the directory started afresh. Finally the
//       run is completed and its parameters and metrics are compared bitwise with the reference.
//       Every other kill, after its random delay, waits for a checkpoint write to be in progress.
//       The child's checkpoint writer sleeps P µs after every chunk (XGRAD_FAULT_WRITE_PAUSE_US),
//       widening the window of a write; a kill found a write in progress when the checkpoint's
//       temporary file exists after it. Exit status 0 only if every comparison is bitwise equal.
//   ckpt_fault_driver train DIR OUT
//       the training itself: fit with checkpoints in DIR, then the final parameters and History
//       (without the seconds) to OUT.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

int train(const std::string& dir, const std::string& out) {
  manual_seed(100);
  const std::size_t n = 240;
  Tensor x = randn({n, 8});
  xt::xarray<float> labels = xt::xarray<float>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) labels(i) = float(i % 4);
  Tensor y = tensor(labels);
  data::DataLoader loader(data::TensorDataset(x, y), {.batch_size = 12, .shuffle = true, .seed = 11});
  data::DataLoader val(data::TensorDataset(x, y), {.batch_size = 60});
  manual_seed(1);
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(8, 64), std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.3),
      std::make_shared<nn::Linear>(64, 4)});
  optim::Adam adam(model->parameters(), {.lr = 0.01});
  optim::StepLR step(adam, 2, 0.5);
  auto stop = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.patience = 3, .restore_best_weights = true});
  auto plateau = std::make_shared<ReduceLROnPlateau>(adam, ReduceLROnPlateauOptions{.patience = 1});
  nn::CrossEntropyLoss loss;
  History h = fit(model, adam, loss, loader,
                  {.epochs = 8,
                   .validation = &val,
                   .verbose = false,
                   .scheduler = &step,
                   .callbacks = {stop, plateau},
                   .checkpoint_dir = dir,
                   .checkpoint_every_steps = 3});
  NamedTensors result;
  for (const auto& [name, t] : model->state_dict()) result.emplace_back(name, t);
  for (EpochMetrics& m : h) m.seconds = 0;
  xt::xarray<double> rows = xt::zeros<double>({h.size(), std::size_t{5}});
  for (std::size_t i = 0; i < h.size(); ++i) {
    rows(i, 0) = h[i].epoch;
    rows(i, 1) = h[i].loss;
    rows(i, 2) = h[i].accuracy;
    rows(i, 3) = h[i].val_loss;
    rows(i, 4) = h[i].val_accuracy;
  }
  result.emplace_back("history", tensor(rows));
  save_safetensors(out, result);
  return 0;
}

std::vector<char> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

pid_t spawn(const std::string& dir, const std::string& out, unsigned pause_us) {
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (pid == 0) {
    setenv("XGRAD_FAULT_WRITE_PAUSE_US", std::to_string(pause_us).c_str(), 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execl("/proc/self/exe", "ckpt_fault_driver", "train", dir.c_str(), out.c_str(), static_cast<char*>(nullptr));
    std::perror("exec");
    _exit(127);
  }
  return pid;
}

bool exited_cleanly(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

bool write_in_progress(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".tmp") return true;
  return false;
}

using Clock = std::chrono::steady_clock;

int drive(int kills, unsigned seed, unsigned pause_us) {
  const fs::path work = fs::temp_directory_path() / ("xgrad_fault_" + std::to_string(getpid()));
  fs::remove_all(work);
  fs::create_directories(work);
  const fs::path ref_out = work / "reference.safetensors";
  const fs::path run_dir = work / "run";
  const fs::path run_out = work / "run.safetensors";

  // The reference, uninterrupted (with the same pauses, to time a run).
  const auto t0 = Clock::now();
  int status = 0;
  waitpid(spawn((work / "ref").string(), ref_out.string(), pause_us), &status, 0);
  const double full = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!exited_cleanly(status)) {
    std::fprintf(stderr, "fault driver: the reference run failed (status %d)\n", status);
    return 1;
  }
  const std::vector<char> reference = read_file(ref_out);

  std::mt19937_64 rng(seed);
  int killed = 0, inside = 0, completed = 0, restarts = 0;
  std::vector<double> instants;
  auto compare = [&](const char* what) {
    ++completed;
    if (read_file(run_out) != reference) {
      std::fprintf(stderr, "fault driver: %s run differs from the reference after %d kills\n", what, killed);
      return false;
    }
    return true;
  };
  while (killed < kills) {
    // Kill instants spread uniformly over a full run's duration: later restarts have less left
    // to do, so some complete before their kill (then compared, and started afresh).
    const double delay = std::uniform_real_distribution<double>(0.0, full)(rng);
    const pid_t pid = spawn(run_dir.string(), run_out.string(), pause_us);
    ++restarts;
    const auto start = Clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    // Every other kill waits, after its random delay, for a checkpoint write to be in progress
    // (its temporary file exists), so that writes are hit whatever the timing of the machine.
    const bool aim_at_write = killed % 2 == 1;
    bool done = false;
    while (elapsed() < delay || (aim_at_write && !write_in_progress(run_dir) && elapsed() < 2 * full + 1)) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        done = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(aim_at_write && elapsed() >= delay ? 50 : 200));
    }
    if (done) {
      if (!exited_cleanly(status)) {
        std::fprintf(stderr, "fault driver: a resumed run failed (status %d)\n", status);
        return 1;
      }
      if (!compare("a completed")) return 1;
      fs::remove_all(run_dir);
      fs::remove(run_out);
      continue;
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ++killed;
    const bool in_write = write_in_progress(run_dir);
    inside += in_write;
    const double instant = elapsed();
    instants.push_back(instant);
    std::printf("kill %2d at %.3f s%s\n", killed, instant, in_write ? " (inside a checkpoint write)" : "");
  }
  waitpid(spawn(run_dir.string(), run_out.string(), pause_us), &status, 0);
  if (!exited_cleanly(status)) {
    std::fprintf(stderr, "fault driver: the final resumed run failed (status %d)\n", status);
    return 1;
  }
  if (!compare("the final")) return 1;
  std::printf(
      "fault driver: %d SIGKILLs survived (%d inside checkpoint writes, %d elsewhere), %d runs completed and "
      "bitwise equal to the reference (%d starts, full run %.2f s)\n",
      killed, inside, killed - inside, completed, restarts + 1, full);
  fs::remove_all(work);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 4 && std::strcmp(argv[1], "train") == 0) return train(argv[2], argv[3]);
    if (argc >= 2 && std::strcmp(argv[1], "drive") == 0) {
      int kills = 5;
      unsigned seed = 1, pause_us = 200;
      for (int i = 2; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--kills") == 0) kills = std::atoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "--seed") == 0) seed = unsigned(std::atoi(argv[i + 1]));
        else if (std::strcmp(argv[i], "--pause-us") == 0) pause_us = unsigned(std::atoi(argv[i + 1]));
      }
      return drive(kills, seed, pause_us);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ckpt_fault_driver: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: %s drive --kills N [--seed S] [--pause-us P] | train DIR OUT\n", argv[0]);
  return 2;
}
