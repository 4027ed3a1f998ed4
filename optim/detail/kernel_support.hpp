// What the update kernels share: one dtype switch per parameter, run-time options turned into
// template flags (each variant of an update is its own branch-free loop), and a SIMD loop driver.
// Internal to optim/.
//
// Numerics: a kernel performs the IEEE operations of PyTorch's single-tensor update on CPU, in its
// order, in the parameter's dtype — including where PyTorch's CPU kernels fuse a multiply and an
// add into one FMA:
//   a.add(b, alpha=s)          fma(s, b, a)            (ATen's ufunc add: vec::fmadd)
//   a.lerp(b, w)               fma(w, b - a, a)        |w| < 0.5, else fma(w - 1, b - a, b)  (lerp_vec)
//   a.addcmul(b, c, value=s)   fma(s * b, c, a)
//   a.addcdiv(b, c, value=s)   a + s * b / c           (no fusion: the division comes last)
//   a.mul(s), a / s, sqrt      one rounding each
// (Checked against torch's own trajectories, tests/test_optim_torch_reference.cpp: float32 and
// float64, SIMD body and scalar tail, SGD and RMSprop agree bit for bit; so does Adam when given
// torch 1.13's mul_/add_ first moment instead of the lerp_ of PyTorch >= 2.0 that it implements.)
// Every other multiply-add must NOT be fused: GCC
// does that by default (even in ISO C++ mode), so every file with update arithmetic starts with
// #pragma GCC optimize("fp-contract=off"), and the loop driver below carries the same option. The
// SIMD body and the scalar tail then round identically: results do not depend on the vector width
// or on where an element sits.
#pragma once
#include <cmath>
#include <cstddef>
#include <type_traits>

#include <immintrin.h>
#include <xsimd/xsimd.hpp>

#include "../../autograd/detail/dispatch.hpp"
#include "../../autograd/tensor.hpp"

// fp-contract=off for the shared loop driver (see above).
#define XGRAD_OPTIM_KERNEL [[gnu::optimize("fp-contract=off")]]

namespace xgrad::optim::detail {

// dispatch(dtype, f) calls f(T{}) with T = float or double: autograd's one dtype switch.
using xgrad::detail::dispatch;

// Calls f(std::true_type{}) or f(std::false_type{}).
template <class F>
decltype(auto) with_flag(bool flag, F&& f) {
  if (flag) return f(std::true_type{});
  return f(std::false_type{});
}

// Raw element pointers of a parameter, its gradient or a state buffer (xarray storage is contiguous).
template <class T>
T* ptr(Tensor& t) {
  return t.data<T>().data();
}
template <class T>
const T* cptr(const Tensor& t) {
  return t.data<T>().data();
}

// ---- Lane-generic arithmetic: V is T (scalar tail) or xsimd::batch<T> (SIMD body) ---------------
template <class V, class T>
[[gnu::always_inline]] inline V load(const T* p) {
  if constexpr (std::is_same_v<V, T>) {
    return *p;
  } else {
    return V::load_unaligned(p);
  }
}
template <class V, class T>
[[gnu::always_inline]] inline void store(T* p, const V& v) {
  if constexpr (std::is_same_v<V, T>) {
    *p = v;
  } else {
    v.store_unaligned(p);
  }
}
// The correctly rounded square root (a single instruction in both forms).
template <class V>
[[gnu::always_inline]] inline V sqrt_of(const V& x) {
  if constexpr (std::is_floating_point_v<V>) {
    return std::sqrt(x);
  } else {
    return xsimd::sqrt(x);
  }
}
// a * b + c with one rounding (PyTorch's fmadd). Not xsimd::fma: xsimd 8 has no AVX-512 kernel for
// it and falls back to a * b + c, which fp-contract=off then rounds twice.
template <class V>
[[gnu::always_inline]] inline V fma_of(const V& a, const V& b, const V& c) {
  if constexpr (std::is_floating_point_v<V>) {
    return std::fma(a, b, c);
  } else {
    using T = typename V::value_type;
    using R = typename V::register_type;
    constexpr bool is_float = std::is_same_v<T, float>;
#if defined(__AVX512F__)
    if constexpr (sizeof(R) == 64) {
      if constexpr (is_float) return V(_mm512_fmadd_ps(a, b, c));
      else return V(_mm512_fmadd_pd(a, b, c));
    }
#endif
#if defined(__FMA__)
    if constexpr (sizeof(R) == 32) {
      if constexpr (is_float) return V(_mm256_fmadd_ps(a, b, c));
      else return V(_mm256_fmadd_pd(a, b, c));
    }
    if constexpr (sizeof(R) == 16) {
      if constexpr (is_float) return V(_mm_fmadd_ps(a, b, c));
      else return V(_mm_fmadd_pd(a, b, c));
    }
#endif
    // No FMA instruction for this register: lane by lane (correct, slower).
    alignas(64) T x[V::size], y[V::size], z[V::size];
    a.store_aligned(x);
    b.store_aligned(y);
    c.store_aligned(z);
    for (std::size_t i = 0; i < V::size; ++i) x[i] = std::fma(x[i], y[i], z[i]);
    return V::load_aligned(x);
  }
}
// torch.maximum: a NaN in either operand wins.
template <class V>
[[gnu::always_inline]] inline V nan_max(const V& a, const V& b) {
  if constexpr (std::is_floating_point_v<V>) {
    return a != a ? a : (b != b ? b : (a > b ? a : b));
  } else {
    return xsimd::select(a != a, a, xsimd::select(b != b, b, xsimd::select(a > b, a, b)));
  }
}

// Calls body(i, V{}) for i in [0, n): whole SIMD batches first, then the remaining elements one
// by one. The body loads, computes and stores its lanes at offset i.
template <class T, class Body>
XGRAD_OPTIM_KERNEL void for_each_lane(std::size_t n, Body&& body) {
  using B = xsimd::batch<T>;
  constexpr std::size_t width = B::size;
  std::size_t i = 0;
  for (; i + width <= n; i += width) body(i, B{});
  for (; i < n; ++i) body(i, T{});
}

}  // namespace xgrad::optim::detail
