#include "loaderbench/sample_writer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "loaderbench/arrow_view.h"
#include "loaderbench/decompress.h"
#include "loaderbench/sampler.h"

namespace loaderbench {
namespace {

/// What [0, 1] scaling divides by: the integer type's maximum, as torchvision's convert_image_dtype does (so
/// signed data maps to [-1, 1]); floats are taken as already scaled.
float declared_max(PixelType type) {
  switch (type) {
    case PixelType::kUint8: return 255.0f;
    case PixelType::kUint16: return 65535.0f;
    case PixelType::kInt16: return 32767.0f;
    case PixelType::kInt32: return 2147483647.0f;
    case PixelType::kFloat32: return 1.0f;
  }
  return 1.0f;
}

/// The per-channel arithmetic, in torch's order so results match bit for bit: x / max, then (v - mean) / std.
struct ChannelMath {
  float divisor = 1.0f;
  bool normalise = false;
  float mean = 0.0f;
  float std = 1.0f;
  float apply(float x) const {
    const float v = x / divisor;
    return normalise ? (v - mean) / std : v;
  }
};

ChannelMath channel_math(const TransformOptions& o, PixelType declared, int32_t channel) {
  ChannelMath m;
  m.divisor = !o.scale ? 1.0f : o.max_value > 0.0f ? o.max_value : declared_max(declared);
  m.normalise = !o.mean.empty() || !o.std.empty();
  if (!o.mean.empty()) m.mean = o.mean[o.mean.size() == 1 ? 0 : static_cast<size_t>(channel)];
  if (!o.std.empty()) m.std = o.std[o.std.size() == 1 ? 0 : static_cast<size_t>(channel)];
  return m;
}

template <typename Out>
inline Out convert(float v);
template <>
inline float convert<float>(float v) { return v; }
template <>
inline uint16_t convert<uint16_t>(float v) { return float_to_half(v); }
template <>
inline uint8_t convert<uint8_t>(float v) {
  // Rounds half away from zero as std::lround did, but inline and vectorisable (lround is a libm call per pixel,
  // 5-8x slower): c + 0.5 is exact in double for c in [0, 255], so truncating it is lround(c). NaN becomes 0.
  if (!(v > 0.0f)) return 0;
  const float c = std::min(v, 1.0f) * 255.0f;
  return static_cast<uint8_t>(static_cast<int32_t>(static_cast<double>(c) + 0.5));
}

// The common row (no normalisation, no flip, float out): x / divisor, compiled for the widest SIMD the CPU has
// (target_clones picks at load time; the wheel targets baseline x86-64, where the loop gets 4 lanes). IEEE division
// lane by lane, so the result equals torch's `.float().div_(max)` bit for bit. Off under the sanitizers, whose
// runtimes do not expect ifunc resolvers.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LOADERBENCH_NO_CLONES 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LOADERBENCH_NO_CLONES 1
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LOADERBENCH_NO_CLONES)
#define LOADERBENCH_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LOADERBENCH_SIMD_CLONES
#endif

template <typename In>
inline void scale_row(const In* __restrict src, float* __restrict dst, int64_t n, float divisor) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) / divisor;
}
LOADERBENCH_SIMD_CLONES void scale_row_u8(const uint8_t* src, float* dst, int64_t n, float divisor) {
  scale_row(src, dst, n, divisor);
}
LOADERBENCH_SIMD_CLONES void scale_row_u16(const uint16_t* src, float* dst, int64_t n, float divisor) {
  scale_row(src, dst, n, divisor);
}

