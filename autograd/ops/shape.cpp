// Shape ops: reshape, expand, squeeze/unsqueeze (more to come), forward and backward side by side.
// Values are always contiguous, so these produce new contiguous tensors.
#include "../detail/elementwise.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

std::vector<std::int64_t> as_i64(const Shape& s) { return std::vector<std::int64_t>(s.begin(), s.end()); }

// Copies the values of `t` into a new tensor of shape `shape` (same element count).
Tensor copy_with_shape(const Tensor& t, const Shape& shape) {
  return dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Array<T>& x = arr<T>(t);
    Array<T> out = empty_array<T>(shape);
    std::copy(x.data(), x.data() + x.size(), out.data());
    return make_tensor(std::move(out));
  });
}

struct ReshapeBackward : OpNode {
  ReshapeBackward() : OpNode("ReshapeBackward") {}
  Shape input_shape;
  TensorList apply(TensorList&& g) override { return {reshape(g[0], as_i64(input_shape))}; }
};

struct ExpandBackward : OpNode {
  ExpandBackward() : OpNode("ExpandBackward") {}
  Shape input_shape;
  TensorList apply(TensorList&& g) override { return {sum_to(g[0], input_shape)}; }
};

Tensor reshape_as_op(const char* op, const Tensor& t, const Shape& shape) {
  Tensor out = copy_with_shape(t, shape);
  if (auto node = record<ReshapeBackward>(out, {&t})) node->input_shape = t.shape();
  (void)op;
  return out;
}

}  // namespace

Tensor reshape(const Tensor& t, const std::vector<std::int64_t>& shape) {
  checked(t, "reshape");
  const std::size_t n = t.numel();
  Shape out(shape.size());
  std::size_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) fail("reshape: only one dimension can be inferred (-1), got shape ", shape_str(t.shape()), " -> ", concat_dims(shape));
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      fail("reshape: invalid size ", shape[i], " at dimension ", i);
    } else {
      out[i] = static_cast<std::size_t>(shape[i]);
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || n % known != 0)
      fail("reshape: shape ", concat_dims(shape), " is invalid for input of size ", n, " (shape ", shape_str(t.shape()), ")");
    out[static_cast<std::size_t>(infer)] = n / known;
  } else if (known != n) {
    fail("reshape: shape ", concat_dims(shape), " is invalid for input of size ", n, " (shape ", shape_str(t.shape()), ")");
  }
  return reshape_as_op("reshape", t, out);
}

Tensor expand(const Tensor& t, const std::vector<std::int64_t>& shape) {
  checked(t, "expand");
  const Shape in = t.shape();
  if (shape.size() < in.size())
    fail("expand: the number of sizes provided (", shape.size(), ") must be greater or equal to the number of dimensions in the tensor (", in.size(), "), shape ", shape_str(in));
  Shape out(shape.size());
  const std::size_t lead = shape.size() - in.size();
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::int64_t want = shape[i];
    if (i < lead) {
      if (want < 0) fail("expand: -1 is not allowed in a leading, non-existing dimension (", i, "), target ", concat_dims(shape));
      out[i] = static_cast<std::size_t>(want);
      continue;
    }
    const std::size_t have = in[i - lead];
    if (want == -1) {
      out[i] = have;
    } else if (want < 0) {
      fail("expand: invalid size ", want, " at dimension ", i);
    } else if (have == static_cast<std::size_t>(want) || have == 1) {
      out[i] = static_cast<std::size_t>(want);
    } else {
      fail("expand: the expanded size of the tensor (", want, ") must match the existing size (", have,
           ") at non-singleton dimension ", i, ". Target sizes: ", concat_dims(shape), ". Tensor sizes: ", shape_str(in));
    }
  }
  if (out == in) return reshape_as_op("expand", t, out);  // still a new node, like PyTorch's expand
  Tensor result = dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Array<T>& x = arr<T>(t);
    Array<T> o = empty_array<T>(out);
    BroadcastPlan plan = plan_broadcast("expand", in, out);
    const T zero = 0;
    broadcast_apply(x.data(), &zero, o.data(), BroadcastPlan{plan.out, plan.stride_a, std::vector<std::ptrdiff_t>(out.size(), 0)},
                    [](T v, T) { return v; });
    return make_tensor(std::move(o));
  });
  if (auto node = record<ExpandBackward>(result, {&t})) node->input_shape = in;
  return result;
}

Tensor unsqueeze(const Tensor& t, int dim) {
  checked(t, "unsqueeze");
  Shape s = t.shape();
  const std::size_t d = wrap_dim("unsqueeze", dim, s.size() + 1);
  s.insert(s.begin() + static_cast<std::ptrdiff_t>(d), 1);
  return reshape_as_op("unsqueeze", t, s);
}

Tensor squeeze(const Tensor& t, int dim) {
  checked(t, "squeeze");
  Shape s = t.shape();
  if (s.empty()) {
    wrap_dim("squeeze", dim, 0);
    return reshape_as_op("squeeze", t, s);
  }
  const std::size_t d = wrap_dim("squeeze", dim, s.size());
  if (s[d] == 1) s.erase(s.begin() + static_cast<std::ptrdiff_t>(d));
  return reshape_as_op("squeeze", t, s);
}

Tensor squeeze(const Tensor& t) {
  checked(t, "squeeze");
  Shape s;
  for (std::size_t d : t.shape())
    if (d != 1) s.push_back(d);
  return reshape_as_op("squeeze", t, s);
}

Tensor Tensor::reshape(const std::vector<std::int64_t>& shape) const { return xgrad::reshape(*this, shape); }
Tensor Tensor::expand(const std::vector<std::int64_t>& shape) const { return xgrad::expand(*this, shape); }
Tensor Tensor::squeeze(int dim) const { return xgrad::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int dim) const { return xgrad::unsqueeze(*this, dim); }

}  // namespace xgrad
