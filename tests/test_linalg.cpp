// mm (with transpose flags and broadcast batches), matmul in every rank combination, linear: forward
// values by hand or against a naive loop, gradcheck + gradgradcheck in float64, and the errors.
#include <doctest/doctest.h>

#include <cmath>

#include <xgrad.hpp>

#include "helpers.hpp"

using namespace xgrad;
using test::check_values;
using test::param;

namespace {

// C[i] = op(A[i])·op(B[i]) for one pair of matrices, by the definition (a triple loop in double).
xt::xarray<double> naive_mm(const xt::xarray<double>& a, const xt::xarray<double>& b, bool ta, bool tb) {
  const std::size_t m = ta ? a.shape(1) : a.shape(0), k = ta ? a.shape(0) : a.shape(1);
  const std::size_t n = tb ? b.shape(0) : b.shape(1);
  xt::xarray<double> c = xt::zeros<double>({m, n});
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::size_t p = 0; p < k; ++p) s += (ta ? a(p, i) : a(i, p)) * (tb ? b(j, p) : b(p, j));
      c(i, j) = s;
    }
  return c;
}

// The (i, j) matrix of a 4-D array / the j matrix of a 3-D array, as a 2-D array.
xt::xarray<double> matrix_at(const xt::xarray<double>& t, std::size_t i, std::size_t j) {
  xt::xarray<double> m = xt::zeros<double>({t.shape(2), t.shape(3)});
  for (std::size_t r = 0; r < t.shape(2); ++r)
    for (std::size_t c = 0; c < t.shape(3); ++c) m(r, c) = t(i, j, r, c);
  return m;
}
xt::xarray<double> matrix_at(const xt::xarray<double>& t, std::size_t j) {
  xt::xarray<double> m = xt::zeros<double>({t.shape(1), t.shape(2)});
  for (std::size_t r = 0; r < t.shape(1); ++r)
    for (std::size_t c = 0; c < t.shape(2); ++c) m(r, c) = t(j, r, c);
  return m;
}

template <class F>
void check_grads(F fn, const std::vector<Tensor>& inputs) {
  CHECK(gradcheck(fn, inputs));
  CHECK(gradgradcheck(fn, inputs));
}

}  // namespace

// ---- mm: forward ---------------------------------------------------------------------------------
TEST_CASE("mm: the four transpose combinations of 2x2 matrices, by hand") {
  Tensor A = tensor({{1, 2}, {3, 4}});
  Tensor B = tensor({{5, 6}, {7, 8}});
  // A·B: [1·5+2·7, 1·6+2·8; 3·5+4·7, 3·6+4·8]
  check_values(mm(A, B), {2, 2}, {19, 22, 43, 50});
  // Aᵀ·B with Aᵀ = [1 3; 2 4]: [1·5+3·7, 1·6+3·8; 2·5+4·7, 2·6+4·8]
  check_values(mm(A, B, true, false), {2, 2}, {26, 30, 38, 44});
  // A·Bᵀ with Bᵀ = [5 7; 6 8]: [1·5+2·6, 1·7+2·8; 3·5+4·6, 3·7+4·8]
  check_values(mm(A, B, false, true), {2, 2}, {17, 23, 39, 53});
  // Aᵀ·Bᵀ = (B·A)ᵀ, B·A = [5+18, 10+24; 7+24, 14+32] = [23 34; 31 46]
  check_values(mm(A, B, true, true), {2, 2}, {23, 31, 34, 46});
}

TEST_CASE("mm: transposed non-square operands take the shapes of op(a) and op(b)") {
  // a is 3x2, so op(a) = aᵀ is 2x3; b is 4x3, so op(b) = bᵀ is 3x4; the result is 2x4.
  Tensor a = tensor({{1, 0}, {0, 1}, {1, 1}}, kFloat64);
  Tensor b = tensor({{1, 2, 3}, {0, 0, 1}, {1, 0, 0}, {2, 2, 2}}, kFloat64);
  // aᵀ = [1 0 1; 0 1 1], bᵀ columns are b's rows: entry (i, j) = aᵀ row i · b row j
  // row 0 [1,0,1]: ·[1,2,3]=4, ·[0,0,1]=1, ·[1,0,0]=1, ·[2,2,2]=4
  // row 1 [0,1,1]: ·[1,2,3]=5, ·[0,0,1]=1, ·[1,0,0]=0, ·[2,2,2]=4
  check_values(mm(a, b, true, true), {2, 4}, {4, 1, 1, 4, 5, 1, 0, 4});
}

