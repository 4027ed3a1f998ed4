// Shape ops: reshape, expand, squeeze/unsqueeze, flatten, transpose/permute/t, slice, index_select,
// cat and stack, forward and backward side by side. Values are always contiguous, so these produce
// new contiguous tensors (strided copies, never element-by-element multi-index arithmetic).
#include <cmath>
#include <numeric>

#include "../detail/axis_split.hpp"
#include "../detail/elementwise.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

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
  // JVP: the tangent reshaped the same way (reshape, flatten, squeeze, unsqueeze, expand to the same shape)
  record_jvp(op, out, {&t}, [&](Tangents tt) { return reshape(tt[0], tangent_shape(shape)); }, JvpBatching::Aware);
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
    Array<T> o = empty_array<T>(out, "expand");
    BroadcastPlan plan = plan_broadcast("expand", in, out);
    const T zero = 0;
    broadcast_apply(x.data(), &zero, o.data(), BroadcastPlan{plan.out, plan.stride_a, std::vector<std::ptrdiff_t>(out.size(), 0)},
                    [](T v, T) { return v; });
    return make_tensor(std::move(o));
  });
  if (auto node = record<ExpandBackward>(result, {&t})) node->input_shape = in;
  // JVP: the tangent expanded the same way
  record_jvp("expand", result, {&t}, [&](Tangents tt) { return expand_tangent(tt[0], out); }, JvpBatching::Aware);
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

// ---- Strided copies: permute, transpose, slice, cat, stack ----------------------------------------
namespace {

using Strides = std::vector<std::ptrdiff_t>;

Strides contiguous_strides(const Shape& s) {
  Strides st(s.size());
  std::ptrdiff_t stride = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    st[i] = stride;
    stride *= static_cast<std::ptrdiff_t>(s[i]);
  }
  return st;
}

// dst[Σ i_d·dst_strides[d]] = src[Σ i_d·src_strides[d]] for every multi-index i of `shape`.
// Dims of size 1 are dropped and dims adjacent in both layouts are merged first, so a permute of a
// contiguous block becomes a 2-D (or 3-D...) problem. The innermost loop is then a plain run (both
// strides 1), a cache-blocked transpose (the source's unit-stride dim lies elsewhere), or a strided
// run; the multi-index of the outer dims advances incrementally, once per run or block.
template <class T>
void strided_copy(const T* src, T* dst, const Shape& shape, const Strides& src_strides, const Strides& dst_strides) {
  Shape n;
  Strides ss, ds;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return;
    if (shape[d] == 1) continue;
    if (!n.empty() && ss.back() == src_strides[d] * static_cast<std::ptrdiff_t>(shape[d]) &&
        ds.back() == dst_strides[d] * static_cast<std::ptrdiff_t>(shape[d])) {
      n.back() *= shape[d];
      ss.back() = src_strides[d];
      ds.back() = dst_strides[d];
      continue;
    }
    n.push_back(shape[d]);
    ss.push_back(src_strides[d]);
    ds.push_back(dst_strides[d]);
  }
  if (n.empty()) {
    dst[0] = src[0];
    return;
  }
  const std::size_t last = n.size() - 1;
  // A dim other than the last along which the source is contiguous: transpose in tiles over it.
  std::size_t tile_dim = last;
  if (ss[last] != 1 && ds[last] == 1)
    for (std::size_t d = 0; d < last; ++d)
      if (ss[d] == 1) tile_dim = d;

  std::vector<std::size_t> outer_dims;
  for (std::size_t d = 0; d < last; ++d)
    if (d != tile_dim) outer_dims.push_back(d);
  std::size_t outer_count = 1;
  for (std::size_t d : outer_dims) outer_count *= n[d];

  const std::size_t len = n[last];
  const std::ptrdiff_t s_in = ss[last], s_out = ds[last];
  std::vector<std::size_t> idx(outer_dims.size(), 0);
  std::ptrdiff_t so = 0, doff = 0;
  for (std::size_t it = 0; it < outer_count; ++it) {
    const T* s = src + so;
    T* d = dst + doff;
    if (tile_dim != last) {
      // 8 x 8 tiles: a taller tile reads more rows of a power-of-two stride than one L1 set holds
      // (measured on 1024 x 1024: 8 -> 0.7 ms, 32 -> 3 ms).
      constexpr std::size_t kTile = 8;
      const std::size_t rows = n[tile_dim];
      const std::ptrdiff_t row_out = ds[tile_dim];  // the source's stride along tile_dim is 1
      for (std::size_t r0 = 0; r0 < rows; r0 += kTile) {
        const std::size_t r1 = std::min(rows, r0 + kTile);
        for (std::size_t c0 = 0; c0 < len; c0 += kTile) {
          const std::size_t c1 = std::min(len, c0 + kTile);
          for (std::size_t r = r0; r < r1; ++r) {
            T* drow = d + static_cast<std::ptrdiff_t>(r) * row_out;
            const T* scol = s + r;
            for (std::size_t c = c0; c < c1; ++c) drow[c] = scol[static_cast<std::ptrdiff_t>(c) * s_in];
          }
        }
      }
    } else if (s_in == 1 && s_out == 1) {
      std::copy(s, s + len, d);
    } else {
      for (std::size_t c = 0; c < len; ++c)
        d[static_cast<std::ptrdiff_t>(c) * s_out] = s[static_cast<std::ptrdiff_t>(c) * s_in];
    }
    for (std::size_t k = outer_dims.size(); k-- > 0;) {
      const std::size_t dim = outer_dims[k];
      so += ss[dim];
      doff += ds[dim];
      if (++idx[k] < n[dim]) break;
      so -= ss[dim] * static_cast<std::ptrdiff_t>(n[dim]);
      doff -= ds[dim] * static_cast<std::ptrdiff_t>(n[dim]);
      idx[k] = 0;
    }
  }
}

