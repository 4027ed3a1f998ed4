// Loss modules: nn::functional's losses with the reduction fixed at construction, called as
// loss(input, target).
#pragma once
#include "functional.hpp"
#include "module.hpp"

namespace xgrad::nn {

class Loss : public Module {
 public:
  explicit Loss(Reduction reduction) : reduction(reduction) {}
  // A loss holds no tensors, so unlike other modules it can be copied (e.g. into a std::function).
  Loss(const Loss& other) : Module(), reduction(other.reduction) {}
  Loss& operator=(const Loss& other) {
    reduction = other.reduction;
    return *this;
  }
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor operator()(const Tensor& input, const Tensor& target);
  // A loss needs a target: calling it with one argument throws.
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  Reduction reduction;
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(Reduction reduction = Reduction::Mean) : Loss(reduction) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
};

class L1Loss : public Loss {
 public:
  explicit L1Loss(Reduction reduction = Reduction::Mean) : Loss(reduction) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
};

class BCELoss : public Loss {
 public:
  explicit BCELoss(Reduction reduction = Reduction::Mean) : Loss(reduction) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
};

class BCEWithLogitsLoss : public Loss {
 public:
  explicit BCEWithLogitsLoss(Reduction reduction = Reduction::Mean) : Loss(reduction) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
};

class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(Reduction reduction = Reduction::Mean) : Loss(reduction) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
};

class NLLLoss : public Loss {
 public:
  explicit NLLLoss(Reduction reduction = Reduction::Mean) : Loss(reduction) {}
  using Loss::forward;
  Tensor forward(const Tensor& input, const Tensor& target) override;
};

const char* reduction_name(Reduction reduction);  // "mean", "sum", "none"

}  // namespace xgrad::nn