/// Copies one row segment, converting; the flip reverses the destination.
template <typename In, typename Out>
inline void convert_row(const In* src, Out* dst, int64_t n, const ChannelMath& m, bool reverse) {
  if constexpr (std::is_same_v<Out, float> && (std::is_same_v<In, uint8_t> || std::is_same_v<In, uint16_t>)) {
    if (!reverse && !m.normalise) {
      if constexpr (std::is_same_v<In, uint8_t>) scale_row_u8(src, dst, n, m.divisor);
      else scale_row_u16(src, dst, n, m.divisor);
      return;
    }
  }
  if (!reverse) {
    for (int64_t i = 0; i < n; ++i) dst[i] = convert<Out>(m.apply(static_cast<float>(src[i])));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[-i] = convert<Out>(m.apply(static_cast<float>(src[i])));
  }
}

template <typename In, typename Out>
void write_piece(const In* src, const PixelPiece& p, const ImageLocation& image, const TransformOptions& o,
                 const SampleAugment& aug, Out* out) {
  const int64_t out_h = o.crop_height ? o.crop_height : image.height;
  const int64_t out_w = o.crop_width ? o.crop_width : image.width;
  // The part of the piece inside the crop window, in image coordinates.
  const int64_t y0 = std::max<int64_t>(p.y, aug.crop_y), y1 = std::min<int64_t>(p.y + p.height, aug.crop_y + out_h);
  const int64_t x0 = std::max<int64_t>(p.x, aug.crop_x), x1 = std::min<int64_t>(p.x + p.width, aug.crop_x + out_w);
  if (y0 >= y1 || x0 >= x1) return;
  const ChannelMath f = channel_math(o, image.declared, p.c);
  for (int32_t dz = 0; dz < p.depth; ++dz) {
    const int64_t z = p.z + dz;
    Out* plane = out + ((int64_t{p.c} * image.depth + z) * out_h) * out_w;
    for (int64_t y = y0; y < y1; ++y) {
      const In* src_row = src + (int64_t{dz} * p.height + (y - p.y)) * p.width + (x0 - p.x);
      int64_t oy = y - aug.crop_y;
      if (aug.vflip) oy = out_h - 1 - oy;
      int64_t ox = x0 - aug.crop_x;
      if (aug.hflip) ox = out_w - 1 - ox;
      convert_row(src_row, plane + oy * out_w + ox, x1 - x0, f, aug.hflip);
    }
  }
}

/// Whether the output window reaches outside the image (so padding shows).
bool pads(const ImageLocation& image, const TransformOptions& o, const SampleAugment& aug) {
  const int64_t out_h = o.crop_height ? o.crop_height : image.height;
  const int64_t out_w = o.crop_width ? o.crop_width : image.width;
  return aug.crop_y < 0 || aug.crop_x < 0 || aug.crop_y + out_h > image.height || aug.crop_x + out_w > image.width;
}

/// Fills every channel of a padded sample with the converted zero its padding shows; the pieces then overwrite
/// the part the image covers.
template <typename Out>
void fill_padding(const ImageLocation& image, const TransformOptions& o, Out* out) {
  const int64_t out_h = o.crop_height ? o.crop_height : image.height;
  const int64_t out_w = o.crop_width ? o.crop_width : image.width;
  const int64_t per_channel = int64_t{image.depth} * out_h * out_w;
  for (int32_t c = 0; c < image.channels; ++c) {
    const Out value = convert<Out>(channel_math(o, image.declared, c).apply(0.0f));
    std::fill_n(out + c * per_channel, per_channel, value);
  }
}

template <typename Out>
void write_piece_any(const uint8_t* data, const PixelPiece& p, const ImageLocation& image, const TransformOptions& o,
                     const SampleAugment& aug, Out* out) {
  with_pixel_type(p.type, [&]<typename In>(In) {
    write_piece(reinterpret_cast<const In*>(data), p, image, o, aug, out);
  });
}

void fill_output(const ImageLocation& image, const TransformOptions& o, void* out) {
  switch (o.output) {
    case OutputType::kFloat32: fill_padding(image, o, static_cast<float*>(out)); break;
    case OutputType::kFloat16: fill_padding(image, o, static_cast<uint16_t*>(out)); break;
    case OutputType::kUint8: fill_padding(image, o, static_cast<uint8_t*>(out)); break;
  }
}

}  // namespace

