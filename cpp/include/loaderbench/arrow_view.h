// Validated, typed read access to an imported Arrow array tree (schema + array side by side).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loaderbench/arrow_c_abi.h"

namespace loaderbench {

/// Raised for any Arrow input the core refuses to trust; the message names the field path and the problem.
class ImportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ArrowType {
  kNull, kBool, kInt8, kUint8, kInt16, kUint16, kInt32, kUint32, kInt64, kUint64, kFloat16, kFloat32,
  kFloat64, kString, kLargeString, kBinary, kLargeBinary, kList, kLargeList, kFixedSizeList, kStruct,
  kTimestamp, kDictionary, kOther
};

struct ParsedFormat {
  ArrowType type = ArrowType::kOther;
  int64_t fixed_size = 0;  // for "+w:N"
};

/// Parses a C Data Interface format string ("S", "+l", "+w:4", "tsu:UTC", ...).
ParsedFormat parse_format(const char* format);
/// A short human name for messages ("uint16", "list", ...).
const char* type_name(ArrowType type);
/// Byte width of a fixed-width primitive, 0 for everything else.
int primitive_size(ArrowType type);
bool is_integer(ArrowType type);

/// One array node with its schema, validated once at construction so that accessors need no checks:
/// buffer counts, non-null buffers where data exists, child counts, and list/string offsets that are
/// monotonic and inside the child's length, all with overflow-checked arithmetic. Types the core never reads
/// (kOther) and dictionary-encoded arrays (kDictionary: their values are indices, so the core refuses to read them)
/// are not descended into.
class ArrayView {
 public:
  /// Validates `array` against `schema` (recursively) and returns the view; throws ImportError.
  static ArrayView make(const ArrowSchema* schema, const ArrowArray* array, std::string path);

  ArrowType type() const { return format_.type; }
  int64_t length() const { return array_->length; }
  int64_t offset() const { return array_->offset; }
  /// For struct arrays: the index into each child of logical element i (a struct's offset applies to its
  /// children, on top of each child's own offset).
  int64_t child_row(int64_t i) const { return array_->offset + i; }
  const std::string& path() const { return path_; }
  std::string_view name() const { return name_; }

  /// Whether logical element i (0-based, this array's offset applied inside) is null.
  bool is_null(int64_t i) const;
  /// Whether any logical element in [begin, end) is null.
  bool any_null(int64_t begin, int64_t end) const;
  /// The child with this field name, or nullptr.
  const ArrayView* child(std::string_view name) const;
  const ArrayView& child(size_t k) const { return children_[k]; }
  size_t num_children() const { return children_.size(); }

  /// Integer element i of an integer array, widened.
  int64_t integer(int64_t i) const;
  /// For list types: the child's logical index range [begin, end) of element i.
  std::pair<int64_t, int64_t> list_range(int64_t i) const;
  /// For string/binary types: the bytes of element i.
  std::string_view bytes(int64_t i) const;
  /// First value of a primitive array's data buffer with this array's offset applied.
  const uint8_t* primitive_data() const;

 private:
  ArrayView() = default;
  void validate();
  int64_t offset_at(int64_t k) const;  // raw offsets[k] for list/string/binary

  const ArrowSchema* schema_ = nullptr;
  const ArrowArray* array_ = nullptr;
  ParsedFormat format_;
  std::string_view name_;  // the schema's name, measured once: child(name) compares it for every row imported
  std::string path_;
  std::vector<ArrayView> children_;
};

}  // namespace loaderbench
