// read_csv on arbitrary text. The first byte picks the options (delimiter and skip_rows), the rest is
// the file: either a rows × columns Float32 tensor, or an xgrad::Error naming read_csv.
#include <xgrad.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static xgrad_fuzz::MemFile file;
  static const char kDelimiters[] = {',', ';', '\t', ' ', '|', ':', 'e', '\n'};
  xgrad::data::CsvOptions options;
  options.delimiter = kDelimiters[data[0] & 7];
  options.skip_rows = (data[0] >> 3) & 3;
  const std::string& path = file.write(data + 1, size - 1);
  try {
    const xgrad::Tensor t = xgrad::data::read_csv(path, options);
    if (t.dim() != 2 || t.numel() == 0 || t.numel() > size) std::abort();
  } catch (const xgrad::Error& e) {
    xgrad_fuzz::expect_named(e.what(), "read_csv");
  }
  return 0;
}
