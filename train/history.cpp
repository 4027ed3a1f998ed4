#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fit.hpp"

namespace xgrad {
namespace {

std::string cell(double v, const char* format) {
  if (std::isnan(v)) return {};  // a missing metric: an empty cell, read as NaN by pandas and gnuplot
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

std::string History::csv() const {
  std::string s = "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n";
  for (const EpochMetrics& m : *this) {
    s += std::to_string(m.epoch) + "," + cell(m.loss, "%.9g") + "," + cell(m.accuracy, "%.9g") + "," +
         cell(m.val_loss, "%.9g") + "," + cell(m.val_accuracy, "%.9g") + "," + cell(m.seconds, "%.4f") + "\n";
  }
  return s;
}

void History::to_csv(const std::string& path) const {
  // Write a sibling temporary file, then rename it over `path`: a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) detail::fail("History::to_csv: cannot write '", tmp, "'");
    out << csv();
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      detail::fail("History::to_csv: error while writing '", tmp, "'");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    detail::fail("History::to_csv: cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace xgrad
