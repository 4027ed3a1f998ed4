#include <doctest/doctest.h>

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <xgrad.hpp>
#include "data/data.hpp"

using namespace xgrad;
namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

namespace {

// The files the tests write live in one directory per process, removed at exit.
struct TempDirCleanup {
  ~TempDirCleanup() {
    std::error_code ignored;
    fs::remove_all(fs::temp_directory_path() / ("xgrad_test_idx_" + std::to_string(::getpid())), ignored);
  }
} temp_dir_cleanup;

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("xgrad_test_idx_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string write_plain(const std::string& name, const Bytes& bytes) {
  const std::string path = temp_path(name);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string write_gz(const std::string& name, const Bytes& bytes) {
  const std::string path = temp_path(name);
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!bytes.empty()) REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == int(bytes.size()));
  gzclose(f);
  return path;
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A 2×3 uint8 IDX file: magic 00 00 08 02, dims 2 and 3 big-endian, then 0 1 2 253 254 255.
const Bytes kUbyte2x3 = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 253, 254, 255};

void check_2x3(const Tensor& t) {
  CHECK(t.dtype() == kFloat32);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.data<float>() == xt::xarray<float>{{0, 1, 2}, {253, 254, 255}});
}

}  // namespace

TEST_CASE("data: read_idx reads uint8, plain and gzipped") {
  check_2x3(data::read_idx(write_plain("u8.idx", kUbyte2x3)));
  check_2x3(data::read_idx(write_gz("u8.idx.gz", kUbyte2x3)));
  // A 1-D file of 4 values: dims {4}.
  const Tensor v = data::read_idx(write_gz("u8_1d.gz", {0, 0, 8, 1, 0, 0, 0, 4, 9, 0, 3, 7}));
  CHECK(v.shape() == Shape{4});
  CHECK(v.data<float>() == xt::xarray<float>{9, 0, 3, 7});
}

TEST_CASE("data: read_idx decodes the big-endian types") {
  // int8: 0xFF = -1, 0x7F = 127, 0x80 = -128.
  CHECK(data::read_idx(write_plain("i8", {0, 0, 0x09, 1, 0, 0, 0, 3, 0xFF, 0x7F, 0x80})).data<float>() ==
        xt::xarray<float>{-1, 127, -128});
  // int16: FF FE = -2, 01 00 = 256.
  CHECK(data::read_idx(write_plain("i16", {0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01, 0x00})).data<float>() ==
        xt::xarray<float>{-2, 256});
  // int32: 00 01 00 00 = 65536, FF FF FF FF = -1.
  CHECK(data::read_idx(write_plain("i32", {0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}))
            .data<float>() == xt::xarray<float>{65536, -1});
  // float32: 3F C0 00 00 = 1.5 (sign 0, exponent 127, mantissa .1b); C0 20 00 00 = -2.5.
  CHECK(data::read_idx(write_gz("f32", {0, 0, 0x0D, 1, 0, 0, 0, 2, 0x3F, 0xC0, 0, 0, 0xC0, 0x20, 0, 0})).data<float>() ==
        xt::xarray<float>{1.5f, -2.5f});
  // float64: BF D0 00.. = -0.25 (sign 1, exponent 1021 = 0x3FD).
  CHECK(data::read_idx(write_plain("f64", {0, 0, 0x0E, 1, 0, 0, 0, 1, 0xBF, 0xD0, 0, 0, 0, 0, 0, 0})).data<float>() ==
        xt::xarray<float>{-0.25f});
  // A 3-D file keeps its three dims: 2×1×2 of uint8.
  CHECK(data::read_idx(write_plain("u8_3d", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4})).shape() ==
        Shape{2, 1, 2});
}

