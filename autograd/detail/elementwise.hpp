// Kernels shared by elementwise ops: a strided broadcasting loop for binary ops (no xtensor
// expression instantiation per op, contiguous inner loops that vectorise) and a unary helper.
#pragma once
#include <bit>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "op_support.hpp"

namespace xgrad::detail {

// For each output dimension, the element stride of each operand (0 where it is broadcast).
struct BroadcastPlan {
  Shape out;
  std::vector<std::ptrdiff_t> stride_a, stride_b;
};
BroadcastPlan plan_broadcast(const char* op, const Shape& a, const Shape& b);

// o[i] = f(a[ia], b[ib]) over the broadcast of a and b.
template <class TA, class TB, class TO, class F>
void broadcast_apply(const TA* __restrict a, const TB* __restrict b, TO* __restrict o, const BroadcastPlan& p, F f) {
  const std::size_t rank = p.out.size();
  if (rank == 0) {
    o[0] = f(a[0], b[0]);
    return;
  }
  const std::size_t inner = p.out[rank - 1];
  std::size_t outer = 1;
  for (std::size_t d = 0; d + 1 < rank; ++d) outer *= p.out[d];
  if (inner == 0 || outer == 0) return;
  const std::ptrdiff_t ia = p.stride_a[rank - 1], ib = p.stride_b[rank - 1];
  std::vector<std::size_t> idx(rank, 0);
  std::ptrdiff_t oa = 0, ob = 0;
  for (std::size_t k = 0; k < outer; ++k) {
    const TA* pa = a + oa;
    const TB* pb = b + ob;
    if (ia == 1 && ib == 1) {
#pragma omp simd
      for (std::size_t j = 0; j < inner; ++j) o[j] = f(pa[j], pb[j]);
    } else if (ia == 1 && ib == 0) {
      const TB vb = *pb;
#pragma omp simd
      for (std::size_t j = 0; j < inner; ++j) o[j] = f(pa[j], vb);
    } else if (ia == 0 && ib == 1) {
      const TA va = *pa;
#pragma omp simd
      for (std::size_t j = 0; j < inner; ++j) o[j] = f(va, pb[j]);
    } else {
      for (std::size_t j = 0; j < inner; ++j)
        o[j] = f(pa[static_cast<std::ptrdiff_t>(j) * ia], pb[static_cast<std::ptrdiff_t>(j) * ib]);
    }
    o += inner;
    for (std::size_t d = rank - 1; d-- > 0;) {
      oa += p.stride_a[d];
      ob += p.stride_b[d];
      if (++idx[d] < p.out[d]) break;
      oa -= p.stride_a[d] * static_cast<std::ptrdiff_t>(p.out[d]);
      ob -= p.stride_b[d] * static_cast<std::ptrdiff_t>(p.out[d]);
      idx[d] = 0;
    }
  }
}

// out = f(a, b) with broadcasting, same dtype in and out. `f` works on scalars of type T.
template <class F>
Tensor binary_map(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_same_dtype(op, a, b);
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Array<T>& x = arr<T>(a);
    const Array<T>& y = arr<T>(b);
    if (shapes_equal(x.shape(), y.shape())) {  // the common case: one flat loop
      Array<T> out = empty_array<T>(x.shape());
      const T* __restrict px = x.data();
      const T* __restrict py = y.data();
      T* __restrict po = out.data();
      const std::size_t n = out.size();
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) po[i] = f(px[i], py[i]);
      return make_tensor(std::move(out));
    }
    BroadcastPlan plan = plan_broadcast(op, to_shape(x.shape()), to_shape(y.shape()));
    Array<T> out = empty_array<T>(plan.out);
    broadcast_apply(x.data(), y.data(), out.data(), plan, f);
    return make_tensor(std::move(out));
  });
}

// out = f(a) elementwise, where f is applied to scalars of type T.
template <class F>
Tensor scalar_map(const char* op, const Tensor& a, F f) {
  TensorImpl& ia = checked(a, op);
  return dispatch(ia.dtype, [&](auto tag) {
    using T = decltype(tag);
    const Array<T>& x = ia.array<T>();
    Array<T> out = empty_array<T>(x.shape());
    const T* __restrict px = x.data();
    T* __restrict po = out.data();
    const std::size_t n = out.size();
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) po[i] = f(px[i]);
    return make_tensor(std::move(out));
  });
}

// out = kernel(a) where the kernel assigns an xtensor expression: kernel(const Array<T>& in, Array<T>& out).
// Used for transcendental functions, which xsimd vectorises.
template <class K>
Tensor array_map(const char* op, const Tensor& a, K kernel) {
  TensorImpl& ia = checked(a, op);
  return dispatch(ia.dtype, [&](auto tag) {
    using T = decltype(tag);
    const Array<T>& x = ia.array<T>();
    Array<T> out = empty_array<T>(x.shape());
    kernel(x, out);
    return make_tensor(std::move(out));
  });
}

}  // namespace xgrad::detail

// ---- Fused backward kernels (for fused_backward(), i.e. no create_graph) ------------------------
namespace xgrad::detail {

// 1 where `c` holds, else 0, as a T, built from a bit mask: GCC 12 turns a bool -> float conversion
// inside a loop into a branch and then refuses to vectorise the loop ("control flow in loop"); this
// form vectorises, with the same values (so the same bits as a formula's mul by a 0/1 tensor).
template <class T>
T indicator(bool c) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const U mask = U(0) - static_cast<U>(c);
  return std::bit_cast<T>(static_cast<U>(std::bit_cast<U>(T(1)) & mask));
}

// The tensor a backward kernel writes a g-shaped result into: g itself when it may be overwritten
// (see exclusively_owned), else a fresh uninitialised one. `g` is left undefined in the first case.
template <class T>
Tensor writable_like(Tensor& g) {
  if (exclusively_owned(g)) return std::move(g);
  return make_tensor(empty_array<T>(arr<T>(g).shape()));
}

// out[i] = f(g[i]) for a gradient g, written over g when possible.
template <class F>
Tensor grad_map(Tensor& g, F f) {
  TensorImpl& ig = checked(g, "backward");
  return dispatch(ig.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pg = ig.array<T>().data();  // stays valid: in place, `out` takes over g's TensorImpl
    Tensor out = writable_like<T>(g);
    T* po = arr<T>(out).data();
    const std::size_t n = arr<T>(out).size();
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) po[i] = f(pg[i]);
    return out;
  });
}

// out[i] = f(g[i], s[i]) for a gradient g and a saved value s of the same shape (e.g. an op's input
// or output), written over g when possible. When the shapes differ nothing happens and the result is
// undefined: the caller takes its general path.
template <class F>
Tensor grad_map(Tensor& g, const Storage& saved, F f) {
  TensorImpl& ig = checked(g, "backward");
  return dispatch(ig.dtype, [&](auto tag) {
    using T = decltype(tag);
    const Array<T>* s = std::get_if<Array<T>>(&saved.value);
    if (!s || !shapes_equal(s->shape(), ig.array<T>().shape())) return Tensor();
    const T* pg = ig.array<T>().data();
    const T* ps = s->data();
    Tensor out = writable_like<T>(g);
    T* po = arr<T>(out).data();
    const std::size_t n = s->size();
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) po[i] = f(pg[i], ps[i]);
    return out;
  });
}

}  // namespace xgrad::detail
