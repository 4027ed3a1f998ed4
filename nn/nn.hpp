// xgrad::nn: modules, layers, losses, initialisers and helpers. One include brings in all of it.
#pragma once

#include "activation.hpp"
#include "container.hpp"
#include "conv.hpp"
#include "dropout.hpp"
#include "embedding.hpp"
#include "flatten.hpp"
#include "functional.hpp"
#include "init.hpp"
#include "linear.hpp"
#include "loss.hpp"
#include "module.hpp"
#include "normalization.hpp"
#include "pooling.hpp"
#include "state_dict.hpp"
#include "summary.hpp"
#include "utils.hpp"
