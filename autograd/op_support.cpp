// Shared op machinery: checks with clear messages, broadcasting, saved tensors, history.
#include "detail/op_support.hpp"

#include <unistd.h>

#include <limits>

namespace xgrad::detail {

std::size_t numel_of(const Shape& s) {
  std::size_t n = 1;
  for (std::size_t d : s) n *= d;
  return n;
}

std::size_t max_tensor_bytes() noexcept {
  static const std::size_t limit = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page_size = ::sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page_size <= 0) return std::numeric_limits<std::size_t>::max() / 2;
    return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page_size);
  }();
  return limit;
}

void fail_allocation(const char* op, const Shape& shape, std::size_t itemsize, bool overflow) {
  const char* type = itemsize == 4 ? "float32" : itemsize == 8 ? "float64/index" : "element";
  if (overflow)
    fail(op, ": shape ", shape_str(shape), " of ", type, " is too large (the product of its sizes overflows 64 bits)");
  std::size_t bytes = itemsize;
  for (std::size_t d : shape) bytes *= d;
  fail(op, ": shape ", shape_str(shape), " of ", type, " needs ", bytes, " bytes, more than the machine's ",
       max_tensor_bytes(), " bytes of memory");
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
  if (saved_tensor_hooks_on) [[unlikely]] {
    packed_ = pack_saved(t, true);
    return;
  }
  TensorImpl& impl = *t.impl();
  storage_ = impl.storage;
  grad_fn_ = impl.grad_fn;
  output_nr_ = impl.output_nr;
  dtype_ = impl.dtype;
  if (forward_ad_enabled()) [[unlikely]]
    tangent_ = tangent_box_for_saving(t);
}

Tensor SavedTensor::unpack(const autograd::Node* owner) const {
  if (tensor_.defined()) return tensor_;
  if (packed_) [[unlikely]]
    return unpack_saved(*packed_, owner);  // with its tangent (pack_saved keeps the tangent's box)
  if (!storage_) {
    if (owner && owner->released()) owner->throw_released();
    fail("internal error: unpacking a tensor that was never saved");
  }
  auto impl = std::make_shared<TensorImpl>(storage_, dtype_);
  impl->grad_fn = grad_fn_.lock();
  impl->output_nr = output_nr_;
  if (tangent_) [[unlikely]]
    if (Tensor tangent = saved_tangent(tangent_.get()); tangent.defined()) {
      impl->fw = std::make_unique<ForwardGrad>();
      impl->fw->tangent = std::move(tangent);
      impl->fw->level = forward_level.load(std::memory_order_relaxed);
    }
  return Tensor(std::move(impl));
}

const Storage& SavedTensor::storage(const autograd::Node* owner) const {
  if (tensor_.defined()) return *tensor_.impl()->storage;
  if (packed_) [[unlikely]]
    return *unpacked_values(*packed_, owner).impl()->storage;
  if (!storage_) {
    if (owner && owner->released()) owner->throw_released();
    fail("internal error: reading a tensor that was never saved");
  }
  return *storage_;
}

// ---- The array pool (array_pool.hpp) ------------------------------------------------------------
namespace {
// Readable at any time: trivially destructible, so still valid while (and after) `pool` below is
// destroyed at thread exit, when tensors dying later must free their arrays normally.
thread_local bool pool_open = true;

struct ArrayPool {
  std::vector<Array<float>> floats;
  std::vector<Array<double>> doubles;
  std::size_t bytes = 0;
  std::size_t next_victim = 0;
  ArrayPool() {
    floats.reserve(kMaxPooledArrays);  // so that recycling never allocates
    doubles.reserve(kMaxPooledArrays);
  }
  ~ArrayPool();
  std::vector<Array<float>>& of(float) { return floats; }
  std::vector<Array<double>>& of(double) { return doubles; }
};
// The pool through a plain pointer: a thread_local with a constructor is reached through a TLS
// init wrapper on every access (about 100 instructions), a trivially initialised pointer is not.
thread_local ArrayPool* pool_ptr = nullptr;
ArrayPool::~ArrayPool() {
  pool_open = false;
  pool_ptr = nullptr;
}
ArrayPool* this_thread_pool() {
  if (pool_ptr || !pool_open) return pool_ptr;
  static thread_local ArrayPool pool;
  pool_ptr = &pool;
  return pool_ptr;
}
}  // namespace

