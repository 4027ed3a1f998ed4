// Shared op machinery: checks with clear messages, broadcasting, saved tensors, history.
#include "detail/op_support.hpp"

namespace xgrad::detail {

std::size_t numel_of(const Shape& s) {
  std::size_t n = 1;
  for (std::size_t d : s) n *= d;
  return n;
}

TensorImpl& checked(const Tensor& t, const char* op, const char* arg) {
  if (!t.defined()) fail(op, ": ", arg, " is an undefined tensor");
  return *t.impl();
}

std::string shapes_str(const Tensor& a, const Tensor& b) { return shape_str(a.shape()) + " and " + shape_str(b.shape()); }

std::string concat_dims(const std::vector<std::int64_t>& dims) {
  std::string out = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(dims[i]);
  }
  return out + "]";
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  TensorImpl& ia = checked(a, op, "first operand");
  TensorImpl& ib = checked(b, op, "second operand");
  if (ia.dtype != ib.dtype)
    fail(op, ": dtype mismatch, ", ia.dtype, " and ", ib.dtype, " (shapes ", shapes_str(a, b),
         "); convert one operand with .to(dtype)");
}

std::size_t wrap_dim(const char* op, std::int64_t dim, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  const std::int64_t lo = rank == 0 ? -1 : -r;
  const std::int64_t hi = rank == 0 ? 0 : r - 1;
  if (dim < lo || dim > hi)
    fail(op, ": dimension out of range (expected to be in range of [", lo, ", ", hi, "], but got ", dim, ")");
  if (rank == 0) return 0;
  return static_cast<std::size_t>(dim < 0 ? dim + r : dim);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::size_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, ": shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast together (dimension ", i,
           ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.impl()->requires_grad_()) return true;
  return false;
}

void set_history(const Tensor& out, const std::shared_ptr<autograd::Node>& node, std::uint32_t output_nr) {
  TensorImpl& impl = *out.impl();
  impl.grad_fn = node;
  impl.output_nr = output_nr;
  impl.requires_grad = false;
}

void SavedTensor::save_output(const Tensor& t) {
  TensorImpl& impl = *t.impl();
  storage_ = impl.storage;
  grad_fn_ = impl.grad_fn;
  output_nr_ = impl.output_nr;
  dtype_ = impl.dtype;
}

Tensor SavedTensor::unpack(const autograd::Node* owner) const {
  if (tensor_.defined()) return tensor_;
  if (!storage_) {
    if (owner && owner->released()) owner->throw_released();
    fail("internal error: unpacking a tensor that was never saved");
  }
  auto impl = std::make_shared<TensorImpl>(storage_, dtype_);
  impl->grad_fn = grad_fn_.lock();
  impl->output_nr = output_nr_;
  return Tensor(std::move(impl));
}

void SavedTensor::reset() noexcept {
  tensor_ = Tensor();
  storage_.reset();
  grad_fn_.reset();
}

}  // namespace xgrad::detail
