#include "summary.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace xgrad::nn {

namespace {

struct Row {
  std::string layer, shape, params;
};

std::string with_separators(std::size_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::size_t count(const std::vector<Tensor>& tensors) {
  std::size_t n = 0;
  for (const Tensor& t : tensors) n += t.numel();
  return n;
}

void collect_rows(const Module& m, const std::string& name, std::vector<Row>& rows) {
  const auto own = m.parameters(false);
  if (m.named_children().empty() || !own.empty()) {
    const auto& shape = m.output_shape();
    rows.push_back({name.empty() ? m.type_name() : name + " (" + m.type_name() + ")",
                    shape ? shape_str(*shape) : "?", with_separators(count(own))});
  }
  for (const auto& [child_name, child] : m.named_children())
    collect_rows(*child, name.empty() ? child_name : name + "." + child_name, rows);
}

std::string pad(const std::string& s, std::size_t width) { return s + std::string(width - std::min(width, s.size()), ' '); }
std::string pad_left(const std::string& s, std::size_t width) {
  return std::string(width - std::min(width, s.size()), ' ') + s;
}

}  // namespace

std::string summary(const Module& model) {
  std::vector<Row> rows;
  collect_rows(model, "", rows);
  const Row header{"Layer (type)", "Output Shape", "Param #"};
  std::size_t w_layer = header.layer.size(), w_shape = header.shape.size(), w_params = header.params.size();
  for (const Row& r : rows) {
    w_layer = std::max(w_layer, r.layer.size());
    w_shape = std::max(w_shape, r.shape.size());
    w_params = std::max(w_params, r.params.size());
  }
  const std::size_t gap = 4;
  const std::size_t width = w_layer + gap + w_shape + gap + w_params;
  auto line = [&](const Row& r) {
    return pad(r.layer, w_layer + gap) + pad(r.shape, w_shape + gap) + pad_left(r.params, w_params) + "\n";
  };

  std::size_t total = 0, trainable = 0;
  for (const Tensor& p : model.parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }

  std::string out = "Model: \"" + model.type_name() + "\"\n";
  out += std::string(width, '_') + "\n";
  out += line(header);
  out += std::string(width, '=') + "\n";
  for (const Row& r : rows) out += line(r);
  out += std::string(width, '=') + "\n";
  out += "Total params: " + with_separators(total) + "\n";
  out += "Trainable params: " + with_separators(trainable) + "\n";
  out += "Non-trainable params: " + with_separators(total - trainable) + "\n";
  out += std::string(width, '_') + "\n";
  return out;
}

}  // namespace xgrad::nn
