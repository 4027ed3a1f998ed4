// Linear algebra on BLAS: mm (op(a)·op(b), batched with broadcast batch dims), PyTorch's matmul built
// on it, and linear (x·wᵀ + b as one GEMM). Transposes are always passed to BLAS as flags, in forward
// and in backward, so no transposed copy is ever made. Backward formulas are mm calls themselves,
// so every op here is differentiable again.
// The GEMM itself is detail/gemm.hpp.
#include <climits>

#include "../detail/elementwise.hpp"
#include "../detail/gemm.hpp"

namespace xgrad {

using namespace detail;
using autograd::TensorList;

namespace {

void check_blas_size(const char* op, std::size_t v, const Tensor& a, const Tensor& b) {
  if (v > static_cast<std::size_t>(INT_MAX))
    fail(op, ": a matrix dimension of ", v, " exceeds what BLAS can index (shapes ", shapes_str(a, b), ")");
}

std::string operand_str(const Shape& s, bool transposed) {
  return shape_str(s) + (transposed ? " (transposed)" : "");
}

// ---- mm ------------------------------------------------------------------------------------------
struct MmBackward : OpNode {
  MmBackward(bool ta, bool tb) : OpNode("MmBackward"), ta(ta), tb(tb) {}
  bool ta, tb;
  SavedTensor a, b;
  Shape a_shape, b_shape;
  TensorList apply(TensorList&& g) override {
    const Tensor& G = g[0];
    Tensor ga, gb;
    // C = op(A)·op(B)  =>  d op(A) = G·op(B)ᵀ,  d op(B) = op(A)ᵀ·G; a transposed operand takes the
    // transpose of that, which is again one GEMM with flags. Broadcast batch dims are summed back.
    if (needs_input_grad(0)) {
      Tensor B = b.unpack(this);
      ga = sum_to(!ta ? mm(G, B, false, !tb) : mm(B, G, tb, true), a_shape);
    }
    if (needs_input_grad(1)) {
      Tensor A = a.unpack(this);
      gb = sum_to(!tb ? mm(A, G, !ta, false) : mm(G, A, true, ta), b_shape);
    }
    return {ga, gb};
  }
  void release_variables() override {
    a.reset();
    b.reset();
  }
};

// op(A)·op(Ṫ) for a tangent Ṫ of the right operand. A batched tangent of one column (a matrix times a
// batch of vectors: Jacobians of W·x) is one GEMM, Ṫᵀ·op(A)ᵀ, instead of a GEMV per batch entry.
Tensor mm_right_tangent(const Tensor& a, const Tensor& tb, bool ta, bool tb_flag, std::size_t out_rank) {
  const std::int64_t batch = tangent_batch();
  if (batch && a.dim() == 2 && tb.dim() == 3) {
    const Shape s = tb.shape();
    const std::size_t n = tb_flag ? s[1] : s[2];
    if (n == 1) {
      const auto k = static_cast<std::int64_t>(tb_flag ? s[2] : s[1]);
      const auto m = static_cast<std::int64_t>(ta ? a.shape()[1] : a.shape()[0]);
      return reshape(mm(reshape(tb, {batch, k}), a, false, !ta), {batch, m, 1});
    }
  }
  return mm(a, align_tangent(tb, out_rank), ta, tb_flag);
}

// The forward of mm under the name `op` (mm or matmul), for operands of rank >= 2 whose last two
// dims are matrices and whose leading dims broadcast.
Tensor mm_op(const char* op, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_same_dtype(op, a, b);
  const Shape sa = a.shape(), sb = b.shape();
  if (sa.size() < 2 || sb.size() < 2)
    fail(op, ": expected matrices or batches of matrices (rank >= 2), got shapes ", shapes_str(a, b));
  const std::size_t ra = sa[sa.size() - 2], ca = sa.back();
  const std::size_t rb = sb[sb.size() - 2], cb = sb.back();
  const std::size_t m = ta ? ca : ra, k = ta ? ra : ca;
  const std::size_t kb = tb ? cb : rb, n = tb ? rb : cb;
  if (k != kb)
    fail(op, ": shapes ", operand_str(sa, ta), " and ", operand_str(sb, tb), " cannot be multiplied (", k,
         " != ", kb, ")");
  for (std::size_t v : {ra, ca, rb, cb}) check_blas_size(op, v, a, b);

  const Shape batch_a(sa.begin(), sa.end() - 2), batch_b(sb.begin(), sb.end() - 2);
  // Broadcast strides counted in matrices (plan_broadcast also reports incompatible batch dims).
  const BroadcastPlan plan = plan_broadcast(op, batch_a, batch_b);
  const std::size_t batches = numel_of(plan.out);
  Shape out_shape = plan.out;
  out_shape.push_back(m);
  out_shape.push_back(n);

  Tensor out = dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = arr<T>(a).data();
    const T* pb = arr<T>(b).data();
    Array<T> c = empty_array<T>(out_shape);
    T* pc = c.data();
    if (numel_of(batch_b) == 1 && !ta) {
      // One matrix on the right: the batch of a is a taller matrix, one GEMM for all of it. The
      // output's batch order equals a's, since b's batch dims are all 1.
      check_blas_size(op, batches * m, a, b);
      gemm<T>(false, tb, batches * m, n, k, pa, ca, pb, cb, T(0), pc, n);
      return make_tensor(std::move(c));
    }
    const std::size_t rank = plan.out.size();
    std::vector<std::size_t> idx(rank, 0);
    std::ptrdiff_t oa = 0, ob = 0;  // offsets in matrices
    const std::size_t size_a = ra * ca, size_b = rb * cb;
    for (std::size_t i = 0; i < batches; ++i) {
      gemm<T>(ta, tb, m, n, k, pa + static_cast<std::size_t>(oa) * size_a, ca, pb + static_cast<std::size_t>(ob) * size_b,
              cb, T(0), pc + i * m * n, n);
      for (std::size_t d = rank; d-- > 0;) {  // odometer over the broadcast batch index
        oa += plan.stride_a[d];
        ob += plan.stride_b[d];
        if (++idx[d] < plan.out[d]) break;
        oa -= plan.stride_a[d] * static_cast<std::ptrdiff_t>(plan.out[d]);
        ob -= plan.stride_b[d] * static_cast<std::ptrdiff_t>(plan.out[d]);
        idx[d] = 0;
      }
    }
    return make_tensor(std::move(c));
  });
  if (auto node = record<MmBackward>(out, {&a, &b}, ta, tb)) {
    node->a_shape = sa;
    node->b_shape = sb;
    if (node->needs_input_grad(0)) node->b.save_input(b);
    if (node->needs_input_grad(1)) node->a.save_input(a);
  }
  // JVP: op(Ȧ)·op(B) + op(A)·op(Ḃ)
  record_jvp(op, out, {&a, &b}, [&](Tangents t) {
    const std::size_t rank = out_shape.size();
    Tensor r;
    if (t[0].defined()) r = mm(align_tangent(t[0], rank), b, ta, tb);
    if (t[1].defined()) r = add_tangents(r, mm_right_tangent(a, t[1], ta, tb, rank));
    return expand_tangent(r, out_shape);
  }, JvpBatching::Aware);
  return out;
}

