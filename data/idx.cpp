#include "idx.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <vector>

namespace xgrad::data {
namespace {

using xgrad::detail::fail;

constexpr std::size_t kMaxDims = 8;
// A gzipped file does not tell its decompressed size up front: refuse claims beyond this before
// reading, and never allocate more than what actually decompresses.
constexpr std::uint64_t kMaxGzipPayload = std::uint64_t{1} << 30;  // 1 GiB

// A byte stream over a plain file or, through zlib, a gzipped one.
class ByteSource {
 public:
  ByteSource(const std::string& path) : path_(path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) fail("read_idx: '", path, "' is a directory, not an IDX file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail("read_idx: cannot open '", path, "': ", std::strerror(errno));
    unsigned char magic[2] = {0, 0};
    const std::size_t got = std::fread(magic, 1, 2, f);
    gzipped_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (!gzipped_) {
      std::rewind(f);
      file_ = f;
      return;
    }
    std::fclose(f);
    gz_ = gzopen(path.c_str(), "rb");
    if (!gz_) fail("read_idx: cannot open '", path, "' for gzip decompression");
    gzbuffer(gz_, 1 << 17);
  }
  ~ByteSource() {
    if (file_) std::fclose(file_);
    if (gz_) gzclose(gz_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  bool gzipped() const noexcept { return gzipped_; }
  const char* where() const noexcept { return gzipped_ ? " of the decompressed data" : ""; }

  // Reads up to n bytes; fewer only at the end of the stream. Corrupt gzip data throws.
  std::size_t read(unsigned char* out, std::size_t n) {
    if (!gzipped_) return std::fread(out, 1, n, file_);
    std::size_t total = 0;
    while (total < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - total, 1u << 30));
      const int got = gzread(gz_, out + total, chunk);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(gz_, &code);
        fail("read_idx: '", path_, "': corrupt gzip stream after ", offset_ + total,
             " decompressed bytes: ", msg ? msg : "unknown zlib error");
      }
      if (got == 0) {
        // gzread returns 0 both at a clean end and when the compressed stream is cut short; zlib
        // reports the latter as Z_BUF_ERROR ("unexpected end of file").
        int code = 0;
        const char* msg = gzerror(gz_, &code);
        if (code != Z_OK)
          fail("read_idx: '", path_, "': truncated or corrupt gzip stream after ", offset_ + total,
               " decompressed bytes: ", msg);
        break;
      }
      total += static_cast<std::size_t>(got);
    }
    offset_ += total;
    return total;
  }

  // After the last byte: a gzip stream cut inside its trailer (CRC, length) reads as a clean end
  // of data but leaves zlib's "unexpected end of file".
  void check_complete_stream() {
    if (!gzipped_) return;
    int code = Z_OK;
    const char* msg = gzerror(gz_, &code);
    if (code != Z_OK)
      fail("read_idx: '", path_, "': truncated or corrupt gzip stream after ", offset_, " decompressed bytes: ", msg);
  }

  std::uint64_t file_size() const { return std::filesystem::file_size(path_); }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  gzFile gz_ = nullptr;
  bool gzipped_ = false;
  std::uint64_t offset_ = 0;
};

struct IdxType {
  unsigned char code;
  std::size_t size;
  const char* name;
};
constexpr IdxType kTypes[] = {{0x08, 1, "uint8"},  {0x09, 1, "int8"},    {0x0B, 2, "int16"},
                              {0x0C, 4, "int32"},  {0x0D, 4, "float32"}, {0x0E, 8, "float64"}};

const IdxType* find_type(unsigned char code) {
  for (const IdxType& t : kTypes)
    if (t.code == code) return &t;
  return nullptr;
}

std::uint64_t big_endian(const unsigned char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// Converts n big-endian values of one IDX type to float, one pass, no per-element dispatch.
void convert(const IdxType& type, const unsigned char* in, float* out, std::size_t n) {
  switch (type.code) {
    case 0x08:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]);
      break;
    case 0x09:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<std::int8_t>(in[i]));
      break;
    case 0x0B:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(static_cast<std::int16_t>(static_cast<std::uint16_t>(big_endian(in + 2 * i, 2))));
      break;
    case 0x0C:
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(static_cast<std::int32_t>(static_cast<std::uint32_t>(big_endian(in + 4 * i, 4))));
      break;
    case 0x0D:
      for (std::size_t i = 0; i < n; ++i) {
        const auto bits = static_cast<std::uint32_t>(big_endian(in + 4 * i, 4));
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    case 0x0E:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t bits = big_endian(in + 8 * i, 8);
        double d;
        std::memcpy(&d, &bits, 8);
        out[i] = static_cast<float>(d);
      }
      break;
  }
}

