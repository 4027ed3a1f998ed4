// The safetensors header as save_safetensors writes it, for writers that put the bytes on disk
// themselves (train/'s checkpoints, which add fault injection and a directory fsync).
#pragma once
#include <map>
#include <string>

#include "../safetensors.hpp"

namespace xgrad::detail {

// The JSON header for `tensors` packed in order, padded with spaces to a multiple of 8, without
// the 8-byte little-endian length that precedes it in the file. Checks names as save_safetensors.
std::string safetensors_header(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata);

}  // namespace xgrad::detail