TEST_CASE("mm: batched operands with broadcast batch dims match a per-matrix loop, for every flag") {
  manual_seed(1);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      // op(a) is 3x4 in a batch (2,1); op(b) is 4x2 in a batch (5): result (2,5,3,2).
      Tensor a = randn(ta ? Shape{2, 1, 4, 3} : Shape{2, 1, 3, 4}, kFloat64);
      Tensor b = randn(tb ? Shape{5, 2, 4} : Shape{5, 4, 2}, kFloat64);
      Tensor c = mm(a, b, ta, tb);
      REQUIRE(c.shape() == Shape{2, 5, 3, 2});
      for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < 5; ++j) {
          xt::xarray<double> ref = naive_mm(matrix_at(a.data<double>(), i, 0), matrix_at(b.data<double>(), j), ta, tb);
          xt::xarray<double> got = matrix_at(c.data<double>(), i, j);
          for (std::size_t e = 0; e < ref.size(); ++e) CHECK(got.data()[e] == doctest::Approx(ref.data()[e]).epsilon(1e-12));
        }
    }
}

TEST_CASE("mm: a batch times one matrix, and one matrix times a batch") {
  manual_seed(2);
  Tensor a = randn({3, 2, 4}, kFloat64);  // batch of 3 on the left, single matrix on the right
  Tensor w = randn({4, 5}, kFloat64);
  Tensor c = mm(a, w);
  REQUIRE(c.shape() == Shape{3, 2, 5});
  Tensor d = mm(w, a, true, true);  // single wᵀ (5x4) on the left, aᵀ (4x2) batched on the right
  REQUIRE(d.shape() == Shape{3, 5, 2});
  for (std::size_t j = 0; j < 3; ++j) {
    xt::xarray<double> aj = matrix_at(a.data<double>(), j);
    xt::xarray<double> ref = naive_mm(aj, w.data<double>(), false, false);
    xt::xarray<double> got = matrix_at(c.data<double>(), j);
    for (std::size_t e = 0; e < ref.size(); ++e) CHECK(got.data()[e] == doctest::Approx(ref.data()[e]).epsilon(1e-12));
    xt::xarray<double> ref2 = naive_mm(w.data<double>(), aj, true, true);
    xt::xarray<double> got2 = matrix_at(d.data<double>(), j);
    for (std::size_t e = 0; e < ref2.size(); ++e) CHECK(got2.data()[e] == doctest::Approx(ref2.data()[e]).epsilon(1e-12));
  }
}

TEST_CASE("mm: float32 1024x64 by 64x32 matches a naive double loop to float tolerance") {
  manual_seed(3);
  Tensor a = randn({1024, 64});
  Tensor b = randn({64, 32});
  Tensor c = mm(a, b);
  REQUIRE(c.shape() == Shape{1024, 32});
  REQUIRE(c.dtype() == kFloat32);
  const auto& A = a.data<float>();
  const auto& B = b.data<float>();
  const auto& C = c.data<float>();
  double worst = 0;
  for (std::size_t i = 0; i < 1024; ++i)
    for (std::size_t j = 0; j < 32; ++j) {
      double s = 0, mag = 0;
      for (std::size_t p = 0; p < 64; ++p) {
        s += static_cast<double>(A(i, p)) * static_cast<double>(B(p, j));
        mag += std::abs(static_cast<double>(A(i, p)) * static_cast<double>(B(p, j)));
      }
      // Rounding error of a float dot product of 64 terms is bounded by ~64·2⁻²⁴·Σ|aᵢbᵢ|.
      worst = std::max(worst, std::abs(static_cast<double>(C(i, j)) - s) / (mag * 64 * 6e-8 + 1e-30));
    }
  CHECK(worst <= 1.0);
}

