// Writing and reading fit's checkpoint files (format in checkpoint.hpp). The reader trusts nothing:
// load_safetensors validates the container, then every field of the state is checked here.
#include "checkpoint.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../autograd/detail/random.hpp"
#include "../autograd/detail/safetensors_header.hpp"
#include "state_io.hpp"

namespace xgrad::detail {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kFormat = "xgrad.checkpoint";
constexpr const char* kVersion = "1";
constexpr std::int64_t kMaxCount = std::int64_t{1} << 53;  // counters stay exact in a float64 too

const void* raw(const Tensor& t) {
  return t.dtype() == kFloat32 ? static_cast<const void*>(t.data<float>().data())
                               : static_cast<const void*>(t.data<double>().data());
}
std::size_t nbytes(const Tensor& t) { return t.numel() * itemsize(t.dtype()); }

// CRC-32 of the state text and of each tensor's name, dtype, shape and bytes, in file order.
std::uint32_t checksum(const std::string& state, const NamedTensors& tensors) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto add = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const Bytef*>(p);
    while (n > 0) {
      const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
      crc = crc32(crc, b, chunk);
      b += chunk;
      n -= chunk;
    }
  };
  add(state.data(), state.size());
  for (const auto& [name, t] : tensors) {
    add(name.data(), name.size() + 1);  // with its terminating NUL: names cannot run into each other
    const unsigned char dtype = t.dtype() == kFloat32 ? 4 : 8;
    add(&dtype, 1);
    const std::uint64_t rank = t.dim();
    add(&rank, 8);
    for (std::size_t d : t.shape()) {
      const std::uint64_t size = d;
      add(&size, 8);
    }
    add(raw(t), nbytes(t));
  }
  return static_cast<std::uint32_t>(crc);
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// Every message: "checkpoint '<path>': field '<field>': ...".
struct Where {
  std::string path;
  template <class... Args>
  [[noreturn]] void fail_field(const std::string& field, const Args&... args) const {
    fail("checkpoint '", path, "': field '", field, "': ", args...);
  }
};

const json& member(const Where& w, const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end()) w.fail_field(std::string("state.") + key, "missing");
  return *it;
}
std::int64_t count(const Where& w, const json& obj, const char* key) {
  const json& v = member(w, obj, key);
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() > std::uint64_t(kMaxCount))
    w.fail_field(std::string("state.") + key, "must be a non-negative integer below 2^53, got ", v.dump());
  return static_cast<std::int64_t>(v.get<std::uint64_t>());
}
bool flag(const Where& w, const json& obj, const char* key) {
  const json& v = member(w, obj, key);
  if (!v.is_boolean()) w.fail_field(std::string("state.") + key, "must be true or false, got ", v.dump());
  return v.get<bool>();
}
std::string text(const Where& w, const json& obj, const char* key) {
  const json& v = member(w, obj, key);
  if (!v.is_string()) w.fail_field(std::string("state.") + key, "must be a string, got ", v.dump());
  return v.get<std::string>();
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

std::string checkpoint_file_name(std::int64_t global_step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-%012lld.safetensors", static_cast<long long>(global_step));
  return buf;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    // Exactly ckpt-<12 digits>.safetensors: temporary files and anything else are not checkpoints.
    if (name.size() != 5 + 12 + 12 || !starts_with(name, "ckpt-") || name.substr(17) != ".safetensors") continue;
    if (!std::all_of(name.begin() + 5, name.begin() + 17, [](char c) { return c >= '0' && c <= '9'; })) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());  // zero-padded: lexical order is step order
  std::vector<std::string> paths;
  for (const std::string& n : names) paths.push_back((fs::path(dir) / n).string());
  return paths;
}

std::string random_state() {
  std::ostringstream out;
  with_generator([&](std::mt19937_64& g) { out << g; });
  return out.str();
}

void set_random_state(const std::string& where, const std::string& text) {
  std::istringstream in(text);
  std::mt19937_64 g;
  in >> g;
  if (in.fail() || !(in >> std::ws).eof()) fail(where, "not the state of a std::mt19937_64 generator");
  with_generator([&](std::mt19937_64& global) { global = g; });
}

