// What the image bindings share: torch tensors over core-owned memory, and dropping references without the GIL.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>
#include <vector>

#include "loaderbench/sample_writer.h"

namespace loaderbench::bindings {

using Tensor = nanobind::ndarray<nanobind::pytorch, nanobind::c_contig>;

/// Drops a reference without the GIL: releasing Arrow data may call back into a producer that takes the GIL
/// itself. During interpreter shutdown the GIL cannot be released, so it is dropped in place.
template <typename T>
void release_without_gil(T& owner) {
  if (!owner) return;
  if (!nanobind::is_alive()) {
    owner.reset();
    return;
  }
  nanobind::gil_scoped_release release;
  owner.reset();
}

inline nanobind::dlpack::dtype dlpack_type(OutputType type) {
  switch (type) {
    case OutputType::kFloat32: return nanobind::dtype<float>();
    case OutputType::kFloat16: return {static_cast<uint8_t>(nanobind::dlpack::dtype_code::Float), 16, 1};
    case OutputType::kUint8: return nanobind::dtype<uint8_t>();
  }
  return nanobind::dtype<float>();
}

inline Tensor make_tensor(void* data, const std::vector<int64_t>& shape, nanobind::dlpack::dtype dtype,
                          nanobind::handle owner) {
  std::vector<size_t> dims(shape.begin(), shape.end());
  return Tensor(data, dims.size(), dims.data(), owner, nullptr, dtype);
}

/// A new tensor holding one converted sample of `shape`: `write(out, scratch)` fills it with the GIL released. The
/// capsule owns the buffer from the start, so an exception in `write` frees it.
template <typename Write>
nanobind::object new_sample_tensor(const std::vector<int64_t>& shape, OutputType output, Write&& write) {
  int64_t bytes = output_size(output);
  for (int64_t d : shape) bytes *= d;
  auto* buffer = new std::vector<uint8_t>(static_cast<size_t>(bytes));
  nanobind::capsule owner(buffer, [](void* p) noexcept { delete static_cast<std::vector<uint8_t>*>(p); });
  std::vector<uint8_t> scratch;
  {
    nanobind::gil_scoped_release release;
    write(buffer->data(), scratch);
  }
  return nanobind::cast(make_tensor(buffer->data(), shape, dlpack_type(output), owner));
}

/// Resolves a negative index as Python does; an index outside the dataset is an IndexError naming both.
inline void check_row(int64_t size, int64_t& row) {
  const int64_t given = row;
  if (row < 0) row += size;
  if (row < 0 || row >= size) {
    throw nanobind::index_error(("index " + std::to_string(given) + " is out of range for a dataset of " +
                                 std::to_string(size) + " images")
                                    .c_str());
  }
}

}  // namespace loaderbench::bindings
