#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <xgrad.hpp>

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("xgrad_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string u64_le(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A file from a header text and raw data bytes, with the header length the header really has.
std::string file_bytes(const std::string& header, const std::string& data) { return u64_le(header.size()) + header + data; }

// n zero bytes of tensor data.
std::string zeros_bytes(std::size_t n) { return std::string(n, '\0'); }

template <class T>
bool bit_identical(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.numel() == 0) return true;  // data() may be null: memcmp must not see it
  return std::memcmp(a.data<T>().data(), b.data<T>().data(), a.numel() * sizeof(T)) == 0;
}

}  // namespace

TEST_CASE("safetensors: the bytes of a minimal file, written and read") {
  TempDir dir;
  // The header for one float32 tensor "a" of shape [2] holding 8 bytes at data offset 0. Counting the
  // characters: {"a": (5) + {"dtype":"F32", (15) + "shape":[2], (12) + "data_offsets":[0,8] (20) + }} (2) = 54,
  // padded with 2 spaces to 56, a multiple of 8.
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(header.size() == 54);
  const std::string padded = header + "  ";
  // 1.0f = 0x3F800000 and 2.0f = 0x40000000, stored little-endian.
  const std::string data = std::string("\x00\x00\x80\x3F", 4) + std::string("\x00\x00\x00\x40", 4);
  const std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) + padded + data;  // 0x38 = 56

  const std::string path = dir.file("a.safetensors");
  save_safetensors(path, {{"a", tensor({1.0, 2.0})}});
  CHECK(read_bytes(path) == expected);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // A hand-written file in the same format loads.
  const std::string hand = dir.file("hand.safetensors");
  write_bytes(hand, expected);
  NamedTensors loaded = load_safetensors(hand);
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].first == "a");
  CHECK(loaded[0].second.dtype() == kFloat32);
  CHECK(loaded[0].second.shape() == Shape{2});
  CHECK(loaded[0].second.data<float>()(0) == 1.0f);
  CHECK(loaded[0].second.data<float>()(1) == 2.0f);
  CHECK_FALSE(loaded[0].second.requires_grad());

  // An unpadded header is valid too (padding is a writer's courtesy, not a reader's requirement).
  write_bytes(hand, file_bytes(header, data));
  CHECK(load_safetensors(hand)[0].second.data<float>()(1) == 2.0f);
}

TEST_CASE("safetensors: round trip is bit-identical, keeps order, dtypes, shapes and metadata") {
  TempDir dir;
  manual_seed(3);
  Tensor f32 = randn({3, 4});
  Tensor f64 = randn({2, 2, 2}, kFloat64);
  // Values whose bits a lossy path would change: -0, a denormal, infinities, NaN.
  Tensor special = tensor({-0.0, 1e-40, INFINITY, -INFINITY, NAN});
  Tensor scalar = tensor(3.25, kFloat64);
  Tensor empty_rows = zeros({0, 3});
  const NamedTensors saved = {{"z.f32", f32}, {"a.f64", f64}, {"special", special}, {"scalar", scalar},
                              {"empty", empty_rows}};
  const std::string path = dir.file("m.safetensors");
  save_safetensors(path, saved, {{"format", "pt"}, {"note", "round trip"}});

  std::map<std::string, std::string> meta;
  NamedTensors loaded = load_safetensors(path, &meta);
  REQUIRE(loaded.size() == saved.size());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    CAPTURE(saved[i].first);
    CHECK(loaded[i].first == saved[i].first);  // the saved order, not alphabetical
    CHECK(loaded[i].second.shape() == saved[i].second.shape());
    if (saved[i].second.dtype() == kFloat32)
      CHECK(bit_identical<float>(loaded[i].second, saved[i].second));
    else
      CHECK(bit_identical<double>(loaded[i].second, saved[i].second));
  }
  CHECK(meta == std::map<std::string, std::string>{{"format", "pt"}, {"note", "round trip"}});
  // Header length is a multiple of 8.
  const std::string bytes = read_bytes(path);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(n % 8 == 0);
  // Data: 12 floats + 8 doubles + 5 floats + 1 double + 0 = 48 + 64 + 20 + 8 bytes after the header.
  CHECK(bytes.size() == 8 + n + 48 + 64 + 20 + 8);
}

TEST_CASE("safetensors: saving replaces an existing file atomically and refuses bad input") {
  TempDir dir;
  const std::string path = dir.file("x.safetensors");
  save_safetensors(path, {{"w", ones({2})}});
  save_safetensors(path, {{"w", full({3}, 7.0)}});
  NamedTensors loaded = load_safetensors(path);
  CHECK(loaded[0].second.shape() == Shape{3});
  CHECK(loaded[0].second.data<float>()(2) == 7.0f);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  const std::string before = read_bytes(path);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"w", ones({1})}, {"w", ones({1})}}),
                       doctest::Contains("duplicate tensor name 'w'"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"", ones({1})}}), doctest::Contains("empty name"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"__metadata__", ones({1})}}), doctest::Contains("reserved"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"u", Tensor()}}), doctest::Contains("'u' is undefined"), Error);
  CHECK(read_bytes(path) == before);  // the failed saves left the file alone

  const std::string unwritable = dir.file("no/such/dir/x.safetensors");
  CHECK_THROWS_WITH_AS(save_safetensors(unwritable, {{"w", ones({1})}}), doctest::Contains(unwritable.c_str()), Error);
}

