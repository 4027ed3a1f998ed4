// fit and evaluate on a DDP model with sharded loaders against fit in one process.
#include "helpers.hpp"

using namespace xgrad;
using namespace xgrad::mpi_test;

TEST_CASE("fit: under N ranks equals fit in one process on the concatenated batches") {
  const std::size_t per_rank = 3, batches = 4;
  const std::size_t n = per_rank * std::size_t(world()) * batches;  // no padding: shards cover the data exactly
  manual_seed(3);
  data::TensorDataset dataset(randn({n, 5}, kFloat64), randn({n, 3}, kFloat64));
  manual_seed(10 + std::uint64_t(me()));
  auto model = small_mlp(kFloat64);
  auto ddp = std::make_shared<distributed::DistributedDataParallel>(model);
  auto reference = clone_mlp(*model, kFloat64);
  // Rank r's batch b holds positions r, r + N, ... of the epoch's permutation within b·N·B .. (b+1)·N·B:
  // over all ranks, exactly the reference's batch b of N·B rows.
  data::DataLoader sharded(dataset, {.batch_size = per_rank, .shuffle = true, .seed = 9,
                                     .num_replicas = std::size_t(world()), .rank = std::size_t(me())});
  data::DataLoader whole(dataset, {.batch_size = per_rank * std::size_t(world()), .shuffle = true, .seed = 9});
  data::DataLoader val_sharded(dataset, {.batch_size = 5, .num_replicas = std::size_t(world()), .rank = std::size_t(me())});
  data::DataLoader val_whole(dataset, {.batch_size = 5});
  optim::SGD opt(ddp->parameters(), {.lr = 0.05, .momentum = 0.9});
  optim::SGD ref_opt(reference->parameters(), {.lr = 0.05, .momentum = 0.9});
  auto mse = [](const Tensor& out, const Tensor& target) { return nn::functional::mse_loss(out, target); };

  const History h = fit(*ddp, opt, mse, sharded, {.epochs = 3, .validation = &val_sharded, .verbose = false});
  const History r = fit(*reference, ref_opt, mse, whole, {.epochs = 3, .validation = &val_whole, .verbose = false});

  const auto mine = model->parameters();
  const auto want = reference->parameters();
  for (std::size_t i = 0; i < mine.size(); ++i) {
    check_close(mine[i], want[i], 1e-12, 0);
    CHECK(bitwise_equal_across_ranks(mine[i]));
  }
  REQUIRE(h.size() == 3);
  for (std::size_t e = 0; e < h.size(); ++e) {
    CAPTURE(e);
    CHECK(h[e].loss == doctest::Approx(r[e].loss).epsilon(1e-12));
    CHECK(h[e].val_loss == doctest::Approx(r[e].val_loss).epsilon(1e-12));
    // The same History on every rank, wall time included.
    CHECK(bitwise_equal_across_ranks(tensor({h[e].loss, h[e].accuracy, h[e].val_loss, h[e].seconds}, kFloat64)));
  }
  const Metrics m = evaluate(*ddp, mse, val_sharded);
  CHECK(m.loss == doctest::Approx(evaluate(*reference, mse, val_whole).loss).epsilon(1e-12));
}
