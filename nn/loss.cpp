#include "loss.hpp"

namespace xgrad::nn {

const char* reduction_name(Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
    case Reduction::None: return "none";
  }
  return "?";
}

Tensor Loss::operator()(const Tensor& input, const Tensor& target) {
  Tensor out = forward(input, target);
  remember_output_shape(out);
  return out;
}

Tensor Loss::forward(const Tensor& input) {
  detail::fail(type_name(), ": a loss takes (input, target), it was called with the input of shape ",
               input.defined() ? shape_str(input.shape()) : std::string("(undefined)"), " only");
}

// PyTorch prints the default reduction as nothing: MSELoss().
std::string Loss::extra_repr() const {
  return reduction == Reduction::Mean ? std::string() : detail::concat("reduction=", reduction_name(reduction));
}

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) {
  return functional::mse_loss(input, target, reduction);
}
Tensor L1Loss::forward(const Tensor& input, const Tensor& target) {
  return functional::l1_loss(input, target, reduction);
}
Tensor BCELoss::forward(const Tensor& input, const Tensor& target) {
  return functional::binary_cross_entropy(input, target, reduction);
}
Tensor BCEWithLogitsLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::binary_cross_entropy_with_logits(input, target, reduction);
}
Tensor CrossEntropyLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::cross_entropy(input, target, reduction);
}
Tensor NLLLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::nll_loss(input, target, reduction);
}

}  // namespace xgrad::nn
