// safetensors reading and writing. The reader trusts nothing in the file: every size and offset is
// checked against the file's real size before a byte of tensor data is allocated or read.
#include "safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "detail/op_support.hpp"
#include "detail/safetensors_header.hpp"

namespace xgrad {

// The format stores little-endian data and we copy it byte for byte.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using json = nlohmann::ordered_json;

constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit

const char* format_dtype(Dtype d) { return d == kFloat32 ? "F32" : "F64"; }

// ---- Writing -------------------------------------------------------------------------------------

// Writes all of [data, data + n) to fd, retrying short writes.
bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t written = ::write(fd, data, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += written;
    n -= static_cast<std::size_t>(written);
  }
  return true;
}

const char* raw_bytes(const Tensor& t) {
  return detail::dispatch(t.dtype(), [&](auto tag) {
    return reinterpret_cast<const char*>(t.data<decltype(tag)>().data());
  });
}

std::string build_header(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::uint64_t bytes = t.numel() * itemsize(t.dtype());
    json entry = json::object();
    entry["dtype"] = format_dtype(t.dtype());
    entry["shape"] = t.shape();
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = std::move(entry);
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // e.g. a name that is not valid UTF-8
    detail::fail("save_safetensors: cannot encode the header: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // so the data starts 8-byte aligned
  return text;
}

void check_tensors(const std::string& path, const NamedTensors& tensors) {
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) detail::fail("save_safetensors('", path, "'): a tensor has an empty name");
    if (name == "__metadata__")
      detail::fail("save_safetensors('", path, "'): '__metadata__' is reserved and cannot name a tensor");
    if (!seen.insert(name).second) detail::fail("save_safetensors('", path, "'): duplicate tensor name '", name, "'");
    if (!t.defined()) detail::fail("save_safetensors('", path, "'): tensor '", name, "' is undefined");
  }
}

// ---- Reading -------------------------------------------------------------------------------------

// How a dtype of the file is read: F32 and F64 byte for byte; integers (PyTorch writes
// num_batches_tracked as I64) into float64, exact up to 2^53; half precision into float32, exactly.
enum class FileDtype { F32, F64, I64, I32, I16, I8, U8, BOOL, F16, BF16 };

struct FileDtypeInfo {
  const char* name;
  FileDtype file;
  Dtype dtype;  // the tensor it loads into
  std::size_t itemsize;
};

constexpr FileDtypeInfo kFileDtypes[] = {
    {"F32", FileDtype::F32, kFloat32, 4},  {"F64", FileDtype::F64, kFloat64, 8},  {"I64", FileDtype::I64, kFloat64, 8},
    {"I32", FileDtype::I32, kFloat64, 4},  {"I16", FileDtype::I16, kFloat32, 2},  {"I8", FileDtype::I8, kFloat32, 1},
    {"U8", FileDtype::U8, kFloat32, 1},    {"BOOL", FileDtype::BOOL, kFloat32, 1}, {"F16", FileDtype::F16, kFloat32, 2},
    {"BF16", FileDtype::BF16, kFloat32, 2},
};

struct EntryInfo {
  std::string name;
  Dtype dtype;
  Shape shape;
  std::uint64_t begin, end;
  FileDtype file = FileDtype::F32;
  std::size_t file_itemsize = 4;
};

// IEEE binary16 -> float (exact: every half is a float).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // ±0
  } else {
    // Subnormal: mant · 2^-24, exactly representable as a normal float.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(bits);
}

// The element at `p` of the file's dtype, as T.
template <class T>
T convert_element(FileDtype f, const unsigned char* p) {
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (f) {
    case FileDtype::F32: return static_cast<T>(load(float{}));
    case FileDtype::F64: return static_cast<T>(load(double{}));
    case FileDtype::I64: return static_cast<T>(load(std::int64_t{}));
    case FileDtype::I32: return static_cast<T>(load(std::int32_t{}));
    case FileDtype::I16: return static_cast<T>(load(std::int16_t{}));
    case FileDtype::I8: return static_cast<T>(load(std::int8_t{}));
    case FileDtype::U8: return static_cast<T>(load(std::uint8_t{}));
    case FileDtype::BOOL: return static_cast<T>(load(std::uint8_t{}) != 0);
    case FileDtype::F16: return static_cast<T>(half_to_float(load(std::uint16_t{})));
    case FileDtype::BF16: return static_cast<T>(std::bit_cast<float>(static_cast<std::uint32_t>(load(std::uint16_t{})) << 16));
  }
  return T(0);
}

