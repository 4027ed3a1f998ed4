// nn::StateDict: a model's named tensors (parameters, then buffers, module by module) in
// registration order, as Module::state_dict() returns them and load_state_dict() takes them.
#pragma once
#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../autograd/tensor.hpp"

namespace xgrad::nn {

class StateDict {
 public:
  using value_type = std::pair<std::string, Tensor>;
  using const_iterator = std::vector<value_type>::const_iterator;

  StateDict() = default;
  // From (name, tensor) pairs, e.g. what load_safetensors returns. A repeated name throws.
  StateDict(std::vector<value_type> entries);  // NOLINT: implicit on purpose

  // Appends an entry; a name already present throws.
  void insert(std::string name, Tensor tensor);
  // The tensor stored under `name`; throws xgrad::Error naming the key when it is absent.
  const Tensor& at(const std::string& name) const;
  Tensor& at(const std::string& name);
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  std::vector<std::string> keys() const;

  const std::vector<value_type>& items() const noexcept { return entries_; }
  // Read-only iteration (renaming an entry would invalidate the name index).
  const_iterator begin() const noexcept { return entries_.begin(); }
  const_iterator end() const noexcept { return entries_.end(); }

 private:
  std::vector<value_type> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace xgrad::nn