// A new tensor of `out_shape` whose element i is t's element at offset + Σ i_d·src_strides[d].
Tensor gather_strided(const Tensor& t, const Shape& out_shape, std::ptrdiff_t offset, const Strides& src_strides) {
  return dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> out = empty_array<T>(out_shape);
    // Nothing to copy from a 0-element source (its data pointer may be null: no offset into it).
    if (out.size() > 0)
      strided_copy(arr<T>(t).data() + offset, out.data(), out_shape, src_strides, contiguous_strides(out_shape));
    return make_tensor(std::move(out));
  });
}

std::string dims_str(const std::vector<int>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// permute: output dim i is input dim perm[i]; the backward applies the inverse permutation.
Tensor permute_impl(const Tensor& t, const std::vector<std::size_t>& perm);

struct PermuteBackward : OpNode {
  explicit PermuteBackward(const char* name) : OpNode(name) {}
  std::vector<std::size_t> inverse;
  TensorList apply(TensorList&& g) override { return {permute_impl(g[0], inverse)}; }
};

Tensor permute_values(const Tensor& t, const std::vector<std::size_t>& perm) {
  const Shape in = t.shape();
  const Strides in_strides = contiguous_strides(in);
  Shape out(perm.size());
  Strides src(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    out[i] = in[perm[i]];
    src[i] = in_strides[perm[i]];
  }
  return gather_strided(t, out, 0, src);
}

Tensor permute_recorded(const char* node_name, const Tensor& t, const std::vector<std::size_t>& perm) {
  Tensor out = permute_values(t, perm);
  if (auto node = record<PermuteBackward>(out, {&t}, node_name)) {
    node->inverse.resize(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) node->inverse[perm[i]] = i;
  }
  return out;
}
Tensor permute_impl(const Tensor& t, const std::vector<std::size_t>& perm) {
  return permute_recorded("PermuteBackward", t, perm);
}

// ---- slice and its adjoint, slice_backward (zeros with the slice written in) ----------------------
struct SliceSpec {
  std::size_t axis = 0, start = 0, count = 0, step = 1;
};

Tensor slice_impl(const Tensor& t, const SliceSpec& s);
Tensor slice_backward_impl(const Tensor& g, const Shape& input_shape, const SliceSpec& s);

struct SliceBackward : OpNode {
  SliceBackward() : OpNode("SliceBackward") {}
  Shape input_shape;
  SliceSpec spec;
  TensorList apply(TensorList&& g) override { return {slice_backward_impl(g[0], input_shape, spec)}; }
};

struct SliceBackwardBackward : OpNode {
  SliceBackwardBackward() : OpNode("SliceBackwardBackward") {}
  SliceSpec spec;
  TensorList apply(TensorList&& g) override { return {slice_impl(g[0], spec)}; }
};

// The strides and offset of a slice, seen from the full tensor.
Strides sliced_strides(const Shape& full, const SliceSpec& s, std::ptrdiff_t* offset) {
  Strides st = contiguous_strides(full);
  // An empty slice may start at the end; no element is read, so keep the pointer inside the array.
  *offset = s.count == 0 ? 0 : static_cast<std::ptrdiff_t>(s.start) * st[s.axis];
  st[s.axis] *= static_cast<std::ptrdiff_t>(s.step);
  return st;
}

Tensor slice_impl(const Tensor& t, const SliceSpec& s) {
  const Shape in = t.shape();
  Shape out = in;
  out[s.axis] = s.count;
  std::ptrdiff_t offset = 0;
  const Strides src = sliced_strides(in, s, &offset);
  Tensor result = gather_strided(t, out, offset, src);
  if (auto node = record<SliceBackward>(result, {&t})) {
    node->input_shape = in;
    node->spec = s;
  }
  return result;
}

Tensor slice_backward_impl(const Tensor& g, const Shape& input_shape, const SliceSpec& s) {
  std::ptrdiff_t offset = 0;
  const Strides dst = sliced_strides(input_shape, s, &offset);
  const Shape gs = g.shape();
  Tensor out = dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(input_shape);
    std::fill(o.data(), o.data() + o.size(), T(0));
    strided_copy(arr<T>(g).data(), o.data() + offset, gs, contiguous_strides(gs), dst);
    return make_tensor(std::move(o));
  });
  if (auto node = record<SliceBackwardBackward>(out, {&g})) node->spec = s;
  return out;
}

