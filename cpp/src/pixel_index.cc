#include "loaderbench/pixel_index.h"

#include <algorithm>
#include <limits>

namespace loaderbench {

const char* pixel_type_name(PixelType type) {
  switch (type) {
    case PixelType::kUint8: return "uint8";
    case PixelType::kUint16: return "uint16";
    case PixelType::kFloat32: return "float32";
    case PixelType::kInt16: return "int16";
    case PixelType::kInt32: return "int32";
  }
  return "?";
}

double largest_value(const uint8_t* data, int64_t count, PixelType type) {
  return with_pixel_type(type, [&]<typename T>(T) {
    const T* values = reinterpret_cast<const T*>(data);
    double widest = -std::numeric_limits<double>::infinity();
    if (count > 0) widest = static_cast<double>(*std::max_element(values, values + count));
    return widest;
  });
}

bool parse_pixel_type(std::string_view name, PixelType* out) {
  if (name == "uint8") *out = PixelType::kUint8;
  else if (name == "uint16") *out = PixelType::kUint16;
  else if (name == "int16") *out = PixelType::kInt16;
  else if (name == "int32") *out = PixelType::kInt32;
  else if (name == "float32" || name == "float") *out = PixelType::kFloat32;
  else return false;
  return true;
}

}  // namespace loaderbench
