// The one exception type every invalid call throws.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace xgrad {

// Every invalid call throws xgrad::Error; its message names the function and the offending
// shapes, dtypes or values.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
// Builds a message from any streamable pieces: fail("matmul: ", a, " vs ", b).
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(concat(std::forward<Args>(args)...));
}
}  // namespace detail

}  // namespace xgrad
