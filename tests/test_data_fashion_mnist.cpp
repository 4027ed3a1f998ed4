#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>

#include <xgrad.hpp>
#include "data/data.hpp"

using namespace xgrad;

// Where the Debian package dataset-fashion-mnist installs the data (load_fashion_mnist's default).
const char* const kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

TEST_CASE("data: load_fashion_mnist shapes, pixel range and labels") {
  // Reads ~30 MB of gzipped IDX from the Debian package dataset-fashion-mnist. Without it this test
  // fails (a missing dataset must not pass silently), and says what to install first.
  std::error_code ec;
  REQUIRE_MESSAGE(std::filesystem::is_directory(kFashionMnistDir, ec),
                  "Fashion-MNIST is not installed: ", kFashionMnistDir,
                  " is missing. Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu)");
  const data::Split split = data::load_fashion_mnist(kFashionMnistDir);
  CHECK(split.train.inputs().shape() == Shape{60000, 784});
  CHECK(split.test.inputs().shape() == Shape{10000, 784});
  CHECK(split.train.targets().shape() == Shape{60000});
  CHECK(split.test.targets().shape() == Shape{10000});
  CHECK(split.train.inputs().dtype() == kFloat32);

  for (const data::TensorDataset* ds : {&split.train, &split.test}) {
    const auto& x = ds->inputs().data<float>();
    const auto [lo, hi] = std::minmax_element(x.data(), x.data() + x.size());
    // Pixels are bytes 0..255 scaled by 1/255, and both extremes occur in the data.
    CHECK(*lo == 0.f);
    CHECK(*hi == 1.f);
    // Every value is k / 255 for an integer k.
    bool on_grid = true;
    for (std::size_t i = 0; i < x.size(); i += 997) on_grid &= std::abs(x.data()[i] * 255.f - std::round(x.data()[i] * 255.f)) < 1e-3f;
    CHECK(on_grid);

    // Labels 0..9, integral; the dataset is balanced: 6000 per class in train, 1000 in test.
    std::array<std::size_t, 10> counts{};
    const auto& y = ds->targets().data<float>();
    bool integral = true;
    for (float v : y) {
      integral &= v >= 0.f && v <= 9.f && v == std::floor(v);
      if (integral) ++counts[static_cast<std::size_t>(v)];
    }
    CHECK(integral);
    for (std::size_t c : counts) CHECK(c == ds->size() / 10);
  }
  // The first training labels are 9, 0, 0, 3, 0 (ankle boot, T-shirt, T-shirt, dress, T-shirt), as an
  // independent Python gzip read of the label file shows.
  const auto& y = split.train.targets().data<float>();
  CHECK(y(0) == 9.f);
  CHECK(y(1) == 0.f);
  CHECK(y(3) == 3.f);
}

TEST_CASE("data: load_fashion_mnist names the missing file and the package") {
  CHECK_THROWS_WITH_AS(data::load_fashion_mnist("/nonexistent/xgrad-fmnist"),
                       doctest::Contains("/nonexistent/xgrad-fmnist/train-images-idx3-ubyte.gz"), Error);
  CHECK_THROWS_WITH_AS(data::load_fashion_mnist("/nonexistent/xgrad-fmnist"),
                       doctest::Contains("apt-get install dataset-fashion-mnist"), Error);
}
