// PyTorch interoperability (issue 9 §3): a state_dict written by PyTorch (tests/data/make_torch_cnn.py,
// committed with its output) loads into the same architecture built with xgrad's modules — names,
// shapes, the int64 num_batches_tracked — and gives PyTorch's logits. safetensors integer and
// half-precision dtypes load with conversion.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <xgrad.hpp>

#include "helpers.hpp"

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

// tests/data: XGRAD_TEST_DATA_DIR from tests/CMakeLists.txt (an absolute path, whatever the working directory).
fs::path data_dir() {
#ifdef XGRAD_TEST_DATA_DIR
  return fs::path(XGRAD_TEST_DATA_DIR);
#else
  return fs::path(__FILE__).parent_path() / "data";
#endif
}

// The architecture of make_model() in tests/data/make_torch_cnn.py, module for module.
std::shared_ptr<nn::Sequential> make_model() {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(1, 4, 3, nn::Conv2dOptions{.padding = 1}));
  m->push_back(std::make_shared<nn::BatchNorm2d>(4));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::MaxPool2d>(2));
  m->push_back(std::make_shared<nn::Conv2d>(4, 6, 3, nn::Conv2dOptions{.padding = 1, .groups = 2, .bias = false}));
  m->push_back(std::make_shared<nn::GroupNorm>(3, 6));
  m->push_back(std::make_shared<nn::GELU>());
  m->push_back(std::make_shared<nn::AvgPool2d>(2));
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Linear>(24, 8));
  m->push_back(std::make_shared<nn::LayerNorm>(std::vector<std::size_t>{8}));
  m->push_back(std::make_shared<nn::SiLU>());
  m->push_back(std::make_shared<nn::Linear>(8, 3));
  return m;
}

Tensor find(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  FAIL("no tensor named " << name);
  return {};
}

std::string u64_le(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

template <class T>
std::string le_bytes(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);  // the host is little-endian
  return s;
}

}  // namespace

TEST_CASE("torch interop: a PyTorch state_dict loads by PyTorch's names and gives PyTorch's logits") {
  auto model = make_model();
  const NamedTensors file = load_safetensors((data_dir() / "torch_cnn.safetensors").string());
  // PyTorch wrote num_batches_tracked as I64: it loads (as float64) and converts into the float32 buffer.
  CHECK(find(file, "1.num_batches_tracked").dtype() == kFloat64);
  CHECK(find(file, "1.num_batches_tracked").item() == 3.0);
  std::vector<std::string> ours, theirs;
  for (const auto& [name, t] : model->state_dict()) ours.push_back(name);
  for (const auto& [name, t] : file) theirs.push_back(name);
  CHECK(ours == theirs);
  model->load((data_dir() / "torch_cnn.safetensors").string());  // strict: every name and shape matches
  CHECK(model->state_dict().at("1.num_batches_tracked").dtype() == kFloat32);
  CHECK(model->state_dict().at("1.num_batches_tracked").item() == 3.0);

  const NamedTensors io = load_safetensors((data_dir() / "torch_cnn_io.safetensors").string());
  model->eval();
  Tensor logits = (*model)(find(io, "input"));
  Tensor expected = find(io, "logits");
  REQUIRE(logits.shape() == Shape{4, 3});
  REQUIRE(expected.shape() == Shape{4, 3});
  const auto& a = logits.data<float>();
  const auto& b = expected.data<float>();
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a.data()[i] == doctest::Approx(b.data()[i]).epsilon(1e-5).scale(1.0));
  }
  // The half-precision roundings PyTorch wrote load as float32 within their precision of the logits:
  // F16 keeps 11 significant bits, BF16 8.
  const auto& h = find(io, "logits_f16").data<float>();
  const auto& bf = find(io, "logits_bf16").data<float>();
  for (std::size_t i = 0; i < b.size(); ++i) {
    CHECK(std::abs(h.data()[i] - b.data()[i]) <= std::ldexp(std::abs(b.data()[i]), -11) + 1e-7);
    CHECK(std::abs(bf.data()[i] - b.data()[i]) <= std::ldexp(std::abs(b.data()[i]), -8) + 1e-7);
  }
  // And back: xgrad writes the same names, which PyTorch's load_state_dict expects.
  const std::string out = (fs::temp_directory_path() / ("xgrad_torch_interop_" + std::to_string(::getpid()))).string();
  model->save(out);
  std::vector<std::string> written;
  for (const auto& [name, t] : load_safetensors(out)) written.push_back(name);
  fs::remove(out);
  std::sort(written.begin(), written.end());
  std::sort(theirs.begin(), theirs.end());
  CHECK(written == theirs);
}

TEST_CASE("safetensors: I64, I32, F16 and BF16 entries load converted, an unknown dtype names the tensor") {
  // I64 [-3, 2^40 + 1] and I32 [7, -8] load as float64 (exact); F16 bits 0x3C00 = 1, 0xC000 = -2, 0x7BFF = 65504
  // (the largest half), 0x0001 = 2^-24 (the smallest subnormal), 0x7C00 = inf; BF16 bits 0x3F80 = 1, 0xBF00 = -0.5,
  // 0x4049 = 3.140625 (the float32 bits shifted up by 16) load as float32.
  const std::string i64 = le_bytes<std::int64_t>({-3, (std::int64_t{1} << 40) + 1});
  const std::string i32 = le_bytes<std::int32_t>({7, -8});
  const std::string f16 = le_bytes<std::uint16_t>({0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00});
  const std::string bf16 = le_bytes<std::uint16_t>({0x3F80, 0xBF00, 0x4049});
  const std::string header = std::string("{\"i64\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},") +
                             "\"i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[16,24]}," +
                             "\"f16\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[24,34]}," +
                             "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[34,40]}}";
  const std::string path = (fs::temp_directory_path() / ("xgrad_dtypes_" + std::to_string(::getpid()))).string();
  {
    std::ofstream f(path, std::ios::binary);
    const std::string bytes = u64_le(header.size()) + header + i64 + i32 + f16 + bf16;
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const NamedTensors t = load_safetensors(path);
  fs::remove(path);
  CHECK(find(t, "i64").dtype() == kFloat64);
  test::check_values(find(t, "i64"), {2}, {-3, 1099511627777.0}, 0);
  test::check_values(find(t, "i32"), {2}, {7, -8}, 0);
  Tensor h = find(t, "f16");
  CHECK(h.dtype() == kFloat32);
  test::check_values(h.slice(0, 0, 4), {4}, {1, -2, 65504, std::ldexp(1.0, -24)}, 0);
  CHECK(std::isinf(h.data<float>()(4)));
  test::check_values(find(t, "bf16"), {3}, {1, -0.5, 3.140625}, 0);
  // A state dict entry loads into the module's dtype: an I64 count into a float32 buffer.
  nn::BatchNorm1d bn(2);
  nn::StateDict sd = bn.state_dict();
  nn::StateDict in;
  for (const auto& [name, v] : sd) in.insert(name, name == "num_batches_tracked" ? find(t, "i32").slice(0, 0, 1).reshape({}) : v);
  bn.load_state_dict(in);
  CHECK(bn.num_batches_tracked.dtype() == kFloat32);
  CHECK(bn.num_batches_tracked.item() == 7.0);
}
