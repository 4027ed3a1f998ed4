// Custom differentiable ops written by users, the LibTorch way:
//
//   struct Cube : xgrad::autograd::Function<Cube> {
//     static Tensor forward(AutogradContext* ctx, const Tensor& x) {
//       ctx->save_for_backward({x});
//       return x * x * x;
//     }
//     static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> grad_outputs) {
//       Tensor x = ctx->saved()[0];
//       return {grad_outputs[0] * 3.0 * x * x};
//     }
//   };
//   Tensor y = Cube::apply(x);
//
// forward runs with grad mode off; its arguments may mix Tensors (also std::vector<Tensor> and
// std::optional<Tensor>, each element counting as one Tensor argument) and other values. When grad mode is
// on and a Tensor argument requires grad, the output gets a node whose backward calls Derived::backward
// through the same engine as the built-in ops (recorded under create_graph, so a backward written in
// Tensor ops is itself differentiable). backward returns one gradient per Tensor argument of forward
// (or, as in LibTorch, one per argument with undefined Tensors for the non-Tensor ones); undefined
// means zero. The node is named by a static `name()` of Derived if there is one, else by its type.
//
// Forward mode (autograd/forward_ad.hpp): a Function may define
//   static std::vector<Tensor> jvp(AutogradContext* ctx, std::vector<Tensor> input_tangents);
// returning one tangent per output (undefined = zero) from one tangent per Tensor input (zeros where the
// input carries none), with the context forward filled. Without it, forward mode through the Function
// is an error naming it.
#pragma once
#include <any>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "grad_mode.hpp"
#include "tensor.hpp"

namespace xgrad::detail {
class FunctionCall;
}

namespace xgrad::autograd {

class FunctionNode;

class AutogradContext {
 public:
  AutogradContext();
  ~AutogradContext();
  AutogradContext(const AutogradContext&) = delete;
  AutogradContext& operator=(const AutogradContext&) = delete;

  // Tensors backward will need (inputs or outputs of forward). Replaces what was saved before.
  void save_for_backward(std::vector<Tensor> tensors);
  // The saved tensors. Throws after a backward without retain_graph released them.
  std::vector<Tensor> saved() const;
  std::vector<Tensor> get_saved_variables() const { return saved(); }  // LibTorch's name
  // Marks outputs of forward as not differentiable (integer-like results, indices): they come out
  // without history and do not require grad, and backward receives zeros of their shape as their
  // gradients (PyTorch's mark_non_differentiable). Call it in forward with tensors forward returns.
  void mark_non_differentiable(std::vector<Tensor> outputs);
  // Whether backward must compute the gradient of the i-th Tensor argument of forward.
  bool needs_input_grad(std::size_t i) const;

  // Non-tensor values for backward (kept until the node is destroyed).
  std::unordered_map<std::string, std::any> saved_data;

 private:
  friend class FunctionNode;
  friend class xgrad::detail::FunctionCall;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xgrad::autograd

namespace xgrad::detail {

using FunctionBackward = std::vector<Tensor> (*)(autograd::AutogradContext*, std::vector<Tensor>);
// A custom Function's forward-mode rule (its static jvp), or null when it has none.
using FunctionJvp = std::vector<Tensor> (*)(autograd::AutogradContext*, std::vector<Tensor>);

std::string demangle(const char* mangled_name);

// One call of Function<Derived>::apply, the non-template part: decides whether a node is needed,
// provides the context forward writes into, and attaches the node to the outputs.
class FunctionCall {
 public:
  // `is_tensor_arg[k]` tells whether forward argument k (vectors of Tensors flattened) is a Tensor;
  // `inputs` are those Tensors.
  FunctionCall(const std::string* name, FunctionBackward backward, std::vector<Tensor> inputs,
               std::vector<bool> is_tensor_arg, FunctionJvp jvp = nullptr);
  ~FunctionCall();
  FunctionCall(const FunctionCall&) = delete;
  FunctionCall& operator=(const FunctionCall&) = delete;

  autograd::AutogradContext* context() noexcept;
  // Gives the outputs their history (when a node is needed) and returns them.
  std::vector<Tensor> finish(std::vector<Tensor> outputs);

