// load_safetensors on arbitrary bytes: either a valid result whose tensors match the header, or an
// xgrad::Error naming load_safetensors.
#include <xgrad.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static xgrad_fuzz::MemFile file;
  const std::string& path = file.write(data, size);
  try {
    std::map<std::string, std::string> metadata;
    const xgrad::NamedTensors tensors = xgrad::load_safetensors(path, &metadata);
    std::size_t bytes = 0;
    for (const auto& [name, t] : tensors) bytes += t.numel() * xgrad::itemsize(t.dtype());
    if (bytes > size) std::abort();  // the tensors cannot hold more data than the file has
  } catch (const xgrad::Error& e) {
    xgrad_fuzz::expect_named(e.what(), "load_safetensors");
  }
  return 0;
}
