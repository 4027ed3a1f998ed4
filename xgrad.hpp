// xgrad: reverse-mode automatic differentiation on xtensor. One include brings in everything.
#pragma once

#include "autograd/anomaly.hpp"
#include "autograd/dtype.hpp"
#include "autograd/engine.hpp"
#include "autograd/error.hpp"
#include "autograd/function.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/grad_mode.hpp"
#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "autograd/safetensors.hpp"
#include "autograd/tensor.hpp"
#include "autograd/to_dot.hpp"
#include "data/data.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"
#include "train/fit.hpp"
