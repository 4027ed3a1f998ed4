// Run by CTest without mpirun (test "mpi.without_mpirun"): the world is this one process, collectives
// leave tensors as they are, and DDP trains exactly like the bare model. Excluded from the mpirun runs.
#include "helpers.hpp"

using namespace xgrad;
using namespace xgrad::mpi_test;

TEST_CASE("without mpirun: init reports world size 1 and collectives are identities") {
  CHECK(distributed::init() == 1);
  CHECK(world() == 1);
  CHECK(me() == 0);
  distributed::barrier();
  Tensor t = tensor({1.0, -2.0}, kFloat64);
  for (auto op : {distributed::ReduceOp::Sum, distributed::ReduceOp::Avg, distributed::ReduceOp::Max}) {
    distributed::all_reduce(t, op);
    CHECK(t.data<double>() == xt::xarray<double>{1.0, -2.0});
  }
  distributed::broadcast(t, 0);
  CHECK_THROWS_AS(distributed::broadcast(t, 1), Error);
  const auto all = distributed::all_gather(t);
  REQUIRE(all.size() == 1);
  CHECK(all[0].data<double>() == t.data<double>());
  distributed::all_reduce_async(t).wait();
  CHECK(t.data<double>() == xt::xarray<double>{1.0, -2.0});
}

TEST_CASE("without mpirun: DDP trains exactly like the bare model") {
  manual_seed(4);
  auto model = small_mlp(kFloat64);
  auto bare = clone_mlp(*model, kFloat64);
  distributed::DistributedDataParallel ddp(model);
  optim::Adam a(ddp.parameters()), b(bare->parameters());
  for (int step = 0; step < 3; ++step) {
    const GlobalBatch batch = global_batch(60 + std::uint64_t(step), 8, kFloat64);
    a.zero_grad();
    nn::functional::mse_loss(ddp.forward(batch.x), batch.y).backward();
    a.step();
    b.zero_grad();
    nn::functional::mse_loss((*bare)(batch.x), batch.y).backward();
    b.step();
  }
  const auto p = model->parameters(), q = bare->parameters();
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(xt::all(xt::equal(p[i].data<double>(), q[i].data<double>())));
}
