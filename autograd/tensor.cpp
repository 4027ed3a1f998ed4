// Tensor handle methods: inspection, gradients, hooks, conversion, printing.
#include "tensor.hpp"

#include <atomic>
#include <cmath>
#include <iomanip>
#include <ostream>

#include "detail/op_support.hpp"
#include "engine.hpp"
#include "grad_mode.hpp"
#include "node.hpp"
#include "ops.hpp"

namespace xgrad {

using detail::TensorImpl;

// ---- dtype.hpp ---------------------------------------------------------------------------------
const char* dtype_name(Dtype d) { return d == kFloat32 ? "float32" : "float64"; }
std::size_t itemsize(Dtype d) { return d == kFloat32 ? 4 : 8; }
std::ostream& operator<<(std::ostream& os, Dtype d) { return os << dtype_name(d); }
std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

// ---- grad_mode.hpp -------------------------------------------------------------------------------
namespace {
thread_local bool grad_enabled = true;
}
bool is_grad_enabled() noexcept { return grad_enabled; }
void set_grad_enabled(bool enabled) noexcept { grad_enabled = enabled; }

// ---- Tensor ----------------------------------------------------------------------------------------
TensorImpl& Tensor::checked(const char* op) const {
  if (!impl_) detail::fail(op, ": called on an undefined tensor");
  return *impl_;
}

Shape Tensor::shape() const {
  const auto& v = checked("shape").storage->value;
  return std::visit([](const auto& a) { return detail::to_shape(a.shape()); }, v);
}

std::int64_t Tensor::dim() const {
  const auto& v = checked("dim").storage->value;
  return std::visit([](const auto& a) { return static_cast<std::int64_t>(a.dimension()); }, v);
}

std::size_t Tensor::size(int d) const {
  Shape s = shape();
  return s[detail::wrap_dim("size", d, s.size())];
}

std::size_t Tensor::numel() const {
  const auto& v = checked("numel").storage->value;
  return std::visit([](const auto& a) { return static_cast<std::size_t>(a.size()); }, v);
}

Dtype Tensor::dtype() const { return checked("dtype").dtype; }
bool Tensor::requires_grad() const { return checked("requires_grad").requires_grad_(); }
bool Tensor::is_leaf() const { return checked("is_leaf").grad_fn == nullptr; }
Tensor Tensor::grad() const { return checked("grad").grad; }
const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return checked("grad_fn").grad_fn; }
std::uint32_t Tensor::output_nr() const { return checked("output_nr").output_nr; }
std::string Tensor::grad_fn_name() const {
  const auto& fn = grad_fn();
  return fn ? fn->name() : std::string();
}

double Tensor::item() const {
  TensorImpl& impl = checked("item");
  if (numel() != 1)
    detail::fail("item: a Tensor with ", numel(), " elements (shape ", shape_str(shape()),
                 ") cannot be converted to a scalar");
  return detail::dispatch(impl.dtype, [&](auto tag) { return static_cast<double>(*impl.array<decltype(tag)>().data()); });
}

template <class T>
const xt::xarray<T>& Tensor::data() const {
  TensorImpl& impl = checked("data");
  if (impl.dtype != dtype_of<T>::value)
    detail::fail("data<", dtype_name(dtype_of<T>::value), ">: the tensor's dtype is ", impl.dtype);
  return impl.array<T>();
}
template <class T>
xt::xarray<T>& Tensor::data() {
  TensorImpl& impl = checked("data");
  if (impl.dtype != dtype_of<T>::value)
    detail::fail("data<", dtype_name(dtype_of<T>::value), ">: the tensor's dtype is ", impl.dtype);
  return impl.array<T>();
}
template const xt::xarray<float>& Tensor::data<float>() const;
template const xt::xarray<double>& Tensor::data<double>() const;
template xt::xarray<float>& Tensor::data<float>();
template xt::xarray<double>& Tensor::data<double>();

Tensor& Tensor::requires_grad_(bool requires_grad) {
  TensorImpl& impl = checked("requires_grad_");
  if (impl.grad_fn) {
    if (!requires_grad)
      detail::fail("requires_grad_(false): only leaf tensors can stop requiring grad; this tensor was produced by ",
                   impl.grad_fn->name(), " (use detach())");
    return *this;
  }
  impl.requires_grad = requires_grad;
  return *this;
}

Tensor detail::share_storage(const Tensor& t) {
  TensorImpl& impl = *t.impl();
  return Tensor(std::make_shared<TensorImpl>(impl.storage, impl.dtype));
}

Tensor Tensor::detach() const {
  checked("detach");
  return detail::share_storage(*this);
}

void Tensor::zero_grad() { checked("zero_grad").grad = Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  TensorImpl& impl = checked("set_grad");
  if (g.defined()) {
    if (g.shape() != shape() || g.dtype() != impl.dtype)
      detail::fail("set_grad: gradient of shape ", shape_str(g.shape()), " ", g.dtype(), " for a tensor of shape ",
                   shape_str(shape()), " ", impl.dtype);
  }
  impl.grad = g;
}

