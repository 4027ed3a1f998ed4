#include "state_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace xgrad::detail {

// ---- StateReader -------------------------------------------------------------------------------
StateReader::StateReader(std::string who, const NamedTensors& state, std::string prefix)
    : who_(std::move(who)), prefix_(std::move(prefix)), state_(state), used_(state.size(), false) {
  for (std::size_t i = 0; i < state.size(); ++i)
    if (!index_.emplace(state[i].first, i).second) fail(who_, ": duplicate entry '", state[i].first, "'");
}

const Tensor& StateReader::tensor(const std::string& name) {
  const auto it = index_.find(name);
  if (it == index_.end()) fail(who_, ": missing entry '", name, "'");
  used_[it->second] = true;
  const Tensor& t = state_[it->second].second;
  if (!t.defined()) fail(who_, ": entry '", name, "' is undefined");
  return t;
}

double StateReader::real(const std::string& name) {
  const Tensor& t = tensor(name);
  if (t.numel() != 1 || t.dim() != 0)
    fail(who_, ": entry '", name, "' must be a 0-d tensor, got shape ", shape_str(t.shape()));
  return t.item();
}

std::int64_t StateReader::integer(const std::string& name, std::int64_t lo, std::int64_t hi) {
  const double v = real(name);
  if (!(v >= double(lo) && v <= double(hi) && v == std::floor(v)))
    fail(who_, ": entry '", name, "' must be an integer in [", lo, ", ", hi, "], got ", v);
  return static_cast<std::int64_t>(v);
}

NamedTensors StateReader::prefixed() const {
  NamedTensors out;
  if (prefix_.empty()) return out;
  for (const auto& [name, t] : state_)
    if (name.compare(0, prefix_.size(), prefix_) == 0) out.emplace_back(name.substr(prefix_.size()), t);
  return out;
}

void StateReader::finish() const {
  for (std::size_t i = 0; i < state_.size(); ++i) {
    const std::string& name = state_[i].first;
    if (used_[i] || (!prefix_.empty() && name.compare(0, prefix_.size(), prefix_) == 0)) continue;
    fail(who_, ": unknown entry '", name, "'");
  }
}

// ---- History as a tensor -----------------------------------------------------------------------
Tensor history_to_tensor(const History& history) {
  std::vector<double> v;
  v.reserve(history.size() * 6);
  for (const EpochMetrics& m : history)
    for (double x : {double(m.epoch), m.loss, m.accuracy, m.val_loss, m.val_accuracy, m.seconds}) v.push_back(x);
  xt::xarray<double> a = xt::zeros<double>({history.size(), std::size_t{6}});
  std::copy(v.begin(), v.end(), a.data());
  return xgrad::tensor(std::move(a));
}

History history_from_tensor(const std::string& where, const Tensor& t) {
  if (t.dtype() != kFloat64 || t.dim() != 2 || t.shape()[1] != 6)
    fail(where, ": must be a float64 tensor of shape [epochs, 6], got ", t.dtype() == kFloat64 ? "F64 " : "F32 ",
         shape_str(t.shape()));
  const double* p = t.data<double>().data();
  History h;
  for (std::size_t i = 0; i < t.shape()[0]; ++i, p += 6) {
    if (!(p[0] >= 0 && p[0] <= 1e9 && p[0] == std::floor(p[0])))
      fail(where, ": row ", i, " has epoch ", p[0], " (must be a non-negative integer)");
    EpochMetrics m;
    m.epoch = static_cast<int>(p[0]);
    m.loss = p[1];
    m.accuracy = p[2];
    m.val_loss = p[3];
    m.val_accuracy = p[4];
    m.seconds = p[5];
    h.push_back(m);
  }
  return h;
}

// ---- Crash-safe writes -------------------------------------------------------------------------
namespace {

WriteFaults faults_from_environment() {
  WriteFaults f;
  if (const char* p = std::getenv("XGRAD_FAULT_WRITE_PAUSE_US")) f.pause_us = unsigned(std::strtoul(p, nullptr, 10));
  if (const char* p = std::getenv("XGRAD_FAULT_WRITE_FAIL_AFTER_BYTES")) f.fail_after_bytes = std::strtoll(p, nullptr, 10);
  return f;
}

constexpr std::size_t kChunk = 1 << 16;

}  // namespace

WriteFaults& write_faults() {
  static WriteFaults faults = faults_from_environment();
  return faults;
}

void write_file_atomically(const std::string& who, const std::string& path, const std::vector<Piece>& pieces) {
  const WriteFaults faults = write_faults();
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(who, ": cannot create '", tmp, "' (to write '", path, "'): ", std::strerror(errno));
  auto give_up = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(who, ": ", what, " '", tmp, "' (to write '", path, "'): ", std::strerror(err),
         "; the previous '", path, "' is unchanged");
  };
  std::int64_t written_total = 0;
  for (const auto& [data, size] : pieces) {
    const char* p = static_cast<const char*>(data);
    std::size_t left = size;
    while (left > 0) {
      const std::size_t n = std::min(left, kChunk);
      if (faults.fail_after_bytes >= 0 && written_total + std::int64_t(n) > faults.fail_after_bytes)
        give_up("cannot write", ENOSPC);
      const ssize_t w = ::write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        give_up("cannot write", errno);
      }
      p += w;
      left -= std::size_t(w);
      written_total += w;
      if (faults.pause_us) ::usleep(faults.pause_us);
    }
  }
  if (::fsync(fd) != 0) give_up("cannot flush", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(who, ": cannot close '", tmp, "' (to write '", path, "'): ", std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(who, ": cannot rename '", tmp, "' to '", path, "': ", std::strerror(err));
  }
  // The rename is durable only once the directory entry is: fsync the directory.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail(who, ": cannot open directory '", dir, "' to flush '", path, "': ", std::strerror(errno));
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) fail(who, ": cannot flush directory '", dir, "' after writing '", path, "': ", std::strerror(err));
}

}  // namespace xgrad::detail
