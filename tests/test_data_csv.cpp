#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <xgrad.hpp>
#include "data/data.hpp"

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

// The files the tests write live in one directory per process, removed at exit.
struct TempDirCleanup {
  ~TempDirCleanup() {
    std::error_code ignored;
    fs::remove_all(fs::temp_directory_path() / ("xgrad_test_csv_" + std::to_string(::getpid())), ignored);
  }
} temp_dir_cleanup;

std::string write_text(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / ("xgrad_test_csv_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace

TEST_CASE("data: read_csv reads numbers, skips the header and blank lines") {
  // Spaces around cells, a '+' sign, exponents, CRLF endings and a trailing blank line are all fine.
  const std::string path = write_text("good.csv", "a,b,c\r\n1,2,3\r\n 4.5 , -6,+7e-1\r\n\r\n");
  Tensor t = data::read_csv(path, {.skip_rows = 1});
  CHECK(t.dtype() == kFloat32);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.data<float>() == xt::xarray<float>{{1, 2, 3}, {4.5f, -6, 0.7f}});

  // Another delimiter; skip_rows counts lines, blank ones included.
  Tensor s = data::read_csv(write_text("semi.csv", "# comment\n\n1;2\n3;4\n"), {.skip_rows = 2, .delimiter = ';'});
  CHECK(s.data<float>() == xt::xarray<float>{{1, 2}, {3, 4}});
  // One column, no header.
  CHECK(data::read_csv(write_text("col.csv", "5\n6\n7")).shape() == Shape{3, 1});
}

TEST_CASE("data: read_csv errors name the line and column") {
  // Line 1 is the header, line 2 has 3 columns, line 4 only 2.
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("ragged.csv", "x,y,z\n1,2,3\n4,5,6\n7,8\n"), {.skip_rows = 1}),
                       doctest::Contains("line 4 has 2 columns, expected 3 as on line 2"), Error);
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("wide.csv", "1,2\n3,4,5\n")),
                       doctest::Contains("line 2 has 3 columns"), Error);
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("word.csv", "1,2\n3,abc\n")),
                       doctest::Contains("line 2, column 2: cannot read 'abc' as a number"), Error);
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("partial.csv", "1,2.5x\n")),
                       doctest::Contains("line 1, column 2: cannot read '2.5x'"), Error);
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("hole.csv", "1,,3\n")), doctest::Contains("column 2"), Error);
  // The header was not skipped: its first cell is not a number.
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("header.csv", "a,b\n1,2\n")),
                       doctest::Contains("line 1, column 1: cannot read 'a'"), Error);
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("only_header.csv", "a,b\n"), {.skip_rows = 1}),
                       doctest::Contains("no data rows"), Error);
  CHECK_THROWS_WITH_AS(data::read_csv("/nonexistent/xgrad/none.csv"), doctest::Contains("cannot open"), Error);
}

TEST_CASE("data: read_csv reads nan and inf in any case, with a sign and spaces") {
  // from_chars's spellings: nan, inf and infinity, case-insensitive; '-' gives -inf, a leading '+' is dropped.
  const std::string path = write_text("special.csv", "nan,inf,-inf\nNaN, +Infinity ,INF\n-nan,-INFINITY,1.5\n");
  const Tensor t = data::read_csv(path);
  REQUIRE(t.shape() == Shape{3, 3});
  const auto& v = t.data<float>();
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(std::isnan(v(0, 0)));
  CHECK(v(0, 1) == inf);
  CHECK(v(0, 2) == -inf);
  CHECK(std::isnan(v(1, 0)));
  CHECK(v(1, 1) == inf);
  CHECK(v(1, 2) == inf);
  CHECK(std::isnan(v(2, 0)));
  CHECK(v(2, 1) == -inf);
  CHECK(v(2, 2) == 1.5f);
  // Not a spelling of either: an error naming the cell, not a silent NaN.
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("nanx.csv", "1,nanx\n")),
                       doctest::Contains("line 1, column 2: cannot read 'nanx'"), Error);
  CHECK_THROWS_WITH_AS(data::read_csv(write_text("infin.csv", "infin,1\n")),
                       doctest::Contains("line 1, column 1: cannot read 'infin'"), Error);
}
