// read_idx on arbitrary bytes, plain or gzipped (the seed corpus holds both kinds, so the fuzzer
// mutates real gzip streams too): either a Float32 tensor whose size fits the data, or an
// xgrad::Error naming read_idx.
#include <xgrad.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static xgrad_fuzz::MemFile file;
  const std::string& path = file.write(data, size);
  try {
    const xgrad::Tensor t = xgrad::data::read_idx(path);
    if (t.dtype() != xgrad::kFloat32 || t.dim() < 1) std::abort();
  } catch (const xgrad::Error& e) {
    xgrad_fuzz::expect_named(e.what(), "read_idx");
  }
  return 0;
}
