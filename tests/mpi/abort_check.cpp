// Run under mpirun by CTest: rank 1's loss throws inside fit while rank 0 waits for it in the
// gradient allreduce. The job must end (MPI_Abort) with rank 1's message instead of hanging.
#include <cstdio>
#include <distributed/distributed.hpp>
#include <xgrad.hpp>

using namespace xgrad;

int main() {
  distributed::init();
  manual_seed(1);
  auto model = std::make_shared<nn::Linear>(4, 2, true, kFloat64);
  auto ddp = std::make_shared<distributed::DistributedDataParallel>(model);
  data::DataLoader loader(data::TensorDataset(randn({16, 4}, kFloat64), randn({16, 2}, kFloat64)),
                          {.batch_size = 4, .num_replicas = std::size_t(distributed::world_size()),
                           .rank = std::size_t(distributed::rank())});
  optim::SGD opt(ddp->parameters());
  int calls = 0;
  auto loss = [&](const Tensor& out, const Tensor& target) {
    if (distributed::rank() == 1 && ++calls == 2) throw Error("deliberate failure in the loss on rank 1");
    return nn::functional::mse_loss(out, target);
  };
  fit(*ddp, opt, loss, loader, {.epochs = 1, .verbose = false});
  std::printf("not reached: fit returned on rank %d\n", distributed::rank());
  distributed::finalize();
  return 0;
}