// ---- index_select and its adjoint, index_add into zeros -------------------------------------------

Tensor index_select_impl(const Tensor& t, std::size_t axis, const IndexList& index, const Shape& out_shape);
Tensor index_add_zeros(const Tensor& g, std::size_t axis, const IndexList& index, const Shape& input_shape);

struct IndexSelectBackward : OpNode {
  IndexSelectBackward() : OpNode("IndexSelectBackward") {}
  std::size_t axis = 0;
  IndexList index;
  Shape input_shape;
  TensorList apply(TensorList&& g) override { return {index_add_zeros(g[0], axis, index, input_shape)}; }
};

struct IndexAddBackward : OpNode {
  IndexAddBackward() : OpNode("IndexAddBackward") {}
  std::size_t axis = 0;
  IndexList index;
  Shape grad_shape;
  TensorList apply(TensorList&& g) override { return {index_select_impl(g[0], axis, index, grad_shape)}; }
};

// out[o, i, :] = t[o, index[i], :], one contiguous run of `inner` values per selected index.
Tensor index_select_impl(const Tensor& t, std::size_t axis, const IndexList& index, const Shape& out_shape) {
  const Shape in = t.shape();
  const AxisSplit a = split_at(in, axis);
  const std::vector<std::size_t>& idx = *index;
  Tensor out = dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = arr<T>(t).data();
    Array<T> o = empty_array<T>(out_shape);
    T* po = o.data();
    for (std::size_t r = 0; r < a.outer; ++r) {
      const T* block = px + r * a.n * a.inner;
      for (std::size_t i = 0; i < idx.size(); ++i, po += a.inner) {
        const T* run = block + idx[i] * a.inner;
        std::copy(run, run + a.inner, po);
      }
    }
    return make_tensor(std::move(o));
  });
  if (auto node = record<IndexSelectBackward>(out, {&t})) {
    node->axis = axis;
    node->index = index;
    node->input_shape = in;
  }
  return out;
}

// out = zeros(input_shape); out[o, index[i], :] += g[o, i, :]. Repeated indices add up.
Tensor index_add_zeros(const Tensor& g, std::size_t axis, const IndexList& index, const Shape& input_shape) {
  const AxisSplit a = split_at(input_shape, axis);
  const std::vector<std::size_t>& idx = *index;
  Tensor out = dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pg = arr<T>(g).data();
    Array<T> o = empty_array<T>(input_shape);
    std::fill(o.data(), o.data() + o.size(), T(0));
    T* po = o.data();
    for (std::size_t r = 0; r < a.outer; ++r) {
      T* block = po + r * a.n * a.inner;
      for (std::size_t i = 0; i < idx.size(); ++i, pg += a.inner) {
        T* run = block + idx[i] * a.inner;
#pragma omp simd
        for (std::size_t j = 0; j < a.inner; ++j) run[j] += pg[j];
      }
    }
    return make_tensor(std::move(o));
  });
  if (auto node = record<IndexAddBackward>(out, {&g})) {
    node->axis = axis;
    node->index = index;
    node->grad_shape = g.shape();
  }
  return out;
}

