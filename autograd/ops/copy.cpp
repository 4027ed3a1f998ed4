// clone and dtype conversion: copies that gradients flow through.
#include "../detail/op_support.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

struct CloneBackward : OpNode {
  CloneBackward() : OpNode("CloneBackward") {}
  TensorList apply(TensorList&& g) override { return {std::move(g[0])}; }
};

struct ToDtypeBackward : OpNode {
  explicit ToDtypeBackward(Dtype from) : OpNode("ToCopyBackward"), from(from) {}
  Dtype from;
  TensorList apply(TensorList&& g) override { return {g[0].to(from)}; }
};

}  // namespace

Tensor Tensor::clone() const {
  TensorImpl& impl = checked("clone");
  Tensor out = dispatch(impl.dtype, [&](auto tag) {
    using T = decltype(tag);
    return make_tensor(Array<T>(impl.array<T>()));
  });
  record<CloneBackward>(out, {this});
  // JVP: a copy of the tangent.
  record_jvp("clone", out, {this}, [](Tangents t) { return t[0].clone(); }, JvpBatching::Aware);
  return out;
}

Tensor Tensor::to(Dtype dtype) const {
  TensorImpl& impl = checked("to");
  if (impl.dtype == dtype) return *this;
  Tensor out = dispatch(impl.dtype, [&](auto from_tag) {
    using From = decltype(from_tag);
    const Array<From>& x = impl.array<From>();
    return dispatch(dtype, [&](auto to_tag) {
      using To = decltype(to_tag);
      Array<To> o = empty_array<To>(x.shape());
      std::transform(x.data(), x.data() + x.size(), o.data(), [](From v) { return static_cast<To>(v); });
      return make_tensor(std::move(o));
    });
  });
  record<ToDtypeBackward>(out, {this}, impl.dtype);
  // JVP: the tangent converted the same way.
  record_jvp("to", out, {this}, [dtype](Tangents t) { return t[0].to(dtype); }, JvpBatching::Aware);
  return out;
}

}  // namespace xgrad
