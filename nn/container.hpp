// nn::Sequential: modules applied one after the other, registered as children "0", "1", ...
#pragma once
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <memory>

#include "module.hpp"

namespace xgrad::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  // Sequential{std::make_shared<Linear>(4, 8), std::make_shared<ReLU>()}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  // std::make_shared<Sequential>(std::make_shared<Linear>(4, 8), std::make_shared<ReLU>())
  template <class M, class... Ms>
    requires std::derived_from<M, Module> && (std::derived_from<Ms, Module> && ...)
  explicit Sequential(std::shared_ptr<M> first, std::shared_ptr<Ms>... rest) {
    push_back(std::move(first));
    (push_back(std::move(rest)), ...);
  }

  // Appends a module under the next index; a null pointer throws.
  void push_back(std::shared_ptr<Module> module);
  // The i-th module; out of range throws.
  const std::shared_ptr<Module>& operator[](std::size_t i) const;
  // The i-th module as an M (seq.at<Linear>(0)->weight); out of range or another type throws.
  template <class M>
  std::shared_ptr<M> at(std::size_t i) const {
    auto typed = std::dynamic_pointer_cast<M>((*this)[i]);
    if (!typed) wrong_type(i);
    return typed;
  }
  std::size_t size() const noexcept { return named_children().size(); }
  bool empty() const noexcept { return named_children().empty(); }

  // Feeds the input through every module in order; an empty Sequential returns its input.
  Tensor forward(const Tensor& input) override;

 private:
  [[noreturn]] void wrong_type(std::size_t i) const;
};

}  // namespace xgrad::nn