void Tensor::backward(const Tensor& grad, bool retain_graph, bool create_graph) const {
  checked("backward");
  autograd::backward({*this}, grad.defined() ? std::vector<Tensor>{grad} : std::vector<Tensor>{},
                     retain_graph || create_graph, create_graph);
}

namespace {
std::atomic<std::size_t> next_hook_id{1};
}

void Tensor::retain_grad() {
  TensorImpl& impl = checked("retain_grad");
  if (!impl.grad_fn) {
    if (!impl.requires_grad) detail::fail("retain_grad: called on a tensor that does not require grad");
    return;  // leaves always keep their gradient
  }
  if (impl.retains_grad) return;
  impl.retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_;
  // Runs after the user's hooks (it is appended last and later hooks are inserted before it).
  impl.grad_fn->pre_hooks().push_back(autograd::Node::PreHook{
      impl.output_nr, 0, [weak](const Tensor& g) -> Tensor {
        auto self = weak.lock();
        if (!self) return {};
        if (!self->grad.defined()) {
          self->grad = is_grad_enabled() ? g : g.detach().clone();
        } else {
          self->grad = add(self->grad, g);
        }
        return {};
      }});
}

bool Tensor::retains_grad() const { return checked("retains_grad").retains_grad; }

std::size_t Tensor::register_hook(Hook hook) {
  TensorImpl& impl = checked("register_hook");
  if (!impl.requires_grad_())
    detail::fail("register_hook: cannot register a hook on a tensor that doesn't require gradient");
  const std::size_t id = next_hook_id.fetch_add(1);
  if (impl.grad_fn) {
    auto& hooks = impl.grad_fn->pre_hooks();
    // Before the retain_grad hook (id 0), so .grad sees what the user's hooks made of the gradient.
    auto pos = std::find_if(hooks.begin(), hooks.end(), [&](const auto& h) {
      return h.id == 0 && h.output_nr == impl.output_nr;
    });
    hooks.insert(pos, autograd::Node::PreHook{impl.output_nr, id, std::move(hook)});
  } else {
    impl.hooks.emplace_back(id, std::move(hook));
  }
  return id;
}

std::size_t Tensor::register_post_accumulate_grad_hook(PostAccumulateGradHook hook) {
  TensorImpl& impl = checked("register_post_accumulate_grad_hook");
  if (impl.grad_fn)
    detail::fail("register_post_accumulate_grad_hook: only leaf tensors accumulate gradients; this tensor comes "
                 "from ", grad_fn_name());
  if (!impl.requires_grad)
    detail::fail("register_post_accumulate_grad_hook: cannot register a hook on a tensor that doesn't require "
                 "gradient");
  const std::size_t id = next_hook_id.fetch_add(1);
  impl.post_accumulate_hooks.emplace_back(id, std::move(hook));
  return id;
}

void Tensor::remove_hook(std::size_t handle) {
  TensorImpl& impl = checked("remove_hook");
  std::erase_if(impl.hooks, [&](const auto& h) { return h.first == handle; });
  std::erase_if(impl.post_accumulate_hooks, [&](const auto& h) { return h.first == handle; });
  if (impl.grad_fn) std::erase_if(impl.grad_fn->pre_hooks(), [&](const auto& h) { return h.id == handle; });
}

// ---- Printing ------------------------------------------------------------------------------------
namespace {
template <class T>
void print_values(std::ostream& os, const xt::xarray<T>& a) {
  const auto& shape = a.shape();
  const std::size_t rank = shape.size();
  const std::size_t n = a.size();
  constexpr std::size_t kMaxPrinted = 1000;
  if (rank == 0) {
    os << a.data()[0];
    return;
  }
  if (n > kMaxPrinted) {
    os << "[... " << n << " values ...]";
    return;
  }
  std::vector<std::size_t> idx(rank, 0);
  const T* p = a.data();
  for (std::size_t i = 0; i < rank; ++i) os << '[';
  for (std::size_t k = 0; k < n; ++k) {
    os << p[k];
    // advance the multi-index, closing and opening brackets as dimensions roll over
    std::size_t d = rank;
    std::size_t closed = 0;
    while (d > 0) {
      --d;
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
      ++closed;
      if (d == 0) break;
    }
    if (k + 1 == n) {
      for (std::size_t i = 0; i < rank; ++i) os << ']';
    } else if (closed == 0) {
      os << ", ";
    } else {
      for (std::size_t i = 0; i < closed; ++i) os << ']';
      os << ",\n";
      for (std::size_t i = 0; i < rank - closed; ++i) os << ' ';
      for (std::size_t i = 0; i < closed; ++i) os << '[';
    }
  }
  if (n == 0)
    for (std::size_t i = 0; i < rank; ++i) os << ']';
}
}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "tensor(";
  detail::dispatch(t.dtype(), [&](auto tag) { print_values(os, t.data<decltype(tag)>()); });
  os << ", shape=" << shape_str(t.shape()) << ", dtype=" << t.dtype();
  if (t.grad_fn()) {
    os << ", grad_fn=<" << t.grad_fn_name() << ">";
  } else if (t.requires_grad()) {
    os << ", requires_grad=true";
  }
  return os << ")";
}

}  // namespace xgrad
