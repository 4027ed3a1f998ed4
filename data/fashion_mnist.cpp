#include "fashion_mnist.hpp"

#include <filesystem>

#include "../autograd/ops.hpp"
#include "idx.hpp"

namespace xgrad::data {
namespace {

namespace fs = std::filesystem;
using xgrad::detail::fail;

// The gzipped file as distributed, or an already decompressed copy.
std::string find_file(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem}) {
    const fs::path p = dir / name;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  fail("load_fashion_mnist: missing file '", (dir / (stem + ".gz")).string(),
       "' (nor an uncompressed copy). Install the dataset with `apt-get install dataset-fashion-mnist` "
       "(Debian/Ubuntu; it lands in /usr/share/datasets/fashion-mnist), or pass the directory holding the four "
       "Fashion-MNIST IDX files");
}

Tensor load_images(const fs::path& dir, const std::string& stem, bool flatten) {
  const std::string path = find_file(dir, stem);
  Tensor images = read_idx(path);
  const Shape s = images.shape();
  if (s.size() != 3 || s[1] != 28 || s[2] != 28)
    fail("load_fashion_mnist: '", path, "' holds shape ", shape_str(s), ", expected [n, 28, 28] images");
  // Scale in place (the tensor is ours) and flatten to 784 features per image (or n×1×28×28).
  float* p = images.data<float>().data();
  const std::size_t n = images.numel();
  for (std::size_t i = 0; i < n; ++i) p[i] /= 255.f;  // exactly x / 255, as torchvision's ToTensor
  // Reshape the value in place: the op would copy 188 MB for nothing (no history to keep here).
  if (flatten)
    images.data<float>().reshape({s[0], std::size_t{784}});
  else
    images.data<float>().reshape({s[0], std::size_t{1}, std::size_t{28}, std::size_t{28}});
  return images;
}

Tensor load_labels(const fs::path& dir, const std::string& stem, std::size_t expected) {
  const std::string path = find_file(dir, stem);
  Tensor labels = read_idx(path);
  if (labels.dim() != 1 || labels.shape()[0] != expected)
    fail("load_fashion_mnist: '", path, "' holds shape ", shape_str(labels.shape()), ", expected [", expected,
         "] labels to match the images");
  const float* p = labels.data<float>().data();
  for (std::size_t i = 0; i < expected; ++i)
    if (!(p[i] >= 0.f && p[i] <= 9.f))
      fail("load_fashion_mnist: '", path, "' holds label ", p[i], " at index ", i, ", expected 0..9");
  return labels;
}

TensorDataset load_part(const fs::path& dir, const std::string& prefix, bool flatten) {
  Tensor images = load_images(dir, prefix + "-images-idx3-ubyte", flatten);
  Tensor labels = load_labels(dir, prefix + "-labels-idx1-ubyte", images.shape()[0]);
  return TensorDataset(images, labels);
}

}  // namespace

Split load_fashion_mnist(const std::string& dir, FashionMnistOptions options) {
  return Split{load_part(dir, "train", options.flatten), load_part(dir, "t10k", options.flatten)};
}

}  // namespace xgrad::data