// Reads integral index values held in a float tensor; anything else is an error naming the value.
IndexList read_indices(const char* op, const Tensor& indices, std::size_t size, int dim) {
  checked(indices, op, "indices");
  if (indices.dim() > 1)
    fail(op, ": indices must be a 1-D (or 0-d) tensor, got shape ", shape_str(indices.shape()));
  auto out = std::make_shared<std::vector<std::size_t>>(indices.numel());
  dispatch(indices.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = arr<T>(indices).data();
    for (std::size_t i = 0; i < out->size(); ++i) {
      const double v = static_cast<double>(p[i]);
      if (!(v == std::floor(v)))  // also catches NaN and ±inf
        fail(op, ": index ", v, " (position ", i, ") is not an integer; indices must hold integral values");
      if (v < 0 || v >= static_cast<double>(size))
        fail(op, ": index ", static_cast<std::int64_t>(v), " (position ", i, ") is out of range for dimension ", dim,
             " of size ", size);
      (*out)[i] = static_cast<std::size_t>(v);
    }
  });
  return out;
}

// ---- cat and stack ----------------------------------------------------------------------------
struct CatBackward : OpNode {
  CatBackward() : OpNode("CatBackward") {}
  std::size_t axis = 0;
  std::vector<Shape> shapes;          // each input's shape
  std::vector<std::size_t> offsets;   // where each input starts along axis
  std::vector<bool> skipped;          // legacy 1-D empty inputs, which take no part in the result
  TensorList apply(TensorList&& g) override {
    TensorList out(shapes.size());
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      if (!needs_input_grad(i)) continue;
      if (skipped[i]) {
        out[i] = zeros(shapes[i], g[0].dtype());
        continue;
      }
      out[i] = slice_impl(g[0], SliceSpec{axis, offsets[i], shapes[i][axis], 1});
    }
    return out;
  }
};

struct StackBackward : OpNode {
  StackBackward() : OpNode("StackBackward") {}
  std::size_t axis = 0;
  Shape input_shape;
  TensorList apply(TensorList&& g) override {
    // unbind: input i gets slice i of the stacked axis, with that axis squeezed away.
    TensorList out(num_inputs());
    for (std::size_t i = 0; i < out.size(); ++i)
      if (needs_input_grad(i)) out[i] = reshape(slice_impl(g[0], SliceSpec{axis, i, 1, 1}), as_i64(input_shape));
    return out;
  }
};

void check_list(const char* op, const std::vector<Tensor>& tensors) {
  if (tensors.empty()) fail(op, ": expected a non-empty list of tensors");
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) fail(op, ": tensor ", i, " in the list is undefined");
    if (tensors[i].dtype() != tensors[0].dtype())
      fail(op, ": expected all tensors to have the same dtype, but tensor 0 is ", tensors[0].dtype(), " and tensor ", i,
           " is ", tensors[i].dtype(), "; convert with .to(dtype)");
  }
}

// Copies each input into its place in `out`: input i starts at element offsets[i] of the output and
// walks it with the output strides `dst` (of the input's rank).
Tensor assemble(const std::vector<Tensor>& inputs, const Shape& out_shape, const std::vector<std::ptrdiff_t>& offsets,
                const Strides& dst, const std::vector<bool>& skip) {
  return dispatch(inputs[0].dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> o = empty_array<T>(out_shape);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      // Empty inputs have nothing to copy (and their, or an empty output's, data() may be null).
      if (skip[i] || inputs[i].numel() == 0) continue;
      const Shape s = inputs[i].shape();
      strided_copy(arr<T>(inputs[i]).data(), o.data() + offsets[i], s, contiguous_strides(s), dst);
    }
    return make_tensor(std::move(o));
  });
}

}  // namespace

