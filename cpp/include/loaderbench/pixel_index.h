// Where every image's pixels live inside imported Arrow buffers: a flat list of pieces (a plane or a chunk)
// per image, recorded while the importer validates the rows, so readers copy without re-checking.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace loaderbench {

// Signed types are what CT and MRI data hold (int16) and what some label or count images hold (int32).
enum class PixelType : uint8_t { kUint8, kUint16, kFloat32, kInt16, kInt32 };
// kGzip (a gzip or zlib stream) and kBlosc are Zarr chunk codecs only; OME-Arrow chunks are zstd or lz4.
enum class Codec : uint8_t { kNone, kZstd, kLz4, kGzip, kBlosc };

/// Size in bytes of one element.
inline int pixel_size(PixelType type) {
  switch (type) {
    case PixelType::kUint8: return 1;
    case PixelType::kUint16:
    case PixelType::kInt16: return 2;
    case PixelType::kFloat32:
    case PixelType::kInt32: return 4;
  }
  return 4;
}
const char* pixel_type_name(PixelType type);
/// Parses "uint8", "uint16", "int16", "int32", "float32" (and "float"); returns false for anything else.
bool parse_pixel_type(std::string_view name, PixelType* out);

/// Calls `f(T{})` with the C++ element type of `type`: one switch for every loop that is templated on it.
template <typename F>
decltype(auto) with_pixel_type(PixelType type, F&& f) {
  switch (type) {
    case PixelType::kUint8: return f(uint8_t{});
    case PixelType::kUint16: return f(uint16_t{});
    case PixelType::kInt16: return f(int16_t{});
    case PixelType::kInt32: return f(int32_t{});
    case PixelType::kFloat32: break;
  }
  return f(float{});
}

/// One stored block of pixels: a YX plane or a ZYX chunk of one channel, placed at (c, z, y, x).
struct PixelPiece {
  const uint8_t* data = nullptr;  // payload inside an Arrow buffer (compressed when codec != kNone)
  int64_t nbytes = 0;             // payload size in bytes
  PixelType type = PixelType::kUint16;
  Codec codec = Codec::kNone;
  int32_t c = 0, z = 0, y = 0, x = 0;
  int32_t depth = 1, height = 0, width = 0;
};

/// One image: its pieces, its declared shape (C, Z, H, W) and dtype.
struct ImageLocation {
  int64_t first_piece = 0;
  int32_t num_pieces = 0;
  PixelType declared = PixelType::kUint16;  // pixels_meta.type: what [0, 1] scaling refers to
  PixelType stored = PixelType::kUint16;    // element type of the payload
  int32_t channels = 1, depth = 1, height = 0, width = 0;
  /// The whole image as one C-contiguous (C, Z, H, W) run of `stored` elements when its pieces happen to be
  /// laid out that way and uncompressed (ome-arrow's planes usually are); nullptr otherwise.
  const uint8_t* contiguous = nullptr;

  int64_t pixels() const { return int64_t{channels} * depth * height * width; }
};

/// The largest of `count` values of `type` at `data` (suitably aligned); -inf when count is 0.
double largest_value(const uint8_t* data, int64_t count, PixelType type);

struct PixelIndex {
  std::vector<PixelPiece> pieces;
  std::vector<ImageLocation> images;
};

}  // namespace loaderbench