template <class T>
Array<T>* recycled_array(std::size_t n) noexcept {
  ArrayPool* p = this_thread_pool();
  if (!p) return nullptr;
  auto& list = p->of(T{});
  // Newest first: the array freed last is the likeliest to be the right size, and still in cache.
  for (std::size_t i = list.size(); i-- > 0;) {
    if (list[i].size() != n) continue;
    if (i + 1 != list.size()) std::swap(list[i], list.back());
    return &list.back();
  }
  return nullptr;
}

template <class T>
void pop_recycled(std::size_t n) noexcept {
  ArrayPool& p = *pool_ptr;  // recycled_array just found it
  p.bytes -= n * sizeof(T);  // (the array itself has been moved from: its size is gone)
  p.of(T{}).pop_back();
}

template <class T>
void recycle_array(Array<T>& a) noexcept {
  const std::size_t bytes = a.size() * sizeof(T);
  if (bytes == 0 || bytes > kMaxPooledArrayBytes) return;
  ArrayPool* p = this_thread_pool();
  if (!p) return;
  auto& list = p->of(T{});
  // Full by count (a graph being destroyed frees hundreds of arrays at once): the newcomer is freed,
  // which costs nothing extra. Full by bytes (large arrays): pooled arrays of this dtype make room,
  // taken in turn, so that the pool follows the sizes the program uses now.
  if (list.size() >= kMaxPooledArrays) return;
  while (p->bytes + bytes > kMaxPoolBytes && !list.empty()) {
    Array<T>& victim = list[p->next_victim++ % list.size()];
    p->bytes -= victim.size() * sizeof(T);
    std::swap(victim, list.back());
    list.pop_back();
  }
  if (p->bytes + bytes > kMaxPoolBytes) return;  // the other dtype's arrays hold the bytes
  list.push_back(std::move(a));  // within the reserved capacity: no allocation, no throw
  p->bytes += bytes;
}

template Array<float>* recycled_array<float>(std::size_t) noexcept;
template Array<double>* recycled_array<double>(std::size_t) noexcept;
template void pop_recycled<float>(std::size_t) noexcept;
template void pop_recycled<double>(std::size_t) noexcept;
template void recycle_array<float>(Array<float>&) noexcept;
template void recycle_array<double>(Array<double>&) noexcept;

Storage::~Storage() {
  std::visit([](auto& a) { recycle_array(a); }, value);
}

bool exclusively_owned(const Tensor& t) noexcept {
  if (!t.defined() || t.impl_ptr().use_count() != 1) return false;
  const TensorImpl& impl = *t.impl();
  return !impl.grad_fn && !impl.requires_grad && !impl.fw && impl.storage.use_count() == 1;
}

void accumulate_gradient(Tensor& acc, Tensor&& g) {
  if (fused_backward() && acc.defined() && g.defined() && acc.dtype() == g.dtype()) {
    const bool acc_free = exclusively_owned(acc);
    if (acc_free || exclusively_owned(g)) {
      Tensor& into = acc_free ? acc : g;
      const Tensor& from = acc_free ? g : acc;
      const bool same_shape = dispatch(acc.dtype(), [&](auto tag) {
        using T = decltype(tag);
        Array<T>& a = arr<T>(into);
        const Array<T>& b = arr<T>(from);
        if (!shapes_equal(a.shape(), b.shape())) return false;
        T* __restrict pa = a.data();
        const T* __restrict pb = b.data();
        const std::size_t n = a.size();
#pragma omp simd
        for (std::size_t i = 0; i < n; ++i) pa[i] += pb[i];
        return true;
      });
      if (same_shape) {
        if (!acc_free) acc = std::move(g);
        return;
      }
    }
  }
  acc = add(acc, g);
}

void SavedTensor::reset() noexcept {
  tensor_ = Tensor();
  storage_.reset();
  grad_fn_.reset();
  tangent_.reset();
  packed_.reset();
}

}  // namespace xgrad::detail
