// nn::summary: a Keras-style table of a model's layers.
#pragma once
#include <string>

#include "module.hpp"

namespace xgrad::nn {

// One row per layer (each module without children, plus any module holding parameters itself) in
// registration order: dotted name and type, the shape of its last output ("?" before the model has
// run), and its parameter count; then the total, trainable and non-trainable parameter counts.
// Counts are printed with thousands separators ("269,322").
std::string summary(const Module& model);

}  // namespace xgrad::nn