// A product with one output row or column goes to GEMV instead of GEMM (detail/gemm.cpp): the
// matrix and the vector are picked from op(a) or op(b)ᵀ and the strides from the flags, so every flag
// combination and both shapes, a 1×1 output, k = 1, and batches (each matrix a separate product)
// against the definition; float32 output is written whole even though its buffer starts
// uninitialised (BLAS scales y by beta first). The backward of these products is the same kind of
// product, so gradcheck and gradgradcheck cover the GEMV path with other flags.
TEST_CASE("mm: one-row and one-column products (GEMV) match the definition for every flag") {
  manual_seed(8);
  struct Dims {
    std::size_t m, k, n;
  };
  for (const Dims d : {Dims{1, 7, 5}, Dims{6, 7, 1}, Dims{1, 7, 1}, Dims{1, 1, 4}, Dims{5, 1, 1}, Dims{1, 300, 65}}) {
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        CAPTURE(d.m);
        CAPTURE(d.k);
        CAPTURE(d.n);
        CAPTURE(ta);
        CAPTURE(tb);
        Tensor a = ta ? randn({d.k, d.m}, kFloat64) : randn({d.m, d.k}, kFloat64);
        Tensor b = tb ? randn({d.n, d.k}, kFloat64) : randn({d.k, d.n}, kFloat64);
        const xt::xarray<double> ref = naive_mm(a.data<double>(), b.data<double>(), ta, tb);
        const std::vector<double> expected(ref.begin(), ref.end());
        check_values(mm(a, b, ta, tb), {d.m, d.n}, expected, 1e-12);
        check_values(mm(a.to(kFloat32), b.to(kFloat32), ta, tb), {d.m, d.n}, expected, 1e-4);
        // Two matrices in a batch: each its own GEMV, written at its offset.
        Tensor a2 = stack({a, a * 2.0}, 0), b2 = stack({b, b * -1.0}, 0);
        Tensor c2 = mm(a2, b2, ta, tb);
        REQUIRE(c2.shape() == Shape{2, d.m, d.n});
        std::vector<double> twice(expected);
        for (double v : expected) twice.push_back(-2.0 * v);
        check_values(c2, {2, d.m, d.n}, twice, 1e-12);
        if (d.k <= 7) check_grads([ta, tb](const std::vector<Tensor>& v) { return mm(v[0], v[1], ta, tb); }, {param(a.shape()), param(b.shape())});
      }
  }
}

TEST_CASE("mm: empty inner dimension gives zeros, empty outer dims give empty results") {
  Tensor a = zeros({2, 0}, kFloat64);
  Tensor b = zeros({0, 3}, kFloat64);
  check_values(mm(a, b), {2, 3}, {0, 0, 0, 0, 0, 0});  // a sum of no terms is 0
  CHECK(mm(zeros({0, 4}), zeros({4, 3})).shape() == Shape{0, 3});
  CHECK(mm(zeros({0, 2, 4}), zeros({4, 3})).shape() == Shape{0, 2, 3});
}

// ---- mm: gradients ---------------------------------------------------------------------------------
TEST_CASE("mm: backward by hand, d/dA sum(A·B) = 1·Bᵀ (row sums of B)") {
  Tensor A = tensor({{1, 2}, {3, 4}}, kFloat64, true);
  Tensor B = tensor({{5, 6}, {7, 8}}, kFloat64, true);
  mm(A, B).sum().backward();
  // dA[i][p] = Σ_j B[p][j]: rows of B sum to 11 and 15; dB[p][j] = Σ_i A[i][p]: columns of A sum to 4 and 6
  check_values(A.grad(), {2, 2}, {11, 15, 11, 15});
  check_values(B.grad(), {2, 2}, {4, 4, 6, 6});
}

TEST_CASE("mm: gradcheck and gradgradcheck for all four transpose combinations") {
  manual_seed(4);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      Tensor a = param(ta ? Shape{3, 2} : Shape{2, 3});  // op(a): 2x3
      Tensor b = param(tb ? Shape{4, 3} : Shape{3, 4});  // op(b): 3x4
      check_grads([ta, tb](const std::vector<Tensor>& in) { return mm(in[0], in[1], ta, tb); }, {a, b});
    }
}

TEST_CASE("mm: gradcheck and gradgradcheck with broadcast batch dims, for all four flags") {
  manual_seed(5);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      Tensor a = param(ta ? Shape{2, 1, 3, 2} : Shape{2, 1, 2, 3});
      Tensor b = param(tb ? Shape{3, 2, 3} : Shape{3, 3, 2});
      check_grads([ta, tb](const std::vector<Tensor>& in) { return mm(in[0], in[1], ta, tb); }, {a, b});
      Tensor single = param(tb ? Shape{2, 3} : Shape{3, 2});  // one matrix on the right of a batch
      check_grads([ta, tb](const std::vector<Tensor>& in) { return mm(in[0], in[1], ta, tb); }, {a, single});
    }
}

