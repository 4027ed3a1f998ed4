// read_idx behind gzip: the fuzz input is the decompressed IDX content, gzipped here before it is
// written, so the fuzzer explores the IDX parser's gzip path (header claims, truncation, trailing
// bytes seen through zlib) without having to produce valid deflate streams itself. Corrupt gzip
// streams are covered by fuzz_idx.
#include <zlib.h>

#include <vector>

#include <xgrad.hpp>

#include "fuzz_input.hpp"

namespace {
std::vector<std::uint8_t> gzip(const std::uint8_t* data, std::size_t size) {
  z_stream zs{};
  // windowBits 15 + 16: a gzip wrapper rather than zlib's.
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::vector<std::uint8_t> out(deflateBound(&zs, size) + 32);
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static xgrad_fuzz::MemFile file;
  const std::vector<std::uint8_t> compressed = gzip(data, size);
  const std::string& path = file.write(compressed.data(), compressed.size());
  try {
    const xgrad::Tensor t = xgrad::data::read_idx(path);
    if (t.numel() > size) std::abort();  // every element comes from at least one input byte
  } catch (const xgrad::Error& e) {
    xgrad_fuzz::expect_named(e.what(), "read_idx");
  }
  return 0;
}
