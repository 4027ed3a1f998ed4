// xgrad::optim: optimizers on std::vector<Tensor> and learning-rate schedulers.
#pragma once

#include "adam.hpp"
#include "lr_scheduler.hpp"
#include "optimizer.hpp"
#include "rmsprop.hpp"
#include "sgd.hpp"