std::string dims_str(const Shape& dims) { return shape_str(dims); }

}  // namespace

Tensor read_idx(const std::string& path) {
  ByteSource src(path);
  const char* where = src.where();

  // ---- Header: magic, then ndim big-endian uint32 dimensions.
  unsigned char magic[4];
  const std::size_t got_magic = src.read(magic, 4);
  if (got_magic < 4)
    fail("read_idx: '", path, "': file ends at byte offset ", got_magic, where,
         " inside the 4-byte magic number (not an IDX file)");
  if (magic[0] != 0 || magic[1] != 0)
    fail("read_idx: '", path, "': bad magic at byte offset 0", where, ": first two bytes are ", int(magic[0]), " ",
         int(magic[1]), ", expected 0 0 (not an IDX file)");
  const IdxType* type = find_type(magic[2]);
  if (!type)
    fail("read_idx: '", path, "': unknown IDX type code 0x", std::hex, int(magic[2]), std::dec, " at byte offset 2",
         where, " (known: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)");
  const std::size_t ndim = magic[3];
  if (ndim == 0 || ndim > kMaxDims)
    fail("read_idx: '", path, "': ", ndim, " dimensions at byte offset 3", where, ", expected 1 to ", kMaxDims);

  unsigned char dim_bytes[4 * kMaxDims];
  const std::size_t header = 4 + 4 * ndim;
  const std::size_t got_dims = src.read(dim_bytes, 4 * ndim);
  if (got_dims < 4 * ndim)
    fail("read_idx: '", path, "': file ends at byte offset ", 4 + got_dims, where, " inside the header of ", ndim,
         " dimensions (", header, " bytes)");

  // ---- Size: bounded and checked against the payload before anything is allocated.
  Shape dims(ndim);
  // The product of the non-zero sizes is bounded even when another size is 0: a 0-element tensor's
  // strides are still products of its sizes.
  std::uint64_t nonzero = 1;
  bool overflow = false, has_zero = false;
  for (std::size_t d = 0; d < ndim; ++d) {
    dims[d] = static_cast<std::size_t>(big_endian(dim_bytes + 4 * d, 4));
    if (dims[d] == 0) has_zero = true;
    else if (nonzero > std::numeric_limits<std::uint64_t>::max() / 8 / dims[d]) overflow = true;
    else nonzero *= dims[d];
  }
  const std::uint64_t count = has_zero ? 0 : nonzero;
  if (overflow)
    fail("read_idx: '", path, "': dimensions ", dims_str(dims), " (byte offsets 4 to ", header - 1, where,
         ") overflow a 64-bit size");
  const std::uint64_t payload = count * type->size;

  if (!src.gzipped()) {
    const std::uint64_t file_size = src.file_size();
    const std::uint64_t available = file_size - header;
    if (available < payload)
      fail("read_idx: '", path, "': truncated: dimensions ", dims_str(dims), " of ", type->name, " need ", payload,
           " bytes of data from byte offset ", header, ", but the file ends at byte offset ", file_size);
    if (available > payload)
      fail("read_idx: '", path, "': ", available - payload, " trailing bytes from byte offset ", header + payload,
           " after the data of dimensions ", dims_str(dims), " of ", type->name, " (file size ", file_size, ")");
  } else if (payload > kMaxGzipPayload) {
    fail("read_idx: '", path, "': dimensions ", dims_str(dims), " of ", type->name, " claim ", payload,
         " bytes of data, more than the ", kMaxGzipPayload, "-byte limit for gzipped files");
  }

  // ---- Payload. Read in chunks so a gzipped file whose header lies about its size costs only
  // what actually decompresses.
  std::vector<unsigned char> raw;
  constexpr std::size_t kChunk = std::size_t{1} << 22;
  while (raw.size() < payload) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, payload - raw.size()));
    const std::size_t old = raw.size();
    raw.resize(old + want);
    const std::size_t got = src.read(raw.data() + old, want);
    raw.resize(old + got);
    if (got < want)
      fail("read_idx: '", path, "': truncated: dimensions ", dims_str(dims), " of ", type->name, " need ", payload,
           " bytes of data from byte offset ", header, where, ", but the data ends at byte offset ",
           header + raw.size(), where);
  }
  unsigned char extra;
  if (src.read(&extra, 1) != 0)
    fail("read_idx: '", path, "': trailing bytes from byte offset ", header + payload, where,
         " after the data of dimensions ", dims_str(dims), " of ", type->name);
  src.check_complete_stream();

  Tensor out = empty(dims, kFloat32);
  convert(*type, raw.data(), out.data<float>().data(), static_cast<std::size_t>(count));
  return out;
}

}  // namespace xgrad::data
