// data::load_fashion_mnist: Zalando's Fashion-MNIST (60000 training and 10000 test images of 28×28
// pixels in 10 classes), as installed by the Debian package dataset-fashion-mnist.
#pragma once
#include <string>

#include "dataset.hpp"

namespace xgrad::data {

struct Split {
  TensorDataset train;
  TensorDataset test;
};

// Images flattened to 784 values scaled to [0, 1] (pixel / 255), labels 0..9 as Float32 integral
// values (shape {n}). Reads train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz),
// t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) from `dir`. A missing file throws
// xgrad::Error naming the path and how to install the data.
struct FashionMnistOptions {
  bool flatten = true;  // images as n×784; false gives n×1×28×28 (for convolutional nets)
};
Split load_fashion_mnist(const std::string& dir = "/usr/share/datasets/fashion-mnist", FashionMnistOptions options = {});

}  // namespace xgrad::data