void write_checkpoint(const std::string& path, const CheckpointContent& c) {
  NamedTensors tensors;
  auto add_all = [&](const std::string& prefix, const NamedTensors& entries) {
    for (const auto& [name, t] : entries) tensors.emplace_back(prefix + name, t.detach());
  };
  add_all("model.", c.model);
  add_all("optimizer.", c.optimizer);
  if (c.has_scheduler) add_all("scheduler.", c.scheduler);
  for (std::size_t i = 0; i < c.callbacks.size(); ++i) add_all("callbacks." + std::to_string(i) + ".", c.callbacks[i]);
  tensors.emplace_back("fit.history", history_to_tensor(c.history));
  tensors.emplace_back("fit.running", tensor({c.running[0], c.running[1], c.running[2], c.running[3]}, kFloat64));

  const json state = {
      {"global_step", c.global_step},
      {"epochs_done", c.epochs_done},
      {"position", c.position},
      {"loader", {{"epoch", c.loader_epoch},
                  {"seed", c.loader_seed},
                  {"shuffle", c.loader_shuffle},
                  {"batches", c.loader_batches},
                  {"samples", c.loader_samples}}},
      {"val_loader_epoch", c.val_loader_epoch},
      {"stopped", c.stopped},
      {"rng", c.rng},
      {"optimizer", c.optimizer_name},
      {"scheduler", c.has_scheduler},
      {"callbacks", c.callbacks.size()},
  };
  const std::string state_text = state.dump();
  const std::map<std::string, std::string> metadata{{"format", kFormat},
                                                    {"version", kVersion},
                                                    {"state", state_text},
                                                    {"crc32", hex32(checksum(state_text, tensors))}};
  const std::string header = safetensors_header(tensors, metadata);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(std::uint64_t(header.size()) >> (8 * i));
  std::vector<Piece> pieces{{length, 8}, {header.data(), header.size()}};
  for (const auto& [name, t] : tensors) pieces.emplace_back(raw(t), nbytes(t));
  write_file_atomically("fit: checkpoint", path, pieces);
}

