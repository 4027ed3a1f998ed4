// data::read_idx: the IDX format of MNIST and Fashion-MNIST, plain or gzipped.
#pragma once
#include <string>

#include "../autograd/tensor.hpp"

namespace xgrad::data {

// Reads an IDX file (http://yann.lecun.com/exdb/mnist/): magic 0 0 <type> <ndim>, ndim big-endian
// uint32 dimensions, then the values in row-major order, big-endian. Type codes 0x08 (uint8),
// 0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32) and 0x0E (float64) are read, each
// converted to a Float32 tensor whose shape is the file's dimensions. Gzipped files (magic 1f 8b)
// are decompressed on the fly. A malformed file (bad magic, unknown type, 0 or more than 8 dims,
// a size that overflows or disagrees with the payload, truncation, trailing bytes) throws
// xgrad::Error naming the path, the problem and its byte offset.
Tensor read_idx(const std::string& path);

}  // namespace xgrad::data
