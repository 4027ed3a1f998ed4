#include "csv.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <string_view>
#include <vector>

namespace xgrad::data {
namespace {

using xgrad::detail::fail;

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\v\f";
  const std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const std::size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// from_chars refuses a leading '+', which CSV writers sometimes emit.
bool parse_number(std::string_view cell, double& value) {
  if (!cell.empty() && cell.front() == '+') cell.remove_prefix(1);
  if (cell.empty()) return false;
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  // Out-of-range values are real numbers too large for double: keep from_chars's error.
  return ec == std::errc() && end == cell.data() + cell.size();
}

std::string printable(char c) {
  if (c == '\t') return "'\\t'";
  return std::string("'") + c + "'";
}

}  // namespace

Tensor read_csv(const std::string& path, CsvOptions options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("read_csv: cannot open '", path, "': ", std::strerror(errno));

  std::vector<float> values;
  std::size_t columns = 0;
  std::size_t first_data_line = 0;  // the line that fixed the column count
  std::size_t rows = 0;
  std::size_t line_number = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_number;
    if (line_number <= options.skip_rows) continue;
    const std::string_view content = trim(line);
    if (content.empty()) continue;  // blank lines (a trailing newline, spacing) carry no row

    std::size_t column = 0;
    std::size_t start = 0;
    while (true) {
      const std::size_t stop = content.find(options.delimiter, start);
      const std::string_view cell =
          trim(content.substr(start, stop == std::string_view::npos ? std::string_view::npos : stop - start));
      ++column;
      double v = 0;
      if (!parse_number(cell, v))
        fail("read_csv: '", path, "' line ", line_number, ", column ", column, ": cannot read '", cell,
             "' as a number", cell.empty() ? " (empty cell)" : "", " (delimiter ", printable(options.delimiter),
             ")");
      values.push_back(static_cast<float>(v));
      if (stop == std::string_view::npos) break;
      start = stop + 1;
    }
    if (rows == 0) {
      columns = column;
      first_data_line = line_number;
    } else if (column != columns) {
      fail("read_csv: '", path, "' line ", line_number, " has ", column, " columns, expected ", columns,
           " as on line ", first_data_line, " (delimiter ", printable(options.delimiter), ")");
    }
    ++rows;
  }
  if (in.bad()) fail("read_csv: error while reading '", path, "' after line ", line_number);
  if (rows == 0)
    fail("read_csv: '", path, "' has no data rows (", line_number, " lines, ", options.skip_rows, " skipped)");

  Tensor out = empty({rows, columns}, kFloat32);
  std::memcpy(out.data<float>().data(), values.data(), values.size() * sizeof(float));
  return out;
}

}  // namespace xgrad::data
