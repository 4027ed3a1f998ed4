// xgrad::Tensor: a cheap shared handle over a value, its gradient and the node that produced it.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "dtype.hpp"
#include "error.hpp"

namespace xgrad {

namespace detail {
struct TensorImpl;
}
namespace autograd {
class Node;
}

class Tensor {
 public:
  // A hook sees the gradient flowing into a tensor; returning a defined Tensor replaces it.
  using Hook = std::function<Tensor(const Tensor&)>;
  // A post-accumulate hook sees a leaf after its .grad has been updated by a backward run.
  using PostAccumulateGradHook = std::function<void(Tensor&)>;

  Tensor() = default;  // undefined
  explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) noexcept : impl_(std::move(impl)) {}

  // ---- Inspect -------------------------------------------------------------------------
  bool defined() const noexcept { return impl_ != nullptr; }
  Shape shape() const;
  std::size_t size(int dim) const;  // size of one dimension, negative dims count from the end
  std::int64_t dim() const;
  std::size_t numel() const;
  Dtype dtype() const;
  bool requires_grad() const;
  bool is_leaf() const;
  Tensor grad() const;  // undefined until a gradient arrives
  double item() const;  // the only element, as double; throws unless numel() == 1
  template <class T>
  T item() const {
    return static_cast<T>(item());
  }
  // The value. Throws on a dtype mismatch. The mutable overload bypasses autograd: it is for
  // optimizers and init, which change parameters in place.
  template <class T>
  const xt::xarray<T>& data() const;
  template <class T>
  xt::xarray<T>& data();

  // ---- Change --------------------------------------------------------------------------
  Tensor& requires_grad_(bool requires_grad = true);
  Tensor detach() const;  // shares the value, no history
  Tensor clone() const;   // copies the value, differentiable
  Tensor to(Dtype dtype) const;  // differentiable; returns *this when already of that dtype
  void zero_grad();              // drops the gradient
  void set_grad(const Tensor& grad);

  // ---- Autograd ------------------------------------------------------------------------
  void backward(const Tensor& grad = {}, bool retain_graph = false, bool create_graph = false) const;
  void retain_grad();  // keep .grad() of a non-leaf tensor after backward
  bool retains_grad() const;
  // Returns a handle for remove_hook. The hook runs each time a gradient for this tensor is computed.
  std::size_t register_hook(Hook hook);
  // On a leaf that requires grad: runs `hook(leaf)` each time a backward run has accumulated this
  // leaf's gradient into .grad (PyTorch's register_post_accumulate_grad_hook): the moment a
  // parameter's gradient of this run is final, e.g. for data-parallel gradient reduction. Not run by
  // autograd::grad, which leaves .grad alone. remove_hook removes it.
  std::size_t register_post_accumulate_grad_hook(PostAccumulateGradHook hook);
  void remove_hook(std::size_t handle);
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  std::uint32_t output_nr() const;
  std::string grad_fn_name() const;  // "" for leaves

  // ---- Ops as methods (see ops.hpp for the free functions) ------------------------------
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor leaky_relu(double negative_slope = 0.01) const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor clamp(double lo, double hi) const;
  Tensor pow(double exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor sum() const;
  Tensor sum(const std::vector<int>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<int>& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor max(int dim, bool keepdim = false) const;
  Tensor min() const;
  Tensor min(int dim, bool keepdim = false) const;
  Tensor argmax() const;
  Tensor argmax(int dim, bool keepdim = false) const;
  Tensor logsumexp(int dim, bool keepdim = false) const;
  Tensor var(const std::vector<int>& dims, bool unbiased = true, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;
  Tensor t() const;
  Tensor reshape(const std::vector<std::int64_t>& shape) const;
  Tensor flatten(int start_dim = 0, int end_dim = -1) const;
  Tensor transpose(int dim0, int dim1) const;
  Tensor permute(const std::vector<int>& dims) const;
  Tensor squeeze(int dim) const;
  Tensor unsqueeze(int dim) const;
  Tensor expand(const std::vector<std::int64_t>& shape) const;
  Tensor slice(int dim, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  Tensor index_select(int dim, const Tensor& indices) const;
  Tensor softmax(int dim) const;
  Tensor log_softmax(int dim) const;

  // ---- Internals (stable enough for custom ops, not for everyday use) ----------------------
  detail::TensorImpl* impl() const noexcept { return impl_.get(); }
  const std::shared_ptr<detail::TensorImpl>& impl_ptr() const noexcept { return impl_; }
  bool is_same(const Tensor& other) const noexcept { return impl_ == other.impl_; }

 private:
  detail::TensorImpl& checked(const char* op) const;
  std::shared_ptr<detail::TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- Creation ------------------------------------------------------------------------------
// The array's value type decides the dtype.
Tensor tensor(const xt::xarray<float>& values, bool requires_grad = false);
Tensor tensor(const xt::xarray<double>& values, bool requires_grad = false);
Tensor tensor(xt::xarray<float>&& values, bool requires_grad = false);
Tensor tensor(xt::xarray<double>&& values, bool requires_grad = false);
// Literals: tensor({1, 2, 3}), tensor({{1, 2}, {3, 4}}, kFloat64), tensor(2.5) for a 0-d tensor.
Tensor tensor(std::initializer_list<double> values, Dtype dtype = kFloat32, bool requires_grad = false);
Tensor tensor(std::initializer_list<std::initializer_list<double>> values, Dtype dtype = kFloat32,
              bool requires_grad = false);
Tensor tensor(double value, Dtype dtype = kFloat32, bool requires_grad = false);
Tensor scalar_tensor(double value, Dtype dtype = kFloat32);

Tensor empty(const Shape& shape, Dtype dtype = kFloat32);  // uninitialised values
Tensor zeros(const Shape& shape, Dtype dtype = kFloat32);
Tensor ones(const Shape& shape, Dtype dtype = kFloat32);
Tensor full(const Shape& shape, double value, Dtype dtype = kFloat32);
Tensor rand(const Shape& shape, Dtype dtype = kFloat32);   // uniform on [0, 1)
Tensor randn(const Shape& shape, Dtype dtype = kFloat32);  // standard normal
// Uniform integers in [low, high), held as integral values of the given dtype.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Dtype dtype = kFloat32);
// A random permutation of 0..n-1.
Tensor randperm(std::size_t n, Dtype dtype = kFloat32);
Tensor arange(std::int64_t n, Dtype dtype = kFloat32);  // 0, 1, ..., n-1
Tensor arange(double start, double end, double step = 1.0, Dtype dtype = kFloat32);
Tensor eye(std::size_t n, Dtype dtype = kFloat32);
Tensor eye(std::size_t n, std::size_t m, Dtype dtype = kFloat32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor rand_like(const Tensor& t);
Tensor randn_like(const Tensor& t);

// Seeds the generator behind every random draw (rand, randn, init, dropout, shuffling).
void manual_seed(std::uint64_t seed);

// The most threads xgrad may use, its BLAS included (its only threads). Each matrix product takes as
// many as its size pays for, up to this cap, so small and medium models stay on one thread. Default:
// the environment variable XGRAD_NUM_THREADS if set, else 1 on machines with at most 2 CPUs, else
// min(CPUs, 16).
void set_num_threads(int n);
int get_num_threads();

}  // namespace xgrad
