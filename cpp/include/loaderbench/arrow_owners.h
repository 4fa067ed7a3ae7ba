// RAII owners for the Arrow C Data/Stream Interface structs (in the manner of nanoarrow's
// UniqueSchema/UniqueArray/UniqueArrayStream): a struct is released exactly once, when its owner dies.
#pragma once

#include <utility>

#include "loaderbench/arrow_c_abi.h"

namespace loaderbench {

/// Owns one C struct with a `release` callback. Taking ownership moves the struct bytes in and marks the
/// source released (release = nullptr), as the C Data Interface's move semantics require.
template <typename T>
class ArrowOwner {
 public:
  ArrowOwner() { value_.release = nullptr; }
  /// Moves `*source` into this owner; the source is left released.
  explicit ArrowOwner(T* source) : value_(*source) { source->release = nullptr; }
  ArrowOwner(const ArrowOwner&) = delete;
  ArrowOwner& operator=(const ArrowOwner&) = delete;
  ArrowOwner(ArrowOwner&& other) noexcept : value_(other.value_) { other.value_.release = nullptr; }
  ArrowOwner& operator=(ArrowOwner&& other) noexcept {
    if (this != &other) {
      reset();
      value_ = other.value_;
      other.value_.release = nullptr;
    }
    return *this;
  }
  ~ArrowOwner() { reset(); }

  void reset() {
    if (value_.release != nullptr) value_.release(&value_);
    value_.release = nullptr;
  }
  /// The struct, for producers to fill (call reset() first if it may hold something).
  T* get() { return &value_; }
  const T* get() const { return &value_; }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }
  bool valid() const { return value_.release != nullptr; }

 private:
  T value_;
};

using SchemaOwner = ArrowOwner<ArrowSchema>;
using ArrayOwner = ArrowOwner<ArrowArray>;
using StreamOwner = ArrowOwner<ArrowArrayStream>;

}  // namespace loaderbench
