// Trajectories checked against PyTorch's own, bit for bit: reference values written as hex floats,
// for float32 and float64 parameters of 19 elements (a SIMD body plus a scalar tail), 10 steps.
//
// SGD (plain and Nesterov) and RMSprop: produced by torch.optim (torch 1.13, CPU, foreach=False) with
// the script below.
//
// Adam and AdamW follow PyTorch >= 2.0, whose single-tensor update computes the first moment as
// exp_avg.lerp_(g, 1 - b1); torch 1.13 (the Debian 12 package, the only torch here) computes it as
// exp_avg.mul_(b1).add_(g, alpha=1 - b1), which rounds differently. So their exact references come
// from a LibTorch 1.13 C++ program (not part of the build) that runs PyTorch 2.0's
// _single_tensor_adam line by line with torch 1.13's CPU tensor ops, on the same inputs:
//   AdamW only: p.mul_(1 - lr * wd);  Adam only: g = g.add(p, wd)
//   exp_avg.lerp_(g, 1 - b1);  exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
//   bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step) (double);  step_size = lr / bc1
//   amsgrad: torch::maximum_out(max_sq, max_sq, exp_avg_sq), denom = (max_sq.sqrt() / sqrt(bc2)).add_(eps)
//   else:    denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)
//   p.addcdiv_(exp_avg, denom, -step_size)
// The same program with the first moment written as torch 1.13 writes it reproduces torch.optim's 1.13
// trajectories (kTorch113Adam below) exactly, which checks the program. Against those, xgrad's Adam
// differs by at most 16 ulps (measured: float32 Adam 16, AdamW 5; float64 Adam 14, AdamW 8), and the
// second test bounds that difference.
//
// The generating script for the torch.optim values (python3 with torch 1.13):
//   p = torch.tensor([((i % 5) - 2) * 0.3 for i in range(19)], dtype=torch.float64).to(dtype).requires_grad_()
//   opt = <the optimizer below>(..., foreach=False)
//   for t in range(10):
//       p.grad = torch.tensor([(((i*7 + t*3) % 11) - 5) / 4.0 for i in range(19)], dtype=torch.float64).to(dtype)
//       opt.step()
//   print([float(v).hex() for v in p.detach().double()])
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xgrad.hpp>

using namespace xgrad;

