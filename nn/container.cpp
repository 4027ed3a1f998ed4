#include "container.hpp"

#include <string>

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
  Tensor x = input;
  for (const auto& [name, module] : named_children()) x = (*module)(x);
  return x;
}

}  // namespace xgrad::nn