int output_size(OutputType type) { return type == OutputType::kFloat32 ? 4 : type == OutputType::kFloat16 ? 2 : 1; }

std::vector<int64_t> sample_shape(const ImageLocation& image, const TransformOptions& o) {
  const int64_t h = o.crop_height ? o.crop_height : image.height;
  const int64_t w = o.crop_width ? o.crop_width : image.width;
  if (image.depth == 1) return {image.channels, h, w};
  return {image.channels, image.depth, h, w};
}

void validate_transform(const ImageLocation& image, const TransformOptions& o) {
  if (o.crop_height < 0 || o.crop_width < 0 || (o.crop_height == 0) != (o.crop_width == 0)) {
    throw std::invalid_argument("crop " + std::to_string(o.crop_height) + "x" + std::to_string(o.crop_width) +
                                " is not a size");
  }
  if (!o.pad_if_needed && (o.crop_height > image.height || o.crop_width > image.width)) {
    throw std::invalid_argument("crop " + std::to_string(o.crop_height) + "x" + std::to_string(o.crop_width) +
                                " does not fit an image of " + std::to_string(image.height) + "x" +
                                std::to_string(image.width) + " (pad_if_needed=True pads smaller images)");
  }
  if (o.pad_if_needed && o.crop_height == 0) {
    throw std::invalid_argument("pad_if_needed pads images to crop_size; give a crop_size");
  }
  if (!(o.max_value >= 0.0f) || !std::isfinite(o.max_value)) {
    throw std::invalid_argument("max_value must be a finite number > 0");
  }
  for (const auto* values : {&o.mean, &o.std}) {
    if (!values->empty() && values->size() != 1 && values->size() != static_cast<size_t>(image.channels)) {
      throw std::invalid_argument("mean/std need 1 or " + std::to_string(image.channels) + " values, got " +
                                  std::to_string(values->size()));
    }
  }
  for (float s : o.std) {
    if (!(s > 0.0f)) throw std::invalid_argument("std values must be > 0");
  }
  if (o.output == OutputType::kUint8 && (!o.mean.empty() || !o.std.empty())) {
    throw std::invalid_argument("uint8 output cannot carry mean/std normalisation");
  }
}

std::string batch_mismatch(const ImageLocation& first, const ImageLocation& image, const TransformOptions& o) {
  auto shape = [](const ImageLocation& i) {
    return std::to_string(i.channels) + "x" + std::to_string(i.depth) + "x" + std::to_string(i.height) + "x" +
           std::to_string(i.width) + " (CxZxHxW)";
  };
  if (image.channels != first.channels || image.depth != first.depth) {
    return "has " + shape(image) + " where row 0 has " + shape(first) +
           "; a batch needs one number of channels and planes";
  }
  if (o.crop_height == 0 && (image.height != first.height || image.width != first.width)) {
    return "has " + shape(image) + " where row 0 has " + shape(first) +
           "; give a crop_size (with pad_if_needed=True for images smaller than it) or batch_size=1";
  }
  if (!o.pad_if_needed && (o.crop_height > image.height || o.crop_width > image.width)) {
    return "has " + shape(image) + ", smaller than the crop " + std::to_string(o.crop_height) + "x" +
           std::to_string(o.crop_width) + "; pass pad_if_needed=True to pad it";
  }
  return "";
}