std::uint64_t read_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Parses one tensor entry of the header; `where` prefixes every message.
EntryInfo parse_entry(const std::string& where, const std::string& name, const json& value) {
  const std::string at = where + "tensor '" + name + "': ";
  if (!value.is_object()) detail::fail(at, "entry must be a JSON object, got ", value.dump());
  const auto dtype_it = value.find("dtype");
  const auto shape_it = value.find("shape");
  const auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || shape_it == value.end() || offsets_it == value.end())
    detail::fail(at, "entry must have \"dtype\", \"shape\" and \"data_offsets\", got ", value.dump());

  EntryInfo info{name, kFloat32, {}, 0, 0};
  if (!dtype_it->is_string()) detail::fail(at, "\"dtype\" must be a string, got ", dtype_it->dump());
  const std::string dtype = dtype_it->get<std::string>();
  const FileDtypeInfo* known = nullptr;
  for (const FileDtypeInfo& d : kFileDtypes)
    if (dtype == d.name) known = &d;
  if (known == nullptr)
    detail::fail(at, "unsupported dtype \"", dtype, "\" (xgrad reads F32, F64, I64, I32, I16, I8, U8, BOOL, F16, BF16)");
  info.dtype = known->dtype;
  info.file = known->file;
  info.file_itemsize = known->itemsize;

  if (!shape_it->is_array()) detail::fail(at, "\"shape\" must be an array, got ", shape_it->dump());
  std::uint64_t numel = 1;
  // The product of the non-zero sizes (in bytes) is bounded even when another size is 0: a 0-element
  // tensor's strides are still products of its sizes and must fit a signed 64-bit integer.
  std::uint64_t nonzero_bytes = std::max<std::uint64_t>(itemsize(info.dtype), info.file_itemsize);
  for (std::size_t i = 0; i < shape_it->size(); ++i) {
    const json& dim = (*shape_it)[i];
    if (!dim.is_number_unsigned())
      detail::fail(at, "shape entry ", i, " must be a non-negative integer, got ", dim.dump());
    const auto size = dim.get<std::uint64_t>();
    const bool strides_overflow =
        size != 0 && (__builtin_mul_overflow(nonzero_bytes, size, &nonzero_bytes) ||
                      nonzero_bytes > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
    if (__builtin_mul_overflow(numel, size, &numel) || strides_overflow)
      detail::fail(at, "shape ", shape_it->dump(), " overflows");
    info.shape.push_back(static_cast<std::size_t>(size));
  }
  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(info.file_itemsize), &nbytes))
    detail::fail(at, "shape ", shape_it->dump(), " overflows");

  const json& offsets = *offsets_it;
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    detail::fail(at, "\"data_offsets\" must be two non-negative integers, got ", offsets.dump());
  info.begin = offsets[0].get<std::uint64_t>();
  info.end = offsets[1].get<std::uint64_t>();
  if (info.end < info.begin) detail::fail(at, "data_offsets [", info.begin, ", ", info.end, "] end before they begin");
  if (info.end - info.begin != nbytes)
    detail::fail(at, "data_offsets [", info.begin, ", ", info.end, "] span ", info.end - info.begin,
                 " bytes but dtype ", dtype, " and shape ", shape_it->dump(), " need ", nbytes);
  return info;
}

std::map<std::string, std::string> parse_metadata(const std::string& where, const json& value) {
  if (!value.is_object()) detail::fail(where, "\"__metadata__\" must be an object, got ", value.dump());
  std::map<std::string, std::string> out;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) detail::fail(where, "\"__metadata__\" value of '", key, "' must be a string, got ", v.dump());
    out[key] = v.get<std::string>();
  }
  return out;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  check_tensors(path, tensors);
  const std::string header = build_header(tensors, metadata);

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) detail::fail("save_safetensors: cannot create '", tmp, "': ", std::strerror(errno));
  auto give_up = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    detail::fail("save_safetensors: ", what, " '", tmp, "': ", std::strerror(err));
  };

  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(header.size() >> (8 * i));
  if (!write_all(fd, reinterpret_cast<const char*>(length), 8) || !write_all(fd, header.data(), header.size()))
    give_up("cannot write");
  for (const auto& [name, t] : tensors)
    if (!write_all(fd, raw_bytes(t), t.numel() * itemsize(t.dtype()))) give_up("cannot write");
  if (::fsync(fd) != 0) give_up("cannot flush");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    detail::fail("save_safetensors: cannot close '", tmp, "': ", std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    detail::fail("save_safetensors: cannot rename '", tmp, "' to '", path, "': ", std::strerror(err));
  }
}

std::string detail::safetensors_header(const NamedTensors& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  check_tensors("(header)", tensors);
  return build_header(tensors, metadata);
}

NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  const std::string where = "load_safetensors('" + path + "'): ";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) detail::fail(where, "cannot open the file: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) detail::fail(where, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail(where, "cannot open the file: ", std::strerror(errno));
  const auto file_size = static_cast<std::uint64_t>(st.st_size);

  // ---- Header length and header -----------------------------------------------------------------
  if (file_size < 8)
    detail::fail(where, "the file has ", file_size, " bytes, fewer than the 8-byte header length");
  unsigned char length_bytes[8];
  if (!in.read(reinterpret_cast<char*>(length_bytes), 8)) detail::fail(where, "cannot read the header length");
  const std::uint64_t header_size = read_u64_le(length_bytes);
  if (header_size > file_size - 8)
    detail::fail(where, "header length ", header_size, " (bytes 0-7) exceeds the ", file_size - 8,
                 " bytes that follow in the file");
  if (header_size > kMaxHeaderBytes)
    detail::fail(where, "header length ", header_size, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  std::string header_text(header_size, '\0');
  if (!in.read(header_text.data(), static_cast<std::streamsize>(header_size)))
    detail::fail(where, "cannot read the ", header_size, "-byte header");

  // Duplicate keys are silently merged by JSON parsers, so catch them while parsing.
  std::vector<std::string> duplicates;
  std::set<std::string> keys;
  json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && !keys.insert(parsed.get<std::string>()).second)
      duplicates.push_back(parsed.get<std::string>());
    return true;
  };
  json header;
  try {
    header = json::parse(header_text, on_event);
  } catch (const json::exception& e) {
    detail::fail(where, "the header (bytes 8-", 8 + header_size, ") is not valid JSON: ", e.what());
  }
  if (!header.is_object()) detail::fail(where, "the header must be a JSON object, got ", header.type_name());
  if (!duplicates.empty()) detail::fail(where, "duplicate name '", duplicates.front(), "' in the header");

  // ---- Entries: validated completely before any allocation ---------------------------------------
  const std::uint64_t data_size = file_size - 8 - header_size;
  std::vector<EntryInfo> entries;
  std::map<std::string, std::string> meta;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__")
      meta = parse_metadata(where, value);
    else
      entries.push_back(parse_entry(where, name, value));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const EntryInfo& a, const EntryInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const std::uint64_t data_start = 8 + header_size;
  std::uint64_t expected_begin = 0;
  const EntryInfo* previous = nullptr;
  for (const EntryInfo& e : entries) {
    if (e.end > data_size)
      detail::fail(where, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] (file bytes ",
                   data_start + e.begin, "-", data_start + e.end, ") reach past the end of the ", data_size,
                   "-byte data section (file size ", file_size, ")");
    if (e.begin != expected_begin) {
      if (previous == nullptr)
        detail::fail(where, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                     "] leave the first ", e.begin, " bytes of the data section unused (tensors must be packed from 0)");
      detail::fail(where, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                   e.begin < expected_begin ? "] overlap" : "] leave a gap after", " tensor '", previous->name,
                   "' at [", previous->begin, ", ", previous->end, "]");
    }
    expected_begin = e.end;
    previous = &e;
  }
  if (expected_begin != data_size)
    detail::fail(where, "the tensors cover ", expected_begin, " bytes but the data section (file bytes ", data_start,
                 "-", file_size, ") has ", data_size, ": ", data_size - expected_begin, " trailing bytes");

  // ---- Data --------------------------------------------------------------------------------------
  NamedTensors out;
  out.reserve(entries.size());
  for (const EntryInfo& e : entries) {
    Tensor t = detail::dispatch(e.dtype, [&](auto tag) {
      using T = decltype(tag);
      auto values = detail::empty_array<T>(e.shape);
      const auto nbytes = static_cast<std::streamsize>(e.end - e.begin);
      const bool same_bytes = (e.file == FileDtype::F32 && std::is_same_v<T, float>) ||
                              (e.file == FileDtype::F64 && std::is_same_v<T, double>);
      std::vector<unsigned char> raw(same_bytes ? 0 : static_cast<std::size_t>(nbytes));
      if (nbytes > 0) {
        in.seekg(static_cast<std::streamoff>(data_start + e.begin));
        char* dst = same_bytes ? reinterpret_cast<char*>(values.data()) : reinterpret_cast<char*>(raw.data());
        if (!in.read(dst, nbytes))
          detail::fail(where, "tensor '", e.name, "': cannot read file bytes ", data_start + e.begin, "-",
                       data_start + e.end);
      }
      if (!same_bytes) {
        T* out_values = values.data();
        for (std::size_t i = 0, n = values.size(); i < n; ++i)
          out_values[i] = convert_element<T>(e.file, raw.data() + i * e.file_itemsize);
      }
      return detail::make_tensor(std::move(values));
    });
    out.emplace_back(e.name, std::move(t));
  }
  if (metadata != nullptr) *metadata = std::move(meta);
  return out;
}

}  // namespace xgrad