// ---- matmul ------------------------------------------------------------------------------------------
TEST_CASE("matmul: 1-D cases by hand follow PyTorch's promotions") {
  // dot: 1·4 + 2·5 + 3·6 = 32, a 0-d tensor
  Tensor d = matmul(tensor({1, 2, 3}), tensor({4, 5, 6}));
  CHECK(d.shape() == Shape{});
  CHECK(d.item() == 32.0);
  // matrix·vector: [1 2; 3 4]·[1, 1] = [3, 7]
  check_values(matmul(tensor({{1, 2}, {3, 4}}), tensor({1, 1})), {2}, {3, 7});
  // vector·matrix: [1, 1]·[1 2; 3 4] = [1+3, 2+4] = [4, 6]
  check_values(matmul(tensor({1, 1}), tensor({{1, 2}, {3, 4}})), {2}, {4, 6});
  // batched matrix·vector: I·[1, 2] = [1, 2] and 2I·[1, 2] = [2, 4]
  Tensor batch = tensor({1, 0, 0, 1, 2, 0, 0, 2}, kFloat64).reshape({2, 2, 2});  // [I, 2I]
  check_values(matmul(batch, tensor({1.0, 2.0}, kFloat64)), {2, 2}, {1, 2, 2, 4});
  // vector·batched matrix: [1, 2] · each matrix = [1, 2] and [2, 4]
  check_values(matmul(tensor({1.0, 2.0}, kFloat64), batch), {2, 2}, {1, 2, 2, 4});
  // the method form
  CHECK(tensor({1, 2, 3}).matmul(tensor({4, 5, 6})).item() == 32.0);
}

TEST_CASE("matmul: (2,1,3,4) x (5,4,2) broadcasts batches to (2,5,3,2)") {
  manual_seed(6);
  Tensor a = randn({2, 1, 3, 4}, kFloat64);
  Tensor b = randn({5, 4, 2}, kFloat64);
  Tensor c = matmul(a, b);
  REQUIRE(c.shape() == Shape{2, 5, 3, 2});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 5; ++j) {
      xt::xarray<double> ref = naive_mm(matrix_at(a.data<double>(), i, 0), matrix_at(b.data<double>(), j), false, false);
      xt::xarray<double> got = matrix_at(c.data<double>(), i, j);
      for (std::size_t e = 0; e < ref.size(); ++e) CHECK(got.data()[e] == doctest::Approx(ref.data()[e]).epsilon(1e-12));
    }
}

TEST_CASE("matmul: gradcheck and gradgradcheck in every rank combination") {
  manual_seed(7);
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3}, {3}},                  // 1 x 1: dot
      {{2, 3}, {3}},               // 2 x 1: matrix-vector
      {{3}, {3, 2}},               // 1 x 2: vector-matrix
      {{2, 3}, {3, 4}},            // 2 x 2
      {{2, 2, 3}, {3, 4}},         // 3 x 2: batch on the left
      {{2, 3}, {4, 3, 2}},         // 2 x 3: batch on the right
      {{2, 1, 3, 4}, {5, 4, 2}},   // 4 x 3 with batch broadcast
      {{3}, {2, 3, 2}},            // 1 x 3
      {{2, 2, 3}, {3}},            // 3 x 1
      {{2, 2, 3}, {2, 3, 2}},      // 3 x 3, same batch
      {{1, 2, 3}, {4, 3, 2}},      // 3 x 3, broadcast batch
  };
  for (const auto& shapes : cases) {
    // Named copies, not structured bindings: lambdas (CAPTURE's too) cannot capture those before clang 16.
    const Shape& sa = shapes.first;
    const Shape& sb = shapes.second;
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    check_grads([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {param(sa), param(sb)});
  }
}

// ---- linear -----------------------------------------------------------------------------------------
TEST_CASE("linear: forward by hand, with and without bias, for 1-D, 2-D and 3-D inputs") {
  Tensor W = tensor({{1, 0}, {0, 1}, {1, 1}});  // 3 outputs from 2 inputs: x0, x1, x0+x1
  Tensor b = tensor({10, 20, 30});
  // x = [1, 2]: W·x = [1, 2, 3], plus b = [11, 22, 33]
  check_values(linear(tensor({1, 2}), W, b), {3}, {11, 22, 33});
  check_values(linear(tensor({1, 2}), W), {3}, {1, 2, 3});
  // two rows [1, 2] and [3, -1]: W·x = [1, 2, 3] and [3, -1, 2]
  check_values(linear(tensor({{1, 2}, {3, -1}}), W, b), {2, 3}, {11, 22, 33, 13, 19, 32});
  check_values(linear(tensor({{1, 2}, {3, -1}}), W), {2, 3}, {1, 2, 3, 3, -1, 2});
  // the same rows in a (2,1,2) input keep the leading dims: (2,1,3)
  Tensor x3 = tensor({1, 2, 3, -1}).reshape({2, 1, 2});
  check_values(linear(x3, W, b), {2, 1, 3}, {11, 22, 33, 13, 19, 32});
}