// ---- linear --------------------------------------------------------------------------------------
struct LinearBackward : OpNode {
  LinearBackward() : OpNode("LinearBackward") {}
  SavedTensor x, weight;
  Shape x_shape;
  std::size_t rows = 0;  // product of x's leading dims
  TensorList apply(TensorList&& g) override {
    const Tensor& G = g[0];  // x_shape[:-1] + [out]
    if (fused_backward() && x_shape.size() == 2 && G.dim() == 2) return fused(G);
    Tensor gx, gw, gb;
    // y = x·Wᵀ + b  =>  dx = G·W,  dW = Gᵀ·X over the flattened rows,  db = column sums of G.
    if (needs_input_grad(0)) gx = matmul(G, weight.unpack(this));
    if (needs_input_grad(1)) {
      Tensor X = x.unpack(this);
      if (x_shape.size() == 2) {
        gw = mm(G, X, true, false);
      } else {
        const auto r = static_cast<std::int64_t>(rows);
        gw = mm(reshape(G, {r, static_cast<std::int64_t>(G.shape().back())}),
                reshape(X, {r, static_cast<std::int64_t>(x_shape.back())}), true, false);
      }
    }
    if (needs_input_grad(2)) {
      if (x_shape.size() == 1) {
        gb = G;
      } else {
        std::vector<int> lead(x_shape.size() - 1);
        for (std::size_t d = 0; d < lead.size(); ++d) lead[d] = static_cast<int>(d);
        gb = sum(G, lead);
      }
    }
    return {gx, gw, gb};
  }
  void release_variables() override {
    x.reset();
    weight.reset();
  }