TEST_CASE("data: read_idx rejects malformed files with the offset") {
  CHECK_THROWS_WITH_AS(data::read_idx(temp_path("does_not_exist.idx")), doctest::Contains("cannot open"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("empty", {})), doctest::Contains("4-byte magic"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(fs::temp_directory_path().string()), doctest::Contains("is a directory"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("magic", {1, 0, 8, 1, 0, 0, 0, 1, 5})),
                       doctest::Contains("bad magic at byte offset 0"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("type", {0, 0, 7, 1, 0, 0, 0, 1, 5})),
                       doctest::Contains("type code 0x7 at byte offset 2"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("ndim0", {0, 0, 8, 0})),
                       doctest::Contains("0 dimensions at byte offset 3"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("ndim9", {0, 0, 8, 9})),
                       doctest::Contains("9 dimensions at byte offset 3"), Error);
  // Header of 2 dims needs 12 bytes; the file stops after 7.
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("short_header", {0, 0, 8, 2, 0, 0, 0})),
                       doctest::Contains("ends at byte offset 7 inside the header"), Error);
  // dims {4} of uint8 need 4 bytes after the 8-byte header; only 3 are there: the file ends at 11.
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("truncated", {0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3})),
                       doctest::Contains("ends at byte offset 11"), Error);
  // dims {2}: data ends at offset 10, one byte too many follows.
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("trailing", {0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3})),
                       doctest::Contains("1 trailing bytes from byte offset 10"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_gz("trailing.gz", {0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3})),
                       doctest::Contains("trailing bytes from byte offset 10"), Error);
  // Four dims of 2^32 - 1: the element count overflows 64 bits.
  const Bytes huge4 = {0, 0, 8, 4, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                       0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("overflow", huge4)), doctest::Contains("overflow"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_gz("overflow.gz", huge4)), doctest::Contains("overflow"), Error);
}

TEST_CASE("data: read_idx never allocates what a lying header claims") {
  // 65536 × 65536 uint8 = 4 GiB claimed by a 14-byte file. Reading would need 16 GiB of float32: the
  // size check must refuse it first (an attempted allocation would throw std::bad_alloc, not Error).
  const Bytes claim_4g = {0, 0, 8, 2, 0, 1, 0, 0, 0, 1, 0, 0, 1, 2};
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("claim.idx", claim_4g)), doctest::Contains("truncated"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_gz("claim.idx.gz", claim_4g)), doctest::Contains("limit"), Error);
  // 16384 × 16384 = 256 MiB, under the gzip limit, with 2 bytes of data: reading stops at the real
  // end of the stream and reports the offset where the data ends (12 + 2).
  const Bytes claim_256m = {0, 0, 8, 2, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 1, 2};
  CHECK_THROWS_WITH_AS(data::read_idx(write_gz("claim256.gz", claim_256m)),
                       doctest::Contains("data ends at byte offset 14"), Error);
}

TEST_CASE("data: read_idx detects a cut gzip stream") {
  // 2000 values so the compressed stream is long enough to cut in the middle of the deflate data.
  Bytes file = {0, 0, 8, 1, 0, 0, 0x07, 0xD0};
  for (int i = 0; i < 2000; ++i) file.push_back(static_cast<unsigned char>((i * 37) % 251));
  const std::string whole = write_gz("whole.gz", file);
  CHECK(data::read_idx(whole).shape() == Shape{2000});
  Bytes compressed = read_bytes(whole);
  REQUIRE(compressed.size() > 40);
  // Cut in the deflate data; then cut the whole 8-byte trailer (CRC-32 and length) away, and only its
  // last 4 bytes (the length), so every deflate byte is there and only the trailer tells the cut.
  const Bytes half(compressed.begin(), compressed.begin() + static_cast<std::ptrdiff_t>(compressed.size() / 2));
  const Bytes no_trailer(compressed.begin(), compressed.end() - 8);
  const Bytes half_trailer(compressed.begin(), compressed.end() - 4);
  CHECK_THROWS_AS(data::read_idx(write_plain("half.gz", half)), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("no_trailer.gz", no_trailer)), doctest::Contains("gzip"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("half_trailer.gz", half_trailer)), doctest::Contains("gzip"), Error);
  // A second gzip member appended to the file decompresses to bytes after the data: trailing data.
  CHECK_THROWS_WITH_AS(data::read_idx(write_plain("two_members.gz", concat(compressed, read_bytes(write_gz("x.gz", {7}))))),
                       doctest::Contains("trailing"), Error);
}