Tensor flatten(const Tensor& t, int start_dim, int end_dim) {
  checked(t, "flatten");
  const Shape in = t.shape();
  const std::size_t start = wrap_dim("flatten", start_dim, in.size());
  const std::size_t end = wrap_dim("flatten", end_dim, in.size());
  if (in.empty()) return reshape(t, {1});  // a 0-d tensor flattens to one element, as in PyTorch
  if (start > end)
    fail("flatten: start_dim (", start_dim, ") cannot come after end_dim (", end_dim, ") for a tensor of shape ",
         shape_str(in));
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < start; ++i) out.push_back(static_cast<std::int64_t>(in[i]));
  std::int64_t merged = 1;
  for (std::size_t i = start; i <= end; ++i) merged *= static_cast<std::int64_t>(in[i]);
  out.push_back(merged);
  for (std::size_t i = end + 1; i < in.size(); ++i) out.push_back(static_cast<std::int64_t>(in[i]));
  return reshape(t, out);
}

Tensor permute(const Tensor& t, const std::vector<int>& dims) {
  checked(t, "permute");
  const std::size_t rank = static_cast<std::size_t>(t.dim());
  if (dims.size() != rank)
    fail("permute: dims ", dims_str(dims), " must name each of the ", rank, " dimensions of the input (shape ",
         shape_str(t.shape()), ") exactly once");
  std::vector<std::size_t> perm(rank);
  std::vector<bool> seen(rank, false);
  for (std::size_t i = 0; i < rank; ++i) {
    perm[i] = wrap_dim("permute", dims[i], rank);
    if (seen[perm[i]])
      fail("permute: dims ", dims_str(dims), " is not a permutation: dim ", dims[i], " is repeated (input shape ",
           shape_str(t.shape()), ")");
    seen[perm[i]] = true;
  }
  return permute_impl(t, perm);
}

Tensor transpose(const Tensor& t, int dim0, int dim1) {
  checked(t, "transpose");
  const std::size_t rank = static_cast<std::size_t>(t.dim());
  const std::size_t d0 = wrap_dim("transpose", dim0, rank);
  const std::size_t d1 = wrap_dim("transpose", dim1, rank);
  std::vector<std::size_t> perm(rank);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (rank > 0) std::swap(perm[d0], perm[d1]);
  return permute_recorded("TransposeBackward", t, perm);
}

Tensor t(const Tensor& x) {
  checked(x, "t");
  if (x.dim() > 2)
    fail("t: expects a tensor with <= 2 dimensions, but the input is ", x.dim(), "-D (shape ", shape_str(x.shape()),
         "); use transpose(dim0, dim1) or permute");
  return transpose(x, 0, x.dim() < 2 ? 0 : 1);
}

Tensor slice(const Tensor& t, int dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  checked(t, "slice");
  const Shape in = t.shape();
  if (in.empty()) fail("slice: cannot be applied to a 0-d tensor");
  const std::size_t axis = wrap_dim("slice", dim, in.size());
  if (step <= 0) fail("slice: step must be positive, got ", step);
  const auto size = static_cast<std::int64_t>(in[axis]);
  // Python slicing: negative bounds count from the end, then both clamp to [0, size].
  auto clamp_bound = [size](std::int64_t b) { return std::clamp(b < 0 ? b + size : b, std::int64_t{0}, size); };
  const std::int64_t lo = clamp_bound(start);
  const std::int64_t hi = std::max(lo, clamp_bound(end));
  const auto count = static_cast<std::size_t>((hi - lo + step - 1) / step);
  return slice_impl(t, SliceSpec{axis, static_cast<std::size_t>(lo), count, static_cast<std::size_t>(step)});
}

Tensor index_select(const Tensor& t, int dim, const Tensor& indices) {
  checked(t, "index_select");
  const Shape in = t.shape();
  const std::size_t axis = wrap_dim("index_select", dim, in.size());
  const std::size_t size = in.empty() ? 1 : in[axis];
  IndexList index = read_indices("index_select", indices, size, dim);
  Shape out = in;
  if (in.empty()) {
    if (index->size() != 1)
      fail("index_select: a 0-d input takes exactly one index, got ", index->size());
  } else {
    out[axis] = index->size();
  }
  return index_select_impl(t, axis, index, out);
}

