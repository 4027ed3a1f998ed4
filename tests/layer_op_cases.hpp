// Generic checks for the layer ops (conv, pooling, normalisation, embedding, activations), driven by
// small tables of (name, function, float64 sample inputs): gradcheck, gradgradcheck, and the
// gradient with create_graph = false (fused backward kernels, no graph) against the one with
// create_graph = true (the Tensor-op formulas), bitwise. Each table entry is shaped so it can move
// into the project-wide op table unchanged.
#pragma once
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <xgrad.hpp>

namespace xgrad::test {

struct LayerOpCase {
  std::string name;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::vector<Tensor> inputs;  // float64; those that require grad are differentiated
};

// Bitwise equality of two float64 tensors (same shape).
inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const auto& x = a.data<double>();
  const auto& y = b.data<double>();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0;
}

// The gradients of <fn(inputs), weights> with and without create_graph are bitwise equal.
inline void check_fused_matches_formula(const LayerOpCase& c) {
  std::vector<Tensor> diff;
  for (const Tensor& t : c.inputs)
    if (t.requires_grad()) diff.push_back(t);
  Tensor out = c.fn(c.inputs);
  Tensor w = randn_like(out);
  const auto fused = autograd::grad({out}, diff, {w}, std::nullopt, false, true);
  Tensor out2 = c.fn(c.inputs);
  const auto formula = autograd::grad({out2}, diff, {w}, std::nullopt, true, true);
  REQUIRE(fused.size() == formula.size());
  for (std::size_t i = 0; i < fused.size(); ++i) {
    CAPTURE(i);
    REQUIRE(fused[i].defined() == formula[i].defined());
    if (fused[i].defined()) CHECK(same_bits(fused[i], formula[i].detach()));
  }
}

inline void check_layer_op_case(const LayerOpCase& c, bool second_order = true) {
  CAPTURE(c.name);
  CHECK(gradcheck(c.fn, c.inputs));
  if (second_order) CHECK(gradgradcheck(c.fn, c.inputs));
  check_fused_matches_formula(c);
  // float32: the same call runs and gives values close to float64's.
  std::vector<Tensor> in32;
  for (const Tensor& t : c.inputs) in32.push_back(t.detach().to(kFloat32));
  Tensor y64 = c.fn(c.inputs), y32 = c.fn(in32);
  REQUIRE(y32.dtype() == kFloat32);
  REQUIRE(y32.shape() == y64.shape());
  const auto& a = y64.data<double>();
  const auto& b = y32.data<float>();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(static_cast<double>(b.data()[i]) == doctest::Approx(a.data()[i]).epsilon(1e-4).scale(1.0));
}

// A float64 leaf requiring grad whose values are distinct and at least 1/n apart (no near-ties for
// max pooling's finite differences): a random permutation of 0..n-1, scaled into [-1, 1).
inline Tensor distinct_param(const Shape& shape) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  Tensor t = randperm(n, kFloat64);
  t = ((t * (2.0 / static_cast<double>(n))) - 1.0).reshape(std::vector<std::int64_t>(shape.begin(), shape.end())).detach();
  t.requires_grad_();
  return t;
}

// Checks that `f` throws an xgrad::Error whose message contains each of `parts`.
template <class F>
void check_error(F f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("no error thrown");
  } catch (const xgrad::Error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    for (const auto& p : parts) {
      CAPTURE(p);
      CHECK(msg.find(p) != std::string::npos);
    }
  }
}

}  // namespace xgrad::test
