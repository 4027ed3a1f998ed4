#include "state_dict.hpp"

namespace xgrad::nn {

StateDict::StateDict(std::vector<value_type> entries) {
  entries_.reserve(entries.size());
  for (auto& [name, tensor] : entries) insert(std::move(name), std::move(tensor));
}

void StateDict::insert(std::string name, Tensor tensor) {
  if (contains(name)) detail::fail("StateDict::insert: duplicate key '", name, "'");
  index_.emplace(name, entries_.size());
  entries_.emplace_back(std::move(name), std::move(tensor));
}

const Tensor& StateDict::at(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) detail::fail("StateDict::at: no key '", name, "' among ", entries_.size(), " entries");
  return entries_[it->second].second;
}

Tensor& StateDict::at(const std::string& name) {
  return const_cast<Tensor&>(static_cast<const StateDict&>(*this).at(name));
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& entry : entries_) out.push_back(entry.first);
  return out;
}

}  // namespace xgrad::nn