Tensor cat(const std::vector<Tensor>& tensors, int dim) {
  check_list("cat", tensors);
  // PyTorch's legacy rule: 1-D tensors of size 0 are skipped, whatever the others' shapes.
  std::vector<bool> skip(tensors.size());
  std::size_t ref = tensors.size();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    skip[i] = tensors[i].shape() == Shape{0};
    if (!skip[i] && ref == tensors.size()) ref = i;
  }
  if (ref == tensors.size()) {  // every input is a 1-D empty tensor
    std::fill(skip.begin(), skip.end(), false);
    ref = 0;
  }
  const Shape base = tensors[ref].shape();
  if (base.empty()) fail("cat: zero-dimensional tensor (at position ", ref, ") cannot be concatenated");
  const std::size_t axis = wrap_dim("cat", dim, base.size());
  Shape out = base;
  out[axis] = 0;
  std::vector<std::size_t> offsets(tensors.size(), 0);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (skip[i]) continue;
    const Shape s = tensors[i].shape();
    if (s.empty()) fail("cat: zero-dimensional tensor (at position ", i, ") cannot be concatenated");
    bool match = s.size() == base.size();
    for (std::size_t d = 0; match && d < s.size(); ++d) match = d == axis || s[d] == base[d];
    if (!match)
      fail("cat: sizes of tensors must match except in dimension ", dim, ", but tensor ", ref, " has shape ",
           shape_str(base), " and tensor ", i, " has shape ", shape_str(s));
    offsets[i] = out[axis];
    out[axis] += s[axis];
  }
  const Strides dst = contiguous_strides(out);
  std::vector<std::ptrdiff_t> starts(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) starts[i] = static_cast<std::ptrdiff_t>(offsets[i]) * dst[axis];
  Tensor result = assemble(tensors, out, starts, dst, skip);
  if (auto node = record_list<CatBackward>(result, tensors)) {
    node->axis = axis;
    node->offsets = std::move(offsets);
    node->skipped = std::move(skip);
    for (const Tensor& x : tensors) node->shapes.push_back(x.shape());
  }
  return result;
}

Tensor stack(const std::vector<Tensor>& tensors, int dim) {
  check_list("stack", tensors);
  const Shape base = tensors[0].shape();
  for (std::size_t i = 1; i < tensors.size(); ++i)
    if (tensors[i].shape() != base)
      fail("stack: expects each tensor to be equal size, but tensor 0 has shape ", shape_str(base), " and tensor ", i,
           " has shape ", shape_str(tensors[i].shape()));
  const std::size_t axis = wrap_dim("stack", dim, base.size() + 1);
  Shape out = base;
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(axis), tensors.size());
  const Strides out_strides = contiguous_strides(out);
  // Input i fills slot i of the new axis: walk the output strides without that axis.
  Strides dst = out_strides;
  dst.erase(dst.begin() + static_cast<std::ptrdiff_t>(axis));
  std::vector<std::ptrdiff_t> starts(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) starts[i] = static_cast<std::ptrdiff_t>(i) * out_strides[axis];
  Tensor result = assemble(tensors, out, starts, dst, std::vector<bool>(tensors.size(), false));
  if (auto node = record_list<StackBackward>(result, tensors)) {
    node->axis = axis;
    node->input_shape = base;
  }
  return result;
}

Tensor Tensor::reshape(const std::vector<std::int64_t>& shape) const { return xgrad::reshape(*this, shape); }
Tensor Tensor::expand(const std::vector<std::int64_t>& shape) const { return xgrad::expand(*this, shape); }
Tensor Tensor::squeeze(int dim) const { return xgrad::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int dim) const { return xgrad::unsqueeze(*this, dim); }

Tensor Tensor::flatten(int start_dim, int end_dim) const { return xgrad::flatten(*this, start_dim, end_dim); }
Tensor Tensor::transpose(int dim0, int dim1) const { return xgrad::transpose(*this, dim0, dim1); }
Tensor Tensor::permute(const std::vector<int>& dims) const { return xgrad::permute(*this, dims); }
Tensor Tensor::t() const { return xgrad::t(*this); }
Tensor Tensor::slice(int dim, std::int64_t start, std::int64_t end, std::int64_t step) const {
  return xgrad::slice(*this, dim, start, end, step);
}
Tensor Tensor::index_select(int dim, const Tensor& indices) const { return xgrad::index_select(*this, dim, indices); }

}  // namespace xgrad
