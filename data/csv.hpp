// data::read_csv: a numeric CSV file as a Float32 matrix.
#pragma once
#include <cstddef>
#include <string>

#include "../autograd/tensor.hpp"

namespace xgrad::data {

struct CsvOptions {
  std::size_t skip_rows = 0;  // lines skipped at the top (a header)
  char delimiter = ',';
};

// Reads every non-blank line after the first skip_rows as one row of numbers; returns a Float32
// tensor of shape {rows, columns}. Cells may be surrounded by spaces; "nan" and "inf" are read as
// such. A ragged row, a non-numeric or empty cell, a missing file or a file without data rows
// throws xgrad::Error naming the path and the line (and column).
Tensor read_csv(const std::string& path, CsvOptions options = {});

}  // namespace xgrad::data
