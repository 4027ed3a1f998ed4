// check_error: the test of an op's error message, shared by the layer-op test files. (Their
// gradcheck / gradgradcheck / fused-vs-formula / dtype / 0-element checks run from the op table:
// tests/op_table_layers.cpp.)
#pragma once
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <xgrad.hpp>

namespace xgrad::test {

// Checks that `f` throws an xgrad::Error whose message contains each of `parts`.
template <class F>
void check_error(F f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("no error thrown");
  } catch (const xgrad::Error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    for (const auto& p : parts) {
      CAPTURE(p);
      CHECK(msg.find(p) != std::string::npos);
    }
  }
}

}  // namespace xgrad::test
