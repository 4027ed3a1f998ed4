// Runtime element types and shapes: the vocabulary every other header uses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace xgrad {

enum class Dtype : std::uint8_t { Float32, Float64 };
inline constexpr Dtype kFloat32 = Dtype::Float32;
inline constexpr Dtype kFloat64 = Dtype::Float64;

const char* dtype_name(Dtype d);  // "float32" / "float64"
std::size_t itemsize(Dtype d);
std::ostream& operator<<(std::ostream& os, Dtype d);

// Maps a C++ element type to its Dtype; only float and double exist.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr Dtype value = kFloat32; };
template <> struct dtype_of<double> { static constexpr Dtype value = kFloat64; };

using Shape = std::vector<std::size_t>;
std::string shape_str(const Shape& s);  // "[2, 3]"

}  // namespace xgrad
