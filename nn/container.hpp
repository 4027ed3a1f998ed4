// nn::Sequential: modules applied one after the other, registered as children "0", "1", ...
#pragma once
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <utility>

#include "module.hpp"

namespace xgrad::nn {

template <class P>
inline constexpr bool is_module_ptr = false;
template <class M>
inline constexpr bool is_module_ptr<std::shared_ptr<M>> = std::derived_from<M, Module>;

// What Sequential's variadic constructor takes: a module by value, or a shared_ptr to one.
template <class M>
concept SequentialElement = std::derived_from<M, Module> || is_module_ptr<M>;

class Sequential : public Module {
 public:
  Sequential() = default;
  // Sequential{std::make_shared<Linear>(4, 8), std::make_shared<ReLU>()}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  // Sequential seq(Linear(4, 8), ReLU(), Linear(8, 2)): each module given by value is moved into a
  // shared_ptr of its own type. Shared pointers may be mixed in, and are kept as they are:
  // std::make_shared<Sequential>(std::make_shared<Linear>(4, 8), ReLU()).
  template <class... Ms>
    requires(sizeof...(Ms) > 0 && (SequentialElement<Ms> && ...))
  explicit Sequential(Ms... modules) {
    (push_back(as_shared(std::move(modules))), ...);
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

  // Activation checkpointing, PyTorch's checkpoint_sequential as a setting: with `segments` > 0,
  // forward (when grad mode is on) splits the modules into `segments` runs of size() / segments
  // modules (the last takes the rest) and passes every run but the last through
  // autograd::checkpoint, so backward keeps only the runs' inputs and recomputes the rest. Gradients
  // are bit-identical to the plain forward's. 0 (the default) turns it off. Returns *this.
  Sequential& checkpoint_segments(std::size_t segments) noexcept {
    segments_ = segments;
    return *this;
  }
  std::size_t checkpoint_segments() const noexcept { return segments_; }

 private:
  std::size_t segments_ = 0;
  template <class M>
  static std::shared_ptr<Module> as_shared(M&& m) {
    if constexpr (std::derived_from<std::remove_cvref_t<M>, Module>)
      return std::make_shared<std::remove_cvref_t<M>>(std::move(m));
    else
      return std::move(m);
  }
  [[noreturn]] void wrong_type(std::size_t i) const;
};

}  // namespace xgrad::nn