namespace {
/// Where the output window of `out` pixels starts along an image axis of `size` pixels: inside the image when it is
/// larger (random or centred), else a negative offset that pads it (random or centred, as torchvision pads).
/// A centred crop starts where torchvision's CenterCrop does, at Python's round(slack / 2), which rounds halves to
/// even (slack 3 -> 2, slack 5 -> 2); a centred pad puts slack // 2 before, as its pad does.
int32_t window_offset(int32_t size, int32_t out, bool random, SplitMix64& rng) {
  const int32_t slack = size >= out ? size - out : out - size;
  if (random) {
    const auto offset = static_cast<int32_t>(rng.below(static_cast<uint64_t>(slack) + 1));
    return size >= out ? offset : -offset;
  }
  if (size < out) return -(slack / 2);
  return slack / 2 + (slack % 4 == 3 ? 1 : 0);  // x.5 rounds up only when x is odd
}
}  // namespace

SampleAugment draw_augment(const TransformOptions& o, const ImageLocation& image, int64_t epoch, int64_t row) {
  SampleAugment aug;
  const bool random_crop = o.crop_height != 0 && o.random_crop;
  const bool random = o.random_hflip || o.random_vflip || random_crop;
  SplitMix64 rng(random ? mix_seed(o.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(row) + 1) : 0);
  if (random) {
    const uint64_t flips = rng.next();
    aug.hflip = o.random_hflip && (flips & 1);
    aug.vflip = o.random_vflip && (flips & 2);
  }
  if (o.crop_height != 0) {
    aug.crop_y = window_offset(image.height, o.crop_height, random_crop, rng);
    aug.crop_x = window_offset(image.width, o.crop_width, random_crop, rng);
  }
  return aug;
}

namespace {

int64_t piece_bytes(const PixelPiece& p) { return int64_t{p.depth} * p.height * p.width * pixel_size(p.type); }

/// Decompresses piece `k` of image `row` into `dst` (piece_bytes of it), naming both when the data is corrupt.
void decompress_piece(const PixelPiece& p, int64_t row, int32_t k, uint8_t* dst) {
  try {
    decompress(p.codec, p.data, p.nbytes, dst, piece_bytes(p));
  } catch (const ImportError& error) {
    throw ImportError("row " + std::to_string(row) + ": chunk " + std::to_string(k) + ": " + error.what());
  }
}

/// Whether the sample is the stored bytes unchanged: uint8 stored and uint8 out, scaled by 255 and back (the
/// round trip is exact for every uint8 value; a test checks all 256) or not at all, nothing else applied.
bool bytes_unchanged(const ImageLocation& image, const TransformOptions& o) {
  const bool scale_round_trips =
      !o.scale || (image.declared == PixelType::kUint8 && (o.max_value == 0.0f || o.max_value == 255.0f));
  return o.output == OutputType::kUint8 && image.stored == PixelType::kUint8 && scale_round_trips &&
         o.mean.empty() && o.std.empty() && !o.random_hflip && !o.random_vflip && o.crop_height == 0;
}

/// Where piece `p` starts in a (C, Z, H, W) uint8 sample when its bytes form one run there (whole rows, and whole
/// planes when it is several planes deep); -1 otherwise.
int64_t run_offset(const PixelPiece& p, const ImageLocation& image) {
  if (p.type != PixelType::kUint8 || p.x != 0 || p.width != image.width) return -1;
  if (p.depth != 1 && (p.y != 0 || p.height != image.height)) return -1;
  return ((int64_t{p.c} * image.depth + p.z) * image.height + p.y) * image.width;
}

/// Copies a uint8 piece's rows into a (C, Z, H, W) uint8 sample as they are.
void copy_tile_rows(const uint8_t* src, const PixelPiece& p, const ImageLocation& image, uint8_t* out) {
  for (int32_t dz = 0; dz < p.depth; ++dz) {
    uint8_t* plane = out + (int64_t{p.c} * image.depth + p.z + dz) * image.height * image.width;
    for (int32_t y = 0; y < p.height; ++y) {
      std::memcpy(plane + (int64_t{p.y} + y) * image.width + p.x, src + (int64_t{dz} * p.height + y) * p.width,
                  static_cast<size_t>(p.width));
    }
  }
}

}  // namespace

