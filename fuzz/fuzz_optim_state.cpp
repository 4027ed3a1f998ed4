// Optimizer::load on arbitrary bytes, for each optimizer kind (the first byte picks SGD with
// momentum, Adam with amsgrad, AdamW or RMSprop with momentum; the rest is the file). A load either
// succeeds — and a following step() must then work — or throws an xgrad::Error and leaves the
// optimizer exactly as it was (its state dict compared bitwise before and after).
#include <cstring>
#include <memory>

#include <xgrad.hpp>

#include "fuzz_input.hpp"

namespace {

using namespace xgrad;

std::unique_ptr<optim::Optimizer> make_optimizer(int kind, const std::vector<Tensor>& params) {
  switch (kind & 3) {
    case 0: return std::make_unique<optim::SGD>(params, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
    case 1: return std::make_unique<optim::Adam>(params, optim::AdamOptions{.lr = 0.01, .amsgrad = true});
    case 2: return std::make_unique<optim::AdamW>(params, optim::AdamWOptions{.lr = 0.01});
    default: return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions{.lr = 0.01, .momentum = 0.5});
  }
}

bool same_bits(const optim::StateDict& a, const optim::StateDict& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Tensor& x = a[i].second;
    const Tensor& y = b[i].second;
    if (a[i].first != b[i].first || x.dtype() != y.dtype() || x.shape() != y.shape()) return false;
    const std::size_t bytes = x.numel() * itemsize(x.dtype());
    const void* px = x.dtype() == kFloat32 ? static_cast<const void*>(x.data<float>().data()) : x.data<double>().data();
    const void* py = y.dtype() == kFloat32 ? static_cast<const void*>(y.data<float>().data()) : y.data<double>().data();
    if (bytes && std::memcmp(px, py, bytes) != 0) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static xgrad_fuzz::MemFile file;
  // The parameters of the seed corpus's model: a 3×2 weight (float32), a 3-bias (float32) and a
  // float64 scalar.
  std::vector<Tensor> params{ones({3, 2}).requires_grad_(), zeros({3}).requires_grad_(),
                             tensor(0.5, kFloat64).requires_grad_()};
  auto opt = make_optimizer(data[0], params);
  // One real step first, so that a failed load has state to (not) disturb.
  for (Tensor& p : params) p.set_grad(ones_like(p));
  opt->step();
  const optim::StateDict before = opt->state_dict();
  const double lr_before = opt->lr();
  const std::string& path = file.write(data + 1, size - 1);
  try {
    opt->load(path);
  } catch (const Error& e) {
    xgrad_fuzz::expect_named(e.what(), "load");
    if (!same_bits(before, opt->state_dict()) || opt->lr() != lr_before) {
      std::fprintf(stderr, "a failed load changed the optimizer: %s\n", e.what());
      std::abort();
    }
    return 0;
  }
  // Loaded state must be usable: step() validates and updates without crashing (values may be
  // anything the file said, NaN included).
  opt->step();
  return 0;
}
