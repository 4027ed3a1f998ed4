// Named tensors on disk in the safetensors format (https://github.com/huggingface/safetensors), so
// files interoperate with the safetensors readers of other frameworks. nn (model weights) and optim
// (optimizer state) both save through here.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON (padded with spaces to a multiple
// of 8), then the raw little-endian tensor data. The header maps each name to
//   {"dtype": "F32" | "F64", "shape": [...], "data_offsets": [begin, end]}
// with offsets relative to the first data byte; an optional "__metadata__" entry maps strings to
// strings.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor.hpp"

namespace xgrad {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes `tensors` (packed in the given order) and `metadata` to `path`. Atomic: the file is written
// to path + ".tmp", flushed to disk and renamed, so a crash never leaves a half-written `path`.
// Names must be unique, non-empty and not "__metadata__"; every tensor must be defined.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor of a safetensors file, in the order of their data offsets (the order they were
// saved in). The whole header is validated before any tensor is allocated; a malformed file throws
// xgrad::Error saying what is wrong and where. Only F32 and F64 tensors are supported. The returned
// tensors do not require grad. With `metadata` non-null, it receives the "__metadata__" entries.
NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

}  // namespace xgrad
