// Every differentiable op, as free functions in namespace xgrad. Semantics follow PyTorch:
// numpy broadcasting, negative dims counting from the end, keepdim. Mixing float32 and float64
// tensors in one op is an error (convert with `to`); a C++ scalar takes the tensor's dtype.
#pragma once
// One header per op family, named after the file that implements it (autograd/ops/<family>.cpp).
#include "ops/arithmetic.hpp"
#include "ops/compare.hpp"
#include "ops/linalg.hpp"
#include "ops/nn_ops.hpp"
#include "ops/reduce.hpp"
#include "ops/shape.hpp"
#include "ops/unary.hpp"