namespace {

struct Reference {
  const char* optimizer;
  Dtype dtype;
  std::vector<double> expected;
};

const std::vector<Reference> kReferences = {
    {"sgd", kFloat32, {-0x1.04c3640000000p-2, -0x1.0e9bfa0000000p-1, -0x1.a5ebd20000000p-4, 0x1.b10c4e0000000p-3, 0x1.4826540000000p-2, -0x1.c258c60000000p-3, -0x1.ef4c0c0000000p-2, 0x1.46f2780000000p-4, 0x1.f786e00000000p-2, 0x1.45a7fa0000000p-1, -0x1.7a0fb80000000p-1, 0x1.451d8c0000000p-5, -0x1.dfa1b40000000p-3, 0x1.87d8380000000p-3, 0x1.02f69e0000000p-1, -0x1.b6bb000000000p-1, 0x1.30eade0000000p-4, -0x1.83c9f40000000p-3, 0x1.7f23b80000000p-2}},
    {"sgd", kFloat64, {-0x1.04c36259c8049p-2, -0x1.0e9bf6f565c33p-1, -0x1.a5ebdbd8cf6f5p-4, 0x1.b10c4e625d19fp-3, 0x1.4826551d3d774p-2, -0x1.c258b612d5ef5p-3, -0x1.ef4c0c90af832p-2, 0x1.46f27c7a04f2dp-4, 0x1.f786e2e853d19p-2, 0x1.45a7f8d9a6aeep-1, -0x1.7a0fb4c60feccp-1, 0x1.451d8e938d06cp-5, -0x1.dfa1b37d23c24p-3, 0x1.87d83a6c0b932p-3, 0x1.02f69daeb4192p-1, -0x1.b6bafdc9d48efp-1, 0x1.30eae48b3ab6dp-4, -0x1.83c9f0c8ebbbcp-3, 0x1.7f23b34abae1fp-2}},
    {"nesterov", kFloat32, {-0x1.072d720000000p-2, -0x1.0b28e20000000p-1, -0x1.73e0700000000p-3, 0x1.1af7960000000p-2, 0x1.354f180000000p-2, -0x1.71d9540000000p-3, -0x1.beef280000000p-2, 0x1.566c5c0000000p-5, 0x1.03a43c0000000p-1, 0x1.505a6c0000000p-1, -0x1.95e0140000000p-1, 0x1.267c060000000p-5, -0x1.d4a9a20000000p-3, 0x1.c832fe0000000p-4, 0x1.237a460000000p-1, -0x1.bd525e0000000p-1, 0x1.cc413a0000000p-4, -0x1.25e4680000000p-3, 0x1.56ca7e0000000p-2}},
    {"nesterov", kFloat64, {-0x1.072d70f6ecd74p-2, -0x1.0b28e514a5203p-1, -0x1.73e0716b2c3b7p-3, 0x1.1af7949be7158p-2, 0x1.354f160e6ff87p-2, -0x1.71d94c638a1e9p-3, -0x1.beef2acc25018p-2, 0x1.566c4ecf78da5p-5, 0x1.03a43d4bde396p-1, 0x1.505a6ca20592dp-1, -0x1.95e0170e9fcaap-1, 0x1.267c228c3dac2p-5, -0x1.d4a9a9c1ab670p-3, 0x1.c832f24b79bc8p-4, 0x1.237a44f22dd11p-1, -0x1.bd525f89b11d6p-1, 0x1.cc413c5abdf5ap-4, -0x1.25e46b0760e98p-3, 0x1.56ca7f2263a80p-2}},
    {"rmsprop", kFloat32, {-0x1.1bc4c00000000p-1, -0x1.85f04e0000000p-2, -0x1.58272a0000000p-6, 0x1.2485880000000p-2, 0x1.f472220000000p-2, -0x1.0f50f40000000p-1, -0x1.55cf080000000p-2, -0x1.c2c7800000000p-6, 0x1.5eb87a0000000p-2, 0x1.2497180000000p-1, -0x1.3c4b320000000p-1, -0x1.0532d40000000p-2, -0x1.4de1a20000000p-4, 0x1.1c90cc0000000p-2, 0x1.2b6eda0000000p-1, -0x1.6ab7740000000p-1, -0x1.d8e49e0000000p-3, -0x1.1ba06a0000000p-5, 0x1.ab7d980000000p-3}},
    {"rmsprop", kFloat64, {-0x1.1bc4bd2df6970p-1, -0x1.85f04e44cdbe7p-2, -0x1.5827288426e2fp-6, 0x1.248587bbbc728p-2, 0x1.f47222b845cb8p-2, -0x1.0f50f465884e0p-1, -0x1.55cf09b2cc811p-2, -0x1.c2c7816212f24p-6, 0x1.5eb879784ce32p-2, 0x1.249716a5685bfp-1, -0x1.3c4b31411c4f0p-1, -0x1.0532d2316827ap-2, -0x1.4de19f63801f1p-4, 0x1.1c90ce16b182ap-2, 0x1.2b6ed8951867cp-1, -0x1.6ab77125a3c2ap-1, -0x1.d8e495c071916p-3, -0x1.1ba067ec6529ap-5, 0x1.ab7d978e2d4f0p-3}},
    {"adam", kFloat32, {-0x1.25d1380000000p-1, -0x1.4c234e0000000p-2, 0x1.1144c00000000p-11, 0x1.2a1c0a0000000p-2, 0x1.2481ba0000000p-1, -0x1.22fc660000000p-1, -0x1.40ec020000000p-2, 0x1.1c145c0000000p-10, 0x1.471efa0000000p-2, 0x1.325e3a0000000p-1, -0x1.35e46e0000000p-1, -0x1.18b8560000000p-2, -0x1.93ab920000000p-6, 0x1.3356ae0000000p-2, 0x1.2e7fb20000000p-1, -0x1.4142e20000000p-1, -0x1.131c660000000p-2, -0x1.c14e200000000p-7, 0x1.29bf400000000p-2}},
    {"adam", kFloat64, {-0x1.25d137ce0f548p-1, -0x1.4c234c7e1efb4p-2, 0x1.1144580188d54p-11, 0x1.2a1c07df32e32p-2, 0x1.2481b8be8a715p-1, -0x1.22fc6452fd4adp-1, -0x1.40ec00bcbf73bp-2, 0x1.1c148fe35dec2p-10, 0x1.471ef7d95eb34p-2, 0x1.325e38bf2713ep-1, -0x1.35e46c7fd2271p-1, -0x1.18b8522cb327ep-2, -0x1.93ab8dd36217fp-6, 0x1.3356ac505c084p-2, 0x1.2e7fb4ca67826p-1, -0x1.4142e3d71937ep-1, -0x1.131c65be0fb7cp-2, -0x1.c14e1a96d2406p-7, 0x1.29bf405b900a8p-2}},
    {"adamw", kFloat32, {-0x1.2011920000000p-1, -0x1.4dcda80000000p-2, 0x1.9da9080000000p-9, 0x1.23754a0000000p-2, 0x1.2108040000000p-1, -0x1.1eeff20000000p-1, -0x1.40908c0000000p-2, 0x1.18d38e0000000p-9, 0x1.468be20000000p-2, 0x1.3044680000000p-1, -0x1.33f5e40000000p-1, -0x1.0ffed20000000p-2, -0x1.da95800000000p-6, 0x1.335fa20000000p-2, 0x1.29ccce0000000p-1, -0x1.3f40a00000000p-1, -0x1.0dbb9c0000000p-2, -0x1.06c3b20000000p-6, 0x1.3255f80000000p-2}},
    {"adamw", kFloat64, {-0x1.20118c4aafb98p-1, -0x1.4dcda408480e5p-2, 0x1.9da8f384ea89ep-9, 0x1.237547997d1dep-2, 0x1.2107ff1fd1d3dp-1, -0x1.1eeff1705f393p-1, -0x1.40908714bb492p-2, 0x1.18d3a63cd372bp-9, 0x1.468bdd2a5e412p-2, 0x1.304465c7ab288p-1, -0x1.33f5dbaa05c24p-1, -0x1.0ffecc6ae2970p-2, -0x1.da957ddcb32acp-6, 0x1.335f9e1186b0cp-2, 0x1.29ccc9e1fcfccp-1, -0x1.3f40993527e39p-1, -0x1.0dbb96b64196ap-2, -0x1.06c3aea3e6d72p-6, 0x1.3255f376f682ap-2}},
};
// SGD and RMSprop generated with torch 1.13.0a0 (torch.optim); Adam and AdamW with LibTorch 1.13 in
// PyTorch 2.0's order (see the top of this file).

// torch.optim.Adam/AdamW of torch 1.13 itself (mul_/add_ first moment), same settings.
const std::vector<Reference> kTorch113Adam = {
    {"adam", kFloat32, {-0x1.25d1380000000p-1, -0x1.4c234e0000000p-2, 0x1.1144b80000000p-11, 0x1.2a1c0a0000000p-2, 0x1.2481ba0000000p-1, -0x1.22fc660000000p-1, -0x1.40ec020000000p-2, 0x1.1c147c0000000p-10, 0x1.471efa0000000p-2, 0x1.325e3a0000000p-1, -0x1.35e46e0000000p-1, -0x1.18b8560000000p-2, -0x1.93ab920000000p-6, 0x1.3356ae0000000p-2, 0x1.2e7fb20000000p-1, -0x1.4142e20000000p-1, -0x1.131c660000000p-2, -0x1.c14e200000000p-7, 0x1.29bf400000000p-2}},
    {"adam", kFloat64, {-0x1.25d137ce0f548p-1, -0x1.4c234c7e1efb3p-2, 0x1.1144580188d54p-11, 0x1.2a1c07df32e32p-2, 0x1.2481b8be8a715p-1, -0x1.22fc6452fd4adp-1, -0x1.40ec00bcbf73bp-2, 0x1.1c148fe35deb4p-10, 0x1.471ef7d95eb34p-2, 0x1.325e38bf2713ep-1, -0x1.35e46c7fd2271p-1, -0x1.18b8522cb327ep-2, -0x1.93ab8dd362180p-6, 0x1.3356ac505c084p-2, 0x1.2e7fb4ca67826p-1, -0x1.4142e3d71937ep-1, -0x1.131c65be0fb7cp-2, -0x1.c14e1a96d2406p-7, 0x1.29bf405b900a8p-2}},
    {"adamw", kFloat32, {-0x1.2011920000000p-1, -0x1.4dcda80000000p-2, 0x1.9da9080000000p-9, 0x1.23754a0000000p-2, 0x1.2108040000000p-1, -0x1.1eeff20000000p-1, -0x1.40908c0000000p-2, 0x1.18d3980000000p-9, 0x1.468be20000000p-2, 0x1.3044680000000p-1, -0x1.33f5e40000000p-1, -0x1.0ffed20000000p-2, -0x1.da95800000000p-6, 0x1.335fa20000000p-2, 0x1.29ccce0000000p-1, -0x1.3f40a00000000p-1, -0x1.0dbb9c0000000p-2, -0x1.06c3b00000000p-6, 0x1.3255f80000000p-2}},
    {"adamw", kFloat64, {-0x1.20118c4aafb98p-1, -0x1.4dcda408480e5p-2, 0x1.9da8f384ea89ap-9, 0x1.237547997d1dep-2, 0x1.2107ff1fd1d3dp-1, -0x1.1eeff1705f393p-1, -0x1.40908714bb492p-2, 0x1.18d3a63cd3733p-9, 0x1.468bdd2a5e412p-2, 0x1.304465c7ab288p-1, -0x1.33f5dbaa05c24p-1, -0x1.0ffecc6ae2970p-2, -0x1.da957ddcb32acp-6, 0x1.335f9e1186b0cp-2, 0x1.29ccc9e1fcfccp-1, -0x1.3f40993527e39p-1, -0x1.0dbb96b64196ap-2, -0x1.06c3aea3e6d74p-6, 0x1.3255f376f682ap-2}},
};

std::unique_ptr<optim::Optimizer> make(const std::string& which, const Tensor& p) {
  std::vector<Tensor> params{p};
  if (which == "sgd") return std::make_unique<optim::SGD>(params, optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
  if (which == "nesterov") return std::make_unique<optim::SGD>(params, optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
  if (which == "rmsprop") return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions{.lr = 0.01, .alpha = 0.9, .weight_decay = 0.01, .momentum = 0.5});
  if (which == "adam") return std::make_unique<optim::Adam>(params, optim::AdamOptions{.lr = 0.01, .betas = {0.8, 0.99}, .weight_decay = 0.01, .amsgrad = true});
  return std::make_unique<optim::AdamW>(params, optim::AdamWOptions{.lr = 0.01, .weight_decay = 0.1});
}

// The trajectory of the generating script: 10 steps from the same start with the same gradients.
Tensor run(const std::string& which, Dtype dtype, std::size_t n) {
  xt::xarray<double> p0 = xt::zeros<double>({n});
  for (std::size_t i = 0; i < n; ++i) p0(i) = (static_cast<double>(i % 5) - 2) * 0.3;
  Tensor p = tensor(p0).to(dtype).detach().requires_grad_();
  auto opt = make(which, p);
  for (int t = 0; t < 10; ++t) {
    xt::xarray<double> g = xt::zeros<double>({n});
    for (std::size_t i = 0; i < n; ++i) g(i) = static_cast<double>(static_cast<int>((i * 7 + t * 3) % 11) - 5) / 4.0;
    p.set_grad(tensor(g).to(dtype));
    opt->step();
  }
  return p.to(kFloat64);
}

}  // namespace

TEST_CASE("optim: trajectories match PyTorch's bit for bit") {
  const std::size_t n = 19;
  for (const Reference& ref : kReferences) {
    const std::string which = ref.optimizer;
    CAPTURE(which);
    CAPTURE(ref.dtype);
    const Tensor got = run(which, ref.dtype, n);
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      CHECK(got.data<double>()(i) == ref.expected[i]);
    }
  }
}

TEST_CASE("optim: Adam and AdamW stay within 16 ulps of torch 1.13's torch.optim") {
  const std::size_t n = 19;
  for (const Reference& ref : kTorch113Adam) {
    CAPTURE(ref.optimizer);
    CAPTURE(ref.dtype);
    const Tensor got = run(ref.optimizer, ref.dtype, n);
    std::int64_t worst = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double v = got.data<double>()(i);
      // Distance in units in the last place of the parameter's dtype (same signs here: no wrap).
      const std::int64_t d = ref.dtype == kFloat32
                                 ? std::abs(static_cast<std::int64_t>(std::bit_cast<std::int32_t>(static_cast<float>(v))) -
                                            std::bit_cast<std::int32_t>(static_cast<float>(ref.expected[i])))
                                 : std::abs(std::bit_cast<std::int64_t>(v) - std::bit_cast<std::int64_t>(ref.expected[i]));
      worst = std::max(worst, d);
    }
    CAPTURE(worst);
    CHECK(worst <= 16);
    CHECK(worst > 0);  // the two first-moment formulas do round differently on these inputs
  }
}