CheckpointContent read_checkpoint(const std::string& path, bool verify_checksum) {
  const Where w{path};
  std::map<std::string, std::string> meta;
  NamedTensors tensors;
  try {
    tensors = load_safetensors(path, &meta);
  } catch (const Error& e) {
    fail("checkpoint '", path, "': ", e.what());
  }
  auto meta_field = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end()) w.fail_field(std::string("__metadata__.") + key, "missing (not an xgrad checkpoint?)");
    return it->second;
  };
  if (meta_field("format") != kFormat)
    w.fail_field("__metadata__.format", "expected \"", kFormat, "\", got \"", meta_field("format"), "\"");
  if (meta_field("version") != kVersion)
    w.fail_field("__metadata__.version", "expected \"", kVersion, "\", got \"", meta_field("version"), "\"");
  const std::string& state_text = meta_field("state");
  if (verify_checksum) {
    const std::string stored = meta_field("crc32");
    const std::string actual = hex32(checksum(state_text, tensors));
    if (stored != actual)
      w.fail_field("__metadata__.crc32", "stored ", stored, " but the content gives ", actual,
                   " (the file is corrupt)");
  }

  json state;
  try {
    state = json::parse(state_text);
  } catch (const json::exception& e) {
    w.fail_field("__metadata__.state", "not valid JSON: ", e.what());
  }
  if (!state.is_object()) w.fail_field("__metadata__.state", "must be a JSON object");

  CheckpointContent c;
  c.global_step = count(w, state, "global_step");
  c.epochs_done = count(w, state, "epochs_done");
  c.position = count(w, state, "position");
  const json& loader = member(w, state, "loader");
  if (!loader.is_object()) w.fail_field("state.loader", "must be an object");
  c.loader_epoch = std::uint64_t(count(w, loader, "epoch"));
  c.loader_seed = 0;
  {
    const json& seed = member(w, loader, "seed");
    if (!seed.is_number_unsigned()) w.fail_field("state.loader.seed", "must be a non-negative integer");
    c.loader_seed = seed.get<std::uint64_t>();
  }
  c.loader_shuffle = flag(w, loader, "shuffle");
  c.loader_batches = std::uint64_t(count(w, loader, "batches"));
  c.loader_samples = std::uint64_t(count(w, loader, "samples"));
  c.val_loader_epoch = std::uint64_t(count(w, state, "val_loader_epoch"));
  c.stopped = flag(w, state, "stopped");
  c.rng = text(w, state, "rng");
  c.optimizer_name = text(w, state, "optimizer");
  c.has_scheduler = flag(w, state, "scheduler");
  const std::int64_t callbacks = count(w, state, "callbacks");
  if (callbacks > 10000) w.fail_field("state.callbacks", callbacks, " callbacks is not plausible");
  c.callbacks.resize(static_cast<std::size_t>(callbacks));
  if (c.position > 0 && std::uint64_t(c.position) >= c.loader_batches)
    w.fail_field("state.position", c.position, " batches done, but an epoch has ", c.loader_batches);
  {
    std::istringstream in(c.rng);
    std::mt19937_64 g;
    in >> g;
    if (in.fail() || !(in >> std::ws).eof()) w.fail_field("state.rng", "not the state of a std::mt19937_64 generator");
  }

  bool have_history = false, have_running = false;
  for (auto& [name, t] : tensors) {
    if (starts_with(name, "model.")) {
      c.model.emplace_back(name.substr(6), t);
    } else if (starts_with(name, "optimizer.")) {
      c.optimizer.emplace_back(name.substr(10), t);
    } else if (starts_with(name, "scheduler.")) {
      if (!c.has_scheduler) w.fail_field(name, "a scheduler entry, but state.scheduler is false");
      c.scheduler.emplace_back(name.substr(10), t);
    } else if (starts_with(name, "callbacks.")) {
      const std::size_t dot = name.find('.', 10);
      const std::string index = name.substr(10, dot == std::string::npos ? std::string::npos : dot - 10);
      if (dot == std::string::npos || index.empty() || index.size() > 5 ||
          index.find_first_not_of("0123456789") != std::string::npos || (index.size() > 1 && index[0] == '0'))
        w.fail_field(name, "expected callbacks.<index>.<name>");
      const std::size_t i = std::stoul(index);
      if (i >= c.callbacks.size()) w.fail_field(name, "callback ", i, " but state.callbacks is ", c.callbacks.size());
      c.callbacks[i].emplace_back(name.substr(dot + 1), t);
    } else if (name == "fit.history") {
      c.history = history_from_tensor("checkpoint '" + path + "': field 'fit.history'", t);
      have_history = true;
    } else if (name == "fit.running") {
      if (t.dtype() != kFloat64 || t.shape() != Shape{4})
        w.fail_field(name, "must be float64 of shape [4], got shape ", shape_str(t.shape()));
      const double* p = t.data<double>().data();
      for (int i = 1; i < 4; ++i)
        if (!(p[i] >= 0 && p[i] <= double(kMaxCount) && p[i] == std::floor(p[i])))
          w.fail_field(name, "entry ", i, " must be a non-negative integer, got ", p[i]);
      if (p[3] > 1) w.fail_field(name, "entry 3 must be 0 or 1, got ", p[3]);
      std::copy(p, p + 4, c.running.begin());
      have_running = true;
    } else {
      w.fail_field(name, "unknown entry");
    }
  }
  if (!have_history) w.fail_field("fit.history", "missing");
  if (!have_running) w.fail_field("fit.running", "missing");
  if (std::int64_t(c.history.size()) != c.epochs_done)
    w.fail_field("fit.history", c.history.size(), " epochs, but state.epochs_done is ", c.epochs_done);
  for (std::size_t i = 0; i < c.history.size(); ++i)
    if (c.history[i].epoch != int(i) + 1)
      w.fail_field("fit.history", "row ", i, " is epoch ", c.history[i].epoch, ", expected ", i + 1);
  return c;
}

}  // namespace xgrad::detail
