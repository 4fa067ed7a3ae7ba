#include "loaderbench/arrow_view.h"

#include <cstring>
#include <string>

namespace loaderbench {
namespace {

bool starts_with(const char* s, const char* prefix) { return std::strncmp(s, prefix, std::strlen(prefix)) == 0; }

}  // namespace

ParsedFormat parse_format(const char* format) {
  if (format == nullptr) throw ImportError("schema has a null format string");
  static constexpr std::pair<const char*, ArrowType> kSimple[] = {
      {"n", ArrowType::kNull},    {"b", ArrowType::kBool},      {"c", ArrowType::kInt8},
      {"C", ArrowType::kUint8},   {"s", ArrowType::kInt16},     {"S", ArrowType::kUint16},
      {"i", ArrowType::kInt32},   {"I", ArrowType::kUint32},    {"l", ArrowType::kInt64},
      {"L", ArrowType::kUint64},  {"e", ArrowType::kFloat16},   {"f", ArrowType::kFloat32},
      {"g", ArrowType::kFloat64}, {"u", ArrowType::kString},    {"U", ArrowType::kLargeString},
      {"z", ArrowType::kBinary},  {"Z", ArrowType::kLargeBinary}, {"+l", ArrowType::kList},
      {"+L", ArrowType::kLargeList}, {"+s", ArrowType::kStruct}};
  for (const auto& [text, type] : kSimple) {
    if (std::strcmp(format, text) == 0) return {type, 0};
  }
  if (starts_with(format, "+w:")) {
    char* end = nullptr;
    const long long n = std::strtoll(format + 3, &end, 10);
    if (end == format + 3 || *end != '\0' || n < 0) throw ImportError(std::string("bad format string ") + format);
    return {ArrowType::kFixedSizeList, n};
  }
  if (starts_with(format, "ts")) return {ArrowType::kTimestamp, 0};
  return {ArrowType::kOther, 0};
}

const char* type_name(ArrowType type) {
  switch (type) {
    case ArrowType::kNull: return "null";
    case ArrowType::kBool: return "bool";
    case ArrowType::kInt8: return "int8";
    case ArrowType::kUint8: return "uint8";
    case ArrowType::kInt16: return "int16";
    case ArrowType::kUint16: return "uint16";
    case ArrowType::kInt32: return "int32";
    case ArrowType::kUint32: return "uint32";
    case ArrowType::kInt64: return "int64";
    case ArrowType::kUint64: return "uint64";
    case ArrowType::kFloat16: return "float16";
    case ArrowType::kFloat32: return "float32";
    case ArrowType::kFloat64: return "float64";
    case ArrowType::kString: return "string";
    case ArrowType::kLargeString: return "large_string";
    case ArrowType::kBinary: return "binary";
    case ArrowType::kLargeBinary: return "large_binary";
    case ArrowType::kList: return "list";
    case ArrowType::kLargeList: return "large_list";
    case ArrowType::kFixedSizeList: return "fixed_size_list";
    case ArrowType::kStruct: return "struct";
    case ArrowType::kTimestamp: return "timestamp";
    case ArrowType::kDictionary: return "dictionary-encoded";
    case ArrowType::kOther: return "other";
  }
  return "other";
}

int primitive_size(ArrowType type) {
  switch (type) {
    case ArrowType::kInt8: case ArrowType::kUint8: return 1;
    case ArrowType::kInt16: case ArrowType::kUint16: case ArrowType::kFloat16: return 2;
    case ArrowType::kInt32: case ArrowType::kUint32: case ArrowType::kFloat32: return 4;
    case ArrowType::kInt64: case ArrowType::kUint64: case ArrowType::kFloat64: case ArrowType::kTimestamp: return 8;
    default: return 0;
  }
}

bool is_integer(ArrowType type) {
  switch (type) {
    case ArrowType::kInt8: case ArrowType::kUint8: case ArrowType::kInt16: case ArrowType::kUint16:
    case ArrowType::kInt32: case ArrowType::kUint32: case ArrowType::kInt64: case ArrowType::kUint64:
      return true;
    default:
      return false;
  }
}

ArrayView ArrayView::make(const ArrowSchema* schema, const ArrowArray* array, std::string path) {
  if (schema == nullptr || array == nullptr) throw ImportError(path + ": missing schema or array");
  if (schema->release == nullptr) throw ImportError(path + ": schema is released");
  if (array->release == nullptr) throw ImportError(path + ": array is released");
  ArrayView view;
  view.schema_ = schema;
  view.array_ = array;
  view.format_ = parse_format(schema->format);
  view.name_ = schema->name != nullptr ? std::string_view(schema->name) : std::string_view();
  view.path_ = std::move(path);
  if ((schema->dictionary != nullptr) != (array->dictionary != nullptr)) {
    throw ImportError(view.path_ + ": schema and array disagree on dictionary encoding");
  }
  // The format string of a dictionary-encoded field is its index type: reading it as values would be wrong.
  if (schema->dictionary != nullptr) view.format_ = {ArrowType::kDictionary, 0};
  view.validate();
  return view;
}

void ArrayView::validate() {
  const ArrowArray& a = *array_;
  const std::string where = path_ + " (" + type_name(format_.type) + ")";
  if (a.length < 0 || a.offset < 0) throw ImportError(where + ": negative length or offset");
  int64_t end = 0;
  if (__builtin_add_overflow(a.offset, a.length, &end)) throw ImportError(where + ": offset + length overflows");
  if (format_.type == ArrowType::kOther || format_.type == ArrowType::kNull || format_.type == ArrowType::kDictionary) {
    return;  // never read
  }
  if (a.n_buffers < 0 || a.n_children < 0) throw ImportError(where + ": negative buffer or child count");
  // The C Data Interface carries no buffer sizes: they follow from offset + length. Those sizes (and the pointer
  // arithmetic that reads them) must fit in int64, or no buffer could be that large and the array is a lie.
  {
    int64_t width = primitive_size(format_.type), entries = end, bytes = 0;
    const bool has_offsets = format_.type == ArrowType::kList || format_.type == ArrowType::kLargeList ||
                             format_.type == ArrowType::kString || format_.type == ArrowType::kLargeString ||
                             format_.type == ArrowType::kBinary || format_.type == ArrowType::kLargeBinary;
    if (has_offsets) {
      const bool large = format_.type == ArrowType::kLargeList || format_.type == ArrowType::kLargeString ||
                         format_.type == ArrowType::kLargeBinary;
      width = large ? 8 : 4;
      if (__builtin_add_overflow(end, int64_t{1}, &entries)) throw ImportError(where + ": offset + length overflows");
    }
    if (__builtin_mul_overflow(entries, width, &bytes)) {
      throw ImportError(where + ": offset + length (" + std::to_string(end) + ") is larger than any buffer can be");
    }
  }

  int64_t expected_buffers = 2;
  switch (format_.type) {
    case ArrowType::kStruct: case ArrowType::kFixedSizeList: expected_buffers = 1; break;
    case ArrowType::kString: case ArrowType::kLargeString: case ArrowType::kBinary: case ArrowType::kLargeBinary:
      expected_buffers = 3; break;
    default: break;
  }
  if (a.n_buffers != expected_buffers) {
    throw ImportError(where + ": expected " + std::to_string(expected_buffers) + " buffers, got " +
                      std::to_string(a.n_buffers));
  }
  if (a.buffers == nullptr) throw ImportError(where + ": buffers pointer is null");
  if (a.null_count != 0 && a.null_count != -1 && a.buffers[0] == nullptr) {
    throw ImportError(where + ": null_count " + std::to_string(a.null_count) + " but no validity buffer");
  }
  if (a.n_children != schema_->n_children) {
    throw ImportError(where + ": array has " + std::to_string(a.n_children) + " children, schema " +
                      std::to_string(schema_->n_children));
  }
  if (a.n_children > 0 && (a.children == nullptr || schema_->children == nullptr)) {
    throw ImportError(where + ": children pointer is null");
  }
  if (end > 0 && expected_buffers >= 2 && a.buffers[1] == nullptr) {
    throw ImportError(where + ": data/offsets buffer is null for a non-empty array");
  }
  if (expected_buffers == 3 && end > 0 && a.buffers[2] == nullptr && offset_at(end) != offset_at(a.offset)) {
    throw ImportError(where + ": values buffer is null");
  }

  children_.reserve(static_cast<size_t>(a.n_children));
  for (int64_t k = 0; k < a.n_children; ++k) {
    const ArrowSchema* child_schema = schema_->children[k];
    const char* child_name = (child_schema && child_schema->name) ? child_schema->name : "?";
    children_.push_back(ArrayView::make(child_schema, a.children[k], path_ + "." + child_name));
  }

  switch (format_.type) {
    case ArrowType::kStruct:
      for (const ArrayView& c : children_) {
        if (c.length() < end) {
          throw ImportError(c.path_ + ": struct child has " + std::to_string(c.length()) + " values, parent needs " +
                            std::to_string(end));
        }
      }
      break;
    case ArrowType::kList: case ArrowType::kLargeList: {
      if (children_.size() != 1) throw ImportError(where + ": a list must have exactly one child");
      if (a.length == 0) break;
      int64_t previous = offset_at(a.offset);
      if (previous < 0) throw ImportError(where + ": negative list offset");
      for (int64_t k = a.offset + 1; k <= end; ++k) {
        const int64_t current = offset_at(k);
        if (current < previous) throw ImportError(where + ": list offsets decrease at element " + std::to_string(k - a.offset));
        previous = current;
      }
      if (previous > children_[0].length()) {
        throw ImportError(where + ": list offsets reach " + std::to_string(previous) + " but the child has " +
                          std::to_string(children_[0].length()) + " values");
      }
      break;
    }
    case ArrowType::kFixedSizeList: {
      if (children_.size() != 1) throw ImportError(where + ": a list must have exactly one child");
      int64_t needed = 0;
      if (__builtin_mul_overflow(end, format_.fixed_size, &needed) || children_[0].length() < needed) {
        throw ImportError(where + ": fixed-size list child too short");
      }
      break;
    }
    case ArrowType::kString: case ArrowType::kLargeString: case ArrowType::kBinary: case ArrowType::kLargeBinary: {
      if (a.length == 0) break;
      int64_t previous = offset_at(a.offset);
      if (previous < 0) throw ImportError(where + ": negative offset");
      for (int64_t k = a.offset + 1; k <= end; ++k) {
        const int64_t current = offset_at(k);
        if (current < previous) throw ImportError(where + ": offsets decrease at element " + std::to_string(k - a.offset));
        previous = current;
      }
      break;
    }
    default:
      break;
  }
}

int64_t ArrayView::offset_at(int64_t k) const {
  const void* offsets = array_->buffers[1];
  if (offsets == nullptr) return 0;  // only reachable for empty arrays
  const bool large = format_.type == ArrowType::kLargeList || format_.type == ArrowType::kLargeString ||
                     format_.type == ArrowType::kLargeBinary;
  return large ? static_cast<const int64_t*>(offsets)[k] : static_cast<const int32_t*>(offsets)[k];
}

bool ArrayView::is_null(int64_t i) const {
  if (format_.type == ArrowType::kNull) return true;
  if (array_->null_count == 0 || array_->buffers[0] == nullptr) return false;
  const int64_t bit = array_->offset + i;
  const auto* validity = static_cast<const uint8_t*>(array_->buffers[0]);
  return ((validity[bit >> 3] >> (bit & 7)) & 1) == 0;
}

bool ArrayView::any_null(int64_t begin, int64_t end) const {
  if (format_.type == ArrowType::kNull) return end > begin;
  if (array_->null_count == 0 || array_->buffers[0] == nullptr) return false;
  for (int64_t i = begin; i < end; ++i) {
    if (is_null(i)) return true;
  }
  return false;
}

const ArrayView* ArrayView::child(std::string_view name) const {
  for (const ArrayView& c : children_) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}

int64_t ArrayView::integer(int64_t i) const {
  const int64_t k = array_->offset + i;
  const void* data = array_->buffers[1];
  switch (format_.type) {
    case ArrowType::kInt8: return static_cast<const int8_t*>(data)[k];
    case ArrowType::kUint8: return static_cast<const uint8_t*>(data)[k];
    case ArrowType::kInt16: return static_cast<const int16_t*>(data)[k];
    case ArrowType::kUint16: return static_cast<const uint16_t*>(data)[k];
    case ArrowType::kInt32: return static_cast<const int32_t*>(data)[k];
    case ArrowType::kUint32: return static_cast<const uint32_t*>(data)[k];
    case ArrowType::kInt64: return static_cast<const int64_t*>(data)[k];
    case ArrowType::kUint64: return static_cast<int64_t>(static_cast<const uint64_t*>(data)[k]);
    default: throw ImportError(path_ + ": expected an integer, found " + type_name(format_.type));
  }
}

std::pair<int64_t, int64_t> ArrayView::list_range(int64_t i) const {
  const int64_t k = array_->offset + i;
  if (format_.type == ArrowType::kFixedSizeList) return {k * format_.fixed_size, (k + 1) * format_.fixed_size};
  if (format_.type != ArrowType::kList && format_.type != ArrowType::kLargeList) {
    throw ImportError(path_ + ": expected a list, found " + type_name(format_.type));
  }
  return {offset_at(k), offset_at(k + 1)};
}

std::string_view ArrayView::bytes(int64_t i) const {
  if (format_.type != ArrowType::kString && format_.type != ArrowType::kLargeString &&
      format_.type != ArrowType::kBinary && format_.type != ArrowType::kLargeBinary) {
    throw ImportError(path_ + ": expected a string or binary, found " + type_name(format_.type));
  }
  const int64_t k = array_->offset + i;
  const int64_t begin = offset_at(k);
  const int64_t end = offset_at(k + 1);
  const auto* values = static_cast<const char*>(array_->buffers[2]);
  if (end == begin) return {};
  return {values + begin, static_cast<size_t>(end - begin)};
}

const uint8_t* ArrayView::primitive_data() const {
  const int size = primitive_size(format_.type);
  if (size == 0) throw ImportError(path_ + ": expected a primitive array, found " + type_name(format_.type));
  return static_cast<const uint8_t*>(array_->buffers[1]) + array_->offset * size;
}

}  // namespace loaderbench