TEST_CASE("linear: equals matmul(x, Wᵀ) + b on random inputs") {
  manual_seed(8);
  Tensor x = randn({4, 3, 5}, kFloat64), W = randn({6, 5}, kFloat64), b = randn({6}, kFloat64);
  Tensor y = linear(x, W, b);
  Tensor ref = matmul(x, mm(W, eye(6, kFloat64), true, false)) + b;  // Wᵀ (5x6) through mm's flag, times I
  REQUIRE(y.shape() == Shape{4, 3, 6});
  const auto& yv = y.data<double>();
  const auto& rv = ref.data<double>();
  for (std::size_t i = 0; i < yv.size(); ++i) CHECK(yv.data()[i] == doctest::Approx(rv.data()[i]).epsilon(1e-12));
}

TEST_CASE("linear: backward by hand for one sample") {
  Tensor x = tensor({1.0, 2.0}, kFloat64, true);
  Tensor W = tensor({{1, 0}, {0, 1}, {1, 1}}, kFloat64, true);
  Tensor b = tensor({10, 20, 30}, kFloat64, true);
  linear(x, W, b).sum().backward();
  // y_o = Σ_i W[o][i] x[i] + b[o], summed over o: dx = column sums of W = [2, 2]; dW[o] = x; db = 1
  check_values(x.grad(), {2}, {2, 2});
  check_values(W.grad(), {3, 2}, {1, 2, 1, 2, 1, 2});
  check_values(b.grad(), {3}, {1, 1, 1});
}

TEST_CASE("linear: gradcheck and gradgradcheck with and without bias for 1-D, 2-D and 3-D inputs") {
  manual_seed(9);
  for (const Shape& xs : {Shape{3}, Shape{2, 3}, Shape{2, 2, 3}}) {
    CAPTURE(shape_str(xs));
    check_grads([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                {param(xs), param({4, 3}), param({4})});
    check_grads([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {param(xs), param({4, 3})});
  }
}

// ---- errors ---------------------------------------------------------------------------------------
TEST_CASE("mm and matmul: errors name the function, the shapes and the mismatch") {
  CHECK_THROWS_WITH_AS(mm(zeros({2, 3}), zeros({4, 5})), doctest::Contains("mm: shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}), zeros({4, 5})),
                       doctest::Contains("matmul: shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)"), Error);
  CHECK_THROWS_WITH_AS(mm(zeros({2, 3}), zeros({2, 3}), false, false), doctest::Contains("(3 != 2)"), Error);
  CHECK_THROWS_WITH_AS(mm(zeros({2, 3}), zeros({4, 3}), true, true), doctest::Contains("(transposed)"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({3}), zeros({4})), doctest::Contains("[3] and [4] cannot be multiplied"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}), zeros({4})), doctest::Contains("(3 != 4)"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})), doctest::Contains("cannot be broadcast"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}), zeros({3, 4}, kFloat64)), doctest::Contains("dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(mm(zeros({2, 3}), zeros({3, 4}, kFloat64)), doctest::Contains("dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(matmul(tensor(2.0), zeros({3})), doctest::Contains("at least 1-D"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({3}), tensor(2.0)), doctest::Contains("at least 1-D"), Error);
  CHECK_THROWS_WITH_AS(mm(zeros({3}), zeros({3, 2})), doctest::Contains("rank >= 2"), Error);
  CHECK_THROWS_WITH_AS(mm(Tensor(), zeros({3, 2})), doctest::Contains("undefined"), Error);
}

TEST_CASE("linear: errors name the input, weight and bias shapes") {
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 5}), zeros({4})),
                       doctest::Contains("input shape [2, 3], weight shape [4, 5], bias shape [4]"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 3}), zeros({5})), doctest::Contains("bias must have shape [4]"),
                       Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 3}), zeros({4, 1})), doctest::Contains("bias shape [4, 1]"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({3})), doctest::Contains("weight must be a matrix"), Error);
  CHECK_THROWS_WITH_AS(linear(tensor(1.0), zeros({4, 1})), doctest::Contains("at least 1 dimension"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 3}, kFloat64)), doctest::Contains("dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}), zeros({4, 3}), zeros({4}, kFloat64)), doctest::Contains("bias float64"),
                       Error);
}
