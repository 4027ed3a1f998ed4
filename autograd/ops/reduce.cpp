// Reductions: sum, mean, sum_to (the adjoint of broadcasting), forward and backward side by side.
#include <numeric>

#include <xtensor/xreducer.hpp>

#include "../detail/op_support.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

// Normalised, sorted, de-duplicated reduction dims; empty `dims` means all of them.
std::vector<std::size_t> reduction_dims(const char* op, const std::vector<int>& dims, std::size_t rank) {
  std::vector<std::size_t> out;
  if (dims.empty()) {
    out.resize(rank);
    std::iota(out.begin(), out.end(), std::size_t{0});
    return out;
  }
  for (int d : dims) {
    const std::size_t w = wrap_dim(op, d, rank);
    if (std::find(out.begin(), out.end(), w) != out.end()) fail(op, ": dim ", d, " appears multiple times in the list of dims");
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  if (rank == 0) out.clear();  // dims 0 / -1 on a 0-d tensor reduce nothing, as in PyTorch
  return out;
}

Shape reduced_shape(const Shape& in, const std::vector<std::size_t>& axes, bool keepdim) {
  Shape out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (!reduced)
      out.push_back(in[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Sum of `x` over `axes`, shaped as `out_shape` (same element count as the keepdim result).
template <class T>
Array<T> sum_kernel(const Array<T>& x, const std::vector<std::size_t>& axes, const Shape& out_shape) {
  Array<T> out = empty_array<T>(out_shape);
  if (axes.size() == x.dimension()) {  // full reduction: a vectorised loop, accumulated in double
    const T* p = x.data();
    const std::size_t n = x.size();
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(p[i]);
    out.data()[0] = static_cast<T>(s);
    return out;
  }
  if (axes.empty()) {
    std::copy(x.data(), x.data() + x.size(), out.data());
    return out;
  }
  Array<T> r = xt::sum(x, axes, xt::keep_dims | xt::evaluation_strategy::immediate);
  std::copy(r.data(), r.data() + r.size(), out.data());
  return out;
}

struct SumBackward : OpNode {
  SumBackward() : OpNode("SumBackward") {}
  Shape input_shape, keep_shape;  // keep_shape: the result with reduced dims kept as 1
  TensorList apply(TensorList&& g) override {
    std::vector<std::int64_t> ks(keep_shape.begin(), keep_shape.end());
    std::vector<std::int64_t> is(input_shape.begin(), input_shape.end());
    return {expand(reshape(g[0], ks), is)};
  }
};

struct MeanBackward : OpNode {
  MeanBackward() : OpNode("MeanBackward") {}
  Shape input_shape, keep_shape;
  double count = 1;
  TensorList apply(TensorList&& g) override {
    std::vector<std::int64_t> ks(keep_shape.begin(), keep_shape.end());
    std::vector<std::int64_t> is(input_shape.begin(), input_shape.end());
    return {div(expand(reshape(g[0], ks), is), count)};
  }
};

struct SumToBackward : OpNode {
  SumToBackward() : OpNode("SumToBackward") {}
  Shape input_shape;
  TensorList apply(TensorList&& g) override {
    return {expand(g[0], std::vector<std::int64_t>(input_shape.begin(), input_shape.end()))};
  }
};

Tensor sum_impl(const char* op, const Tensor& t, const std::vector<std::size_t>& axes, bool keepdim,
                Shape* keep_shape_out) {
  TensorImpl& it = checked(t, op);
  const Shape in = t.shape();
  const Shape out_shape = reduced_shape(in, axes, keepdim);
  *keep_shape_out = reduced_shape(in, axes, true);
  return dispatch(it.dtype, [&](auto tag) {
    using T = decltype(tag);
    return make_tensor(sum_kernel<T>(it.array<T>(), axes, out_shape));
  });
}

}  // namespace

Tensor sum(const Tensor& t) { return sum(t, {}, false); }

Tensor sum(const Tensor& t, const std::vector<int>& dims, bool keepdim) {
  checked(t, "sum");
  const auto axes = reduction_dims("sum", dims, static_cast<std::size_t>(t.dim()));
  Shape keep_shape;
  Tensor out = sum_impl("sum", t, axes, keepdim, &keep_shape);
  if (auto node = record<SumBackward>(out, {&t})) {
    node->input_shape = t.shape();
    node->keep_shape = std::move(keep_shape);
  }
  return out;
}

Tensor mean(const Tensor& t) { return mean(t, {}, false); }

Tensor mean(const Tensor& t, const std::vector<int>& dims, bool keepdim) {
  checked(t, "mean");
  const Shape in = t.shape();
  const auto axes = reduction_dims("mean", dims, in.size());
  double count = 1;
  for (std::size_t a : axes) count *= static_cast<double>(in[a]);
  Shape keep_shape;
  Tensor out = sum_impl("mean", t, axes, keepdim, &keep_shape);
  {
    NoGradGuard no_grad;  // scale in place of the fresh result: no node for this step
    dispatch(out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      Array<T>& o = arr<T>(out);
      const T c = static_cast<T>(count);
      for (auto& v : o) v = v / c;  // 0/0 = nan for an empty reduction, as in PyTorch
    });
  }
  if (auto node = record<MeanBackward>(out, {&t})) {
    node->input_shape = in;
    node->keep_shape = std::move(keep_shape);
    node->count = count;
  }
  return out;
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  checked(t, "sum_to");
  const Shape in = t.shape();
  if (in == shape) return t;
  if (shape.size() > in.size())
    fail("sum_to: cannot sum a tensor of shape ", shape_str(in), " down to the larger rank of ", shape_str(shape));
  const std::size_t lead = in.size() - shape.size();
  std::vector<std::size_t> axes;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i < lead) {
      axes.push_back(i);
    } else if (shape[i - lead] == 1 && in[i] != 1) {
      axes.push_back(i);
    } else if (shape[i - lead] != in[i]) {
      fail("sum_to: shape ", shape_str(in), " is not a broadcast of ", shape_str(shape));
    }
  }
  TensorImpl& it = *t.impl();
  Tensor out = dispatch(it.dtype, [&](auto tag) {
    using T = decltype(tag);
    return make_tensor(sum_kernel<T>(it.array<T>(), axes, shape));
  });
  if (auto node = record<SumToBackward>(out, {&t})) node->input_shape = in;
  return out;
}

Tensor Tensor::sum() const { return xgrad::sum(*this); }
Tensor Tensor::sum(const std::vector<int>& dims, bool keepdim) const { return xgrad::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return xgrad::mean(*this); }
Tensor Tensor::mean(const std::vector<int>& dims, bool keepdim) const { return xgrad::mean(*this, dims, keepdim); }

}  // namespace xgrad
