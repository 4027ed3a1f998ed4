#include "container.hpp"

#include <algorithm>
#include <string>

#include "../autograd/checkpoint.hpp"
#include "../autograd/grad_mode.hpp"

namespace xgrad::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  if (!module) detail::fail("Sequential::push_back: module ", size(), " is null");
  register_module(std::to_string(size()), std::move(module));
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t i) const {
  if (i >= size()) detail::fail("Sequential[", i, "]: index out of range for a Sequential of ", size(), " modules");
  return named_children()[i].second;
}

void Sequential::wrong_type(std::size_t i) const {
  detail::fail("Sequential::at(", i, "): the module is a ", (*this)[i]->type_name(), ", not the requested type");
}

Tensor Sequential::forward(const Tensor& input) {
  const NamedModuleList& children = named_children();
  Tensor x = input;
  std::size_t start = 0;
  const std::size_t n = children.size();
  if (segments_ > 0 && n > 1 && is_grad_enabled()) {
    const std::size_t segments = std::min(segments_, n);
    const std::size_t run = n / segments;
    for (std::size_t s = 0; s + 1 < segments; ++s, start += run) {
      // The run's modules by shared_ptr: the checkpoint keeps them for the re-run in backward.
      std::vector<std::shared_ptr<Module>> modules;
      for (std::size_t i = start; i < start + run; ++i) modules.push_back(children[i].second);
      x = autograd::checkpoint(
          [modules = std::move(modules)](const std::vector<Tensor>& in) {
            Tensor h = in[0];
            for (const auto& m : modules) h = (*m)(h);
            return h;
          },
          {x});
    }
  }
  for (std::size_t i = start; i < n; ++i) x = (*children[i].second)(x);
  return x;
}

}  // namespace xgrad::nn