  // The same three results for a 2-D input straight from the saved arrays: the two GEMMs of the
  // general path with the same flags, and the column sums of G in the order sum() adds them.
  TensorList fused(const Tensor& G) {
    return dispatch(G.dtype(), [&](auto tag) -> TensorList {
      using T = decltype(tag);
      const Array<T>& g = arr<T>(G);
      const std::size_t n = x_shape[0], in = x_shape[1], out = g.shape()[1];
      Tensor gx, gw, gb;
      if (needs_input_grad(0)) {  // dx = G·W
        Array<T> r = empty_array<T>(x_shape);
        gemm<T>(false, false, n, in, out, g.data(), out, weight.value<T>(this).data(), in, T(0), r.data(), in);
        gx = make_tensor(std::move(r));
      }
      if (needs_input_grad(1)) {  // dW = Gᵀ·X
        Array<T> r = empty_array<T>(Shape{out, in});
        gemm<T>(true, false, out, in, n, g.data(), out, x.value<T>(this).data(), in, T(0), r.data(), in);
        gw = make_tensor(std::move(r));
      }
      if (needs_input_grad(2)) {  // db = Σ over rows of G
        Array<T> r = empty_array<T>(Shape{out});
        T* pb = r.data();
        std::fill(pb, pb + out, T(0));
        for (std::size_t i = 0; i < n; ++i) {
          const T* row = g.data() + i * out;
#pragma omp simd
          for (std::size_t j = 0; j < out; ++j) pb[j] += row[j];
        }
        gb = make_tensor(std::move(r));
      }
      return {std::move(gx), std::move(gw), std::move(gb)};
    });
  }
};

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  return mm_op("mm", a, b, transpose_a, transpose_b);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_dtype("matmul", a, b);
  const Shape sa = a.shape(), sb = b.shape();
  if (sa.empty() || sb.empty())
    fail("matmul: both arguments need to be at least 1-D, but got shapes ", shapes_str(a, b));
  const std::size_t ka = sa.back();
  const std::size_t kb = sb.size() == 1 ? sb[0] : sb[sb.size() - 2];
  if (ka != kb) fail("matmul: shapes ", shapes_str(a, b), " cannot be multiplied (", ka, " != ", kb, ")");
  const auto k = static_cast<std::int64_t>(ka);

  // The 1-D promotions: a vector becomes a one-row (left) or one-column (right) matrix, and the
  // added dim is removed from the result, as in PyTorch.
  if (sa.size() == 1 && sb.size() == 1) return reshape(mm_op("matmul", reshape(a, {1, k}), reshape(b, {k, 1}), false, false), {});
  if (sb.size() == 1) {
    Shape out = sa;
    out.pop_back();
    return reshape(mm_op("matmul", a, reshape(b, {k, 1}), false, false), as_i64(out));
  }
  if (sa.size() == 1) {
    Shape out = sb;
    out.erase(out.end() - 2);
    return reshape(mm_op("matmul", reshape(a, {1, k}), b, false, false), as_i64(out));
  }
  return mm_op("matmul", a, b, false, false);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  checked(x, "linear", "input");
  checked(weight, "linear", "weight");
  const Shape sx = x.shape(), sw = weight.shape();
  const Shape sbias = bias.defined() ? bias.shape() : Shape{};
  auto shapes = [&] {
    return concat("input shape ", shape_str(sx), ", weight shape ", shape_str(sw), ", bias ",
                  bias.defined() ? "shape " + shape_str(sbias) : std::string("undefined"));
  };
  if (weight.dtype() != x.dtype() || (bias.defined() && bias.dtype() != x.dtype()))
    fail("linear: dtype mismatch, input ", x.dtype(), ", weight ", weight.dtype(),
         bias.defined() ? concat(", bias ", bias.dtype()) : std::string(), " (", shapes(),
         "); convert with .to(dtype)");
  if (sx.empty()) fail("linear: input must have at least 1 dimension (", shapes(), ")");
  if (sw.size() != 2) fail("linear: weight must be a matrix (out_features x in_features) (", shapes(), ")");
  const std::size_t in = sw[1], out_f = sw[0];
  if (sx.back() != in)
    fail("linear: input features (", sx.back(), ") do not match weight.shape[1] (", in, ") (", shapes(), ")");
  if (bias.defined() && (sbias.size() != 1 || sbias[0] != out_f))
    fail("linear: bias must have shape [", out_f, "] (", shapes(), ")");
  for (std::size_t v : {in, out_f}) check_blas_size("linear", v, x, weight);

  std::size_t rows = 1;
  for (std::size_t d = 0; d + 1 < sx.size(); ++d) rows *= sx[d];
  check_blas_size("linear", rows, x, weight);
  Shape out_shape(sx.begin(), sx.end() - 1);
  out_shape.push_back(out_f);

  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> c = empty_array<T>(out_shape);
    T* pc = c.data();
    T beta = T(0);
    if (bias.defined()) {  // C starts as b in every row; the GEMM adds x·Wᵀ on top (beta = 1)
      const T* pb = arr<T>(bias).data();
      for (std::size_t r = 0; r < rows; ++r) std::copy(pb, pb + out_f, pc + r * out_f);
      beta = T(1);
    }
    // x is contiguous, so its leading dims flattened are a rows×in matrix, read in place.
    gemm<T>(false, true, rows, out_f, in, arr<T>(x).data(), in, arr<T>(weight).data(), in, beta, pc, out_f);
    return make_tensor(std::move(c));
  });
  if (auto node = record<LinearBackward>(out, {&x, &weight, &bias})) {
    node->x_shape = sx;
    node->rows = rows;
    if (node->needs_input_grad(0)) node->weight.save_input(weight);
    if (node->needs_input_grad(1)) node->x.save_input(x);
  }
  // JVP: ẋ·Wᵀ + x·Ẇᵀ + ḃ
  record_jvp("linear", out, {&x, &weight, &bias}, [&](Tangents t) {
    Tensor r;
    if (t[0].defined()) r = linear(t[0], weight);
    if (t[1].defined()) {
      Tensor tw = t[1];
      r = add_tangents(r, sx.size() == 1 ? matmul(x, transpose(tw, -1, -2))
                                         : mm(x, align_tangent(tw, sx.size()), false, true));
    }
    if (t[2].defined()) r = add_tangents(r, expand_tangent(t[2], out_shape));
    return expand_tangent(r, out_shape);
  }, JvpBatching::Aware);
  return out;
}

Tensor Tensor::matmul(const Tensor& other) const { return xgrad::matmul(*this, other); }

}  // namespace xgrad
