// The process group's collectives, in both dtypes, checked against values every rank can compute.
#include <distributed/mpi_support.hpp>

#include "helpers.hpp"

using namespace xgrad;
using namespace xgrad::mpi_test;

TEST_CASE("collectives: init reports the world given to mpirun") {
  CHECK(distributed::is_initialized());
  CHECK(world() >= 2);  // these tests are always launched with -np 2 or -np 4
  CHECK(me() >= 0);
  CHECK(me() < world());
  distributed::barrier();
}

TEST_CASE("collectives: all_reduce Sum Avg Max Min in both dtypes") {
  const double n = world();
  for (Dtype dtype : {kFloat32, kFloat64}) {
    CAPTURE(dtype);
    // rank r holds [r + 1, -(r + 1), 0.5 r]; sums over r = 0..n-1 follow from Σ(r + 1) = n(n + 1)/2.
    auto make = [&] { return tensor({me() + 1.0, -(me() + 1.0), 0.5 * me()}, dtype); };
    const double s = n * (n + 1) / 2;
    Tensor t = make();
    distributed::all_reduce(t);
    CHECK(t.to(kFloat64).data<double>() == xt::xarray<double>{s, -s, 0.5 * (s - n)});
    t = make();
    distributed::all_reduce(t, distributed::ReduceOp::Avg);
    CHECK(t.to(kFloat64).data<double>()(0) == doctest::Approx(s / n).epsilon(1e-7));
    t = make();
    distributed::all_reduce(t, distributed::ReduceOp::Max);
    CHECK(t.to(kFloat64).data<double>() == xt::xarray<double>{n, -1.0, 0.5 * (n - 1)});
    t = make();
    distributed::all_reduce(t, distributed::ReduceOp::Min);
    CHECK(t.to(kFloat64).data<double>() == xt::xarray<double>{1.0, -n, 0.0});
  }
}

TEST_CASE("collectives: broadcast from every root and all_gather in both dtypes") {
  for (Dtype dtype : {kFloat32, kFloat64}) {
    for (int root = 0; root < world(); ++root) {
      Tensor t = full({2, 3}, 10.0 * me() + 1, dtype);
      distributed::broadcast(t, root);
      CHECK(t.dtype() == dtype);
      CHECK(xt::all(xt::equal(t.to(kFloat64).data<double>(), 10.0 * root + 1)));
    }
    const std::vector<Tensor> all = distributed::all_gather(full({2, 2}, me() * 2.0, dtype));
    REQUIRE(all.size() == static_cast<std::size_t>(world()));
    for (int r = 0; r < world(); ++r) {
      CHECK(all[r].shape() == Shape{2, 2});
      CHECK(all[r].dtype() == dtype);
      CHECK(xt::all(xt::equal(all[r].to(kFloat64).data<double>(), r * 2.0)));
    }
  }
}

TEST_CASE("collectives: all_reduce_async overlaps local work and wait gives the result") {
  for (Dtype dtype : {kFloat32, kFloat64}) {
    Tensor t = full({1000}, me() + 1.0, dtype);
    distributed::Work work = distributed::all_reduce_async(t, distributed::ReduceOp::Avg);
    Tensor local = ones({10}, dtype).sum();  // unrelated work while the reduction is in flight
    work.wait();
    CHECK(work.is_completed());
    CHECK(local.item() == 10.0);
    CHECK(xt::all(xt::equal(t.to(kFloat64).data<double>(), (world() + 1) / 2.0)));
  }
}

TEST_CASE("collectives: bad arguments and MPI failures are xgrad::Error") {
  Tensor t = zeros({2});
  CHECK_THROWS_WITH_AS(distributed::broadcast(t, world()), doctest::Contains("root"), Error);
  Tensor undefined;
  CHECK_THROWS_WITH_AS(distributed::all_reduce(undefined), doctest::Contains("undefined"), Error);
  // Shapes that differ between ranks are reported, not gathered as garbage.
  CHECK_THROWS_WITH_AS(distributed::all_gather(zeros({std::size_t(me()) + 1})), doctest::Contains("all_gather"),
                       Error);
  // An MPI error code becomes an Error carrying MPI's own text ("MPI_ERR_COUNT: invalid count argument").
  CHECK_THROWS_WITH_AS(distributed::detail::check(MPI_ERR_COUNT, "MPI_Send"), doctest::Contains("count"), Error);
}