 private:
  // Forward mode: the outputs' tangents by the Function's jvp, when an input carries a tangent.
  std::vector<Tensor> with_tangents(std::vector<Tensor> outputs);

 private:
  std::shared_ptr<autograd::FunctionNode> node_;
  std::vector<Tensor> inputs_;                      // while recording, to spot outputs that alias them
  std::vector<Tensor> dual_inputs_;                 // while forward AD is on: the inputs, for their tangents
  FunctionJvp jvp_ = nullptr;
  std::unique_ptr<autograd::AutogradContext> local_context_;  // when no node is needed
};

template <class Derived>
const std::string& function_name() {
  if constexpr (requires { Derived::name(); }) {
    static const std::string name(Derived::name());
    return name;
  } else {
    static const std::string name = demangle(typeid(Derived).name());
    return name;
  }
}

}  // namespace xgrad::detail

namespace xgrad::autograd {

template <class Derived>
struct Function {
  // Runs Derived::forward(ctx, args...) with grad mode off and records a node for its output(s).
  // Returns what forward returns: a Tensor or a std::vector<Tensor>.
  template <class... Args>
  static auto apply(Args&&... args) {
    std::vector<Tensor> inputs;
    std::vector<bool> is_tensor_arg;
    inputs.reserve(sizeof...(Args));
    (collect(inputs, is_tensor_arg, args), ...);
    // A captureless lambda adapts any backward signature that accepts (ctx, grads) to one pointer type.
    detail::FunctionBackward backward = [](AutogradContext* ctx, std::vector<Tensor> grads) -> std::vector<Tensor> {
      return Derived::backward(ctx, std::move(grads));
    };
    detail::FunctionJvp jvp = nullptr;
    if constexpr (requires(AutogradContext* c, std::vector<Tensor> t) { Derived::jvp(c, std::move(t)); }) {
      jvp = [](AutogradContext* ctx, std::vector<Tensor> tangents) -> std::vector<Tensor> {
        return Derived::jvp(ctx, std::move(tangents));
      };
    }
    detail::FunctionCall call(&detail::function_name<Derived>(), backward, std::move(inputs),
                              std::move(is_tensor_arg), jvp);
    using Result = decltype(Derived::forward(call.context(), std::forward<Args>(args)...));
    static_assert(std::is_same_v<Result, Tensor> || std::is_same_v<Result, std::vector<Tensor>>,
                  "Function::forward must return a Tensor or a std::vector<Tensor>");
    std::vector<Tensor> outputs;
    {
      AutoGradMode no_grad(false);
      if constexpr (std::is_same_v<Result, Tensor>) {
        outputs.push_back(Derived::forward(call.context(), std::forward<Args>(args)...));
      } else {
        outputs = Derived::forward(call.context(), std::forward<Args>(args)...);
      }
    }
    outputs = call.finish(std::move(outputs));
    if constexpr (std::is_same_v<Result, Tensor>) {
      return std::move(outputs[0]);
    } else {
      return outputs;
    }
  }

 private:
  // The Tensor inputs, as LibTorch counts them: a Tensor, each element of a std::vector<Tensor>, and a
  // std::optional<Tensor> (undefined when empty) are inputs; any other argument is not.
  template <class A>
  static void collect(std::vector<Tensor>& inputs, std::vector<bool>& is_tensor_arg, const A& arg) {
    using T = std::remove_cvref_t<A>;
    if constexpr (std::is_same_v<T, Tensor>) {
      inputs.push_back(arg);
      is_tensor_arg.push_back(true);
    } else if constexpr (std::is_same_v<T, std::vector<Tensor>>) {
      inputs.insert(inputs.end(), arg.begin(), arg.end());
      is_tensor_arg.insert(is_tensor_arg.end(), arg.size(), true);
    } else if constexpr (std::is_same_v<T, std::optional<Tensor>>) {
      inputs.push_back(arg.value_or(Tensor()));
      is_tensor_arg.push_back(true);
    } else {
      is_tensor_arg.push_back(false);
    }
  }
};

}  // namespace xgrad::autograd