const uint8_t* piece_pixels(const PixelPiece& p, int64_t row, int32_t k, std::vector<uint8_t>& scratch) {
  if (p.codec != Codec::kNone) {
    scratch.resize(static_cast<size_t>(piece_bytes(p)));
    decompress_piece(p, row, k, scratch.data());
    return scratch.data();
  }
  if (reinterpret_cast<uintptr_t>(p.data) % pixel_size(p.type) != 0) {
    // Binary payloads carry no alignment guarantee; typed loads need one, so such a piece is copied first.
    scratch.assign(p.data, p.data + p.nbytes);
    return scratch.data();
  }
  return p.data;
}

void write_sample(const PixelIndex& index, int64_t row, const TransformOptions& o, const SampleAugment& aug, void* out,
                  std::vector<uint8_t>& scratch) {
  const ImageLocation& image = index.images[static_cast<size_t>(row)];
  if (pads(image, o, aug)) fill_output(image, o, out);
  const bool unchanged = bytes_unchanged(image, o);
  for (int32_t k = 0; k < image.num_pieces; ++k) {
    const PixelPiece& p = index.pieces[static_cast<size_t>(image.first_piece + k)];
    if (const int64_t at = unchanged ? run_offset(p, image) : -1; at >= 0) {
      // Nothing to convert: decompress (or copy) straight into the batch, with no pass through scratch.
      uint8_t* dst = static_cast<uint8_t*>(out) + at;
      if (p.codec != Codec::kNone) {
        decompress_piece(p, row, k, dst);
      } else {
        std::memcpy(dst, p.data, static_cast<size_t>(piece_bytes(p)));
      }
      continue;
    }
    const uint8_t* data = piece_pixels(p, row, k, scratch);
    if (unchanged && p.type == PixelType::kUint8) {  // a tile: its rows copied into place, nothing converted
      copy_tile_rows(data, p, image, static_cast<uint8_t*>(out));
      continue;
    }
    switch (o.output) {
      case OutputType::kFloat32: write_piece_any(data, p, image, o, aug, static_cast<float*>(out)); break;
      case OutputType::kFloat16: write_piece_any(data, p, image, o, aug, static_cast<uint16_t*>(out)); break;
      case OutputType::kUint8: write_piece_any(data, p, image, o, aug, static_cast<uint8_t*>(out)); break;
    }
  }
}

void write_decoded(const ImageLocation& image, const uint8_t* pixels, const TransformOptions& o,
                   const SampleAugment& aug, void* out) {
  // One piece per channel: a ZYX block placed at (c, 0, 0, 0), as the importer records contiguous planes.
  const int64_t channel_bytes = int64_t{image.depth} * image.height * image.width * pixel_size(image.stored);
  if (pads(image, o, aug)) fill_output(image, o, out);
  for (int32_t c = 0; c < image.channels; ++c) {
    PixelPiece p;
    p.data = pixels + c * channel_bytes;
    p.nbytes = channel_bytes;
    p.type = image.stored;
    p.c = c;
    p.depth = image.depth;
    p.height = image.height;
    p.width = image.width;
    switch (o.output) {
      case OutputType::kFloat32: write_piece_any(p.data, p, image, o, aug, static_cast<float*>(out)); break;
      case OutputType::kFloat16: write_piece_any(p.data, p, image, o, aug, static_cast<uint16_t*>(out)); break;
      case OutputType::kUint8: write_piece_any(p.data, p, image, o, aug, static_cast<uint8_t*>(out)); break;
    }
  }
}

uint16_t float_to_half(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return static_cast<uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to infinity
  if (abs < 0x38800000u) {  // subnormal half or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t mantissa = (abs & 0x007FFFFFu) | 0x00800000u;
    const int shift = 113 - static_cast<int>(abs >> 23) + 13;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((abs - 0x38000000u) >> 13);
  const uint32_t rest = abs & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

}  // namespace loaderbench