TEST_CASE("safetensors: loading a missing or truncated file names the problem") {
  TempDir dir;
  const std::string missing = dir.file("missing.safetensors");
  CHECK_THROWS_WITH_AS(load_safetensors(missing), doctest::Contains(missing.c_str()), Error);
  CHECK_THROWS_WITH_AS(load_safetensors(dir.path.string()), doctest::Contains("not a regular file"), Error);

  const std::string path = dir.file("bad.safetensors");
  write_bytes(path, std::string("\x05\0\0", 3));
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains("3 bytes, fewer than the 8-byte header length"), Error);

  // Header length 1000 with only 10 bytes after it.
  write_bytes(path, u64_le(1000) + std::string(10, ' '));
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains("header length 1000"), Error);

  // A header length above 100 MB is refused even when the file is that large (a sparse file).
  write_bytes(path, u64_le(100'000'001));
  fs::resize_file(path, 100'000'100);
  CHECK_THROWS_WITH_AS(load_safetensors(path), doctest::Contains("exceeds the limit of 100000000"), Error);
}

TEST_CASE("safetensors: malformed headers are refused with what and where") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto load_error = [&](const std::string& header, const std::string& data) {
    write_bytes(path, file_bytes(header, data));
    try {
      load_safetensors(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto contains = [](const std::string& message, const std::string& fragment) {
    CAPTURE(message);
    CHECK(message.find(fragment) != std::string::npos);
  };

  contains(load_error(R"({"a": {"dtype": "F32", )", ""), "is not valid JSON");
  contains(load_error(R"([1, 2])", ""), "must be a JSON object");
  contains(load_error(R"({"a": 3})", ""), "tensor 'a': entry must be a JSON object");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [1]}})", zeros_bytes(4)),
           "must have \"dtype\", \"shape\" and \"data_offsets\"");
  // BF16 now loads (converted, issue 9 §3); a dtype xgrad does not know is still an error naming the tensor.
  contains(load_error(R"({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}})", zeros_bytes(8)),
           "tensor 'a': unsupported dtype \"C64\"");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}})", ""),
           "shape entry 1 must be a non-negative integer, got -1");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 0]}})", ""),
           "shape entry 0 must be a non-negative integer, got 2.5");
  // 2^62 · 2^62 elements overflow 64 bits.
  contains(load_error(R"({"a": {"dtype": "F64", "shape": [4611686018427387904, 4611686018427387904], "data_offsets": [0, 8]}})",
                      zeros_bytes(8)),
           "overflows");
  // 3 floats need 12 bytes, the offsets give 8.
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", zeros_bytes(8)),
           "data_offsets [0, 8] span 8 bytes but dtype F32 and shape [3] need 12");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", zeros_bytes(8)),
           "end before they begin");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", zeros_bytes(4)),
           "\"data_offsets\" must be two non-negative integers");
  // Offsets past the end of the 8-byte data section.
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", zeros_bytes(8)),
           "tensor 'a': data_offsets [0, 16]");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", zeros_bytes(8)),
           "past the end of the 8-byte data section");
  // Two tensors sharing bytes 4..8.
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                      zeros_bytes(12)),
           "tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
                      zeros_bytes(20)),
           "leave a gap after tensor 'a'");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", zeros_bytes(12)),
           "leave the first 4 bytes of the data section unused");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", zeros_bytes(12)),
           "4 trailing bytes");
  contains(load_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                          "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                      zeros_bytes(8)),
           "duplicate name 'a'");
  contains(load_error(R"({"__metadata__": [1], "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                      zeros_bytes(4)),
           "\"__metadata__\" must be an object");
  contains(load_error(R"({"__metadata__": {"k": 1}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                      zeros_bytes(4)),
           "value of 'k' must be a string");
  // Every message names the file.
  contains(load_error("{", ""), path);
}

TEST_CASE("safetensors: tensors from any offset order come back sorted by offset") {
  TempDir dir;
  const std::string path = dir.file("order.safetensors");
  // "b" lies first in the data, "a" second; 1.0f = 00 00 80 3F, 2.0f = 00 00 00 40.
  const std::string header = R"({"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  write_bytes(path, file_bytes(header, std::string("\x00\x00\x80\x3F\x00\x00\x00\x40", 8)));
  NamedTensors loaded = load_safetensors(path);
  REQUIRE(loaded.size() == 2);
  CHECK(loaded[0].first == "b");
  CHECK(loaded[0].second.data<float>()(0) == 1.0f);
  CHECK(loaded[1].first == "a");
  CHECK(loaded[1].second.shape() == Shape{});
  CHECK(loaded[1].second.item() == 2.0);
}
