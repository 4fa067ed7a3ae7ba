// Turning one stored image into one output sample: decompress if needed, convert the stored dtype to the
// output dtype with [0, 1] scaling and optional per-channel mean/std, flip and crop — in one pass over the
// pixels, writing straight into the batch buffer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loaderbench/pixel_index.h"

namespace loaderbench {

enum class OutputType : uint8_t { kFloat32, kFloat16, kUint8 };
int output_size(OutputType type);

struct TransformOptions {
  OutputType output = OutputType::kFloat32;
  bool scale = true;        // divide by the declared dtype's maximum (uint8 255, uint16 65535; floats as stored)
  float max_value = 0.0f;   // > 0: divide by this instead (12-bit data: 4095), for every image
  std::vector<float> mean;  // per channel, or one for all; empty = none
  std::vector<float> std;
  bool random_hflip = false;
  bool random_vflip = false;
  int32_t crop_height = 0;  // 0 = no crop
  int32_t crop_width = 0;
  bool random_crop = true;  // false: centre crop
  // Images smaller than the crop are padded with zeros (stored value 0, then scaled and normalised, as torchvision's
  // RandomCrop(pad_if_needed=True) / CenterCrop do), placed at a random or centred offset; else they are an error.
  bool pad_if_needed = false;
  uint64_t seed = 0;        // augmentation draws depend on (seed, epoch, row) only
};

/// The random choices for one sample.
struct SampleAugment {
  bool hflip = false;
  bool vflip = false;
  // Top-left corner of the output window in image coordinates; negative where the image is padded.
  int32_t crop_y = 0;
  int32_t crop_x = 0;
};

/// Output shape of one sample: (C, H, W) or (C, Z, H, W) for volumes.
std::vector<int64_t> sample_shape(const ImageLocation& image, const TransformOptions& options);

/// Checks options against an image (crop fits or pads, mean/std sizes, uint8 output without normalisation).
void validate_transform(const ImageLocation& image, const TransformOptions& options);
/// Why `image` cannot share a batch with `first` under `options` (different channels or depth, or a size no crop
/// makes equal), or "" when it can.
std::string batch_mismatch(const ImageLocation& first, const ImageLocation& image, const TransformOptions& options);

SampleAugment draw_augment(const TransformOptions& options, const ImageLocation& image, int64_t epoch, int64_t row);

/// Piece `k` of image `row` as typed-aligned raw pixels: in place, or decompressed / realigned into `scratch`
/// (corrupt data: ImportError naming the row and chunk).
const uint8_t* piece_pixels(const PixelPiece& piece, int64_t row, int32_t k, std::vector<uint8_t>& scratch);
/// Writes image `row` into `out` (sample_shape elements of options.output). `scratch` holds decompressed chunks.
void write_sample(const PixelIndex& index, int64_t row, const TransformOptions& options, const SampleAugment& augment,
                  void* out, std::vector<uint8_t>& scratch);

/// Writes one decoded image — a C-contiguous (C, Z, H, W) block of `image.stored` elements at `pixels`, suitably
/// aligned — into `out`, exactly as write_sample would write the same pixels from Arrow pieces (the file readers
/// decode a TIFF or Zarr image into scratch memory, then share this conversion path).
void write_decoded(const ImageLocation& image, const uint8_t* pixels, const TransformOptions& options,
                   const SampleAugment& augment, void* out);

/// IEEE binary16 bits of `value` (round to nearest even).
uint16_t float_to_half(float value);

}  // namespace loaderbench
