#include "loaderbench/sample_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "loaderbench/decompress.h"

namespace loaderbench {
namespace {

/// A 2-channel 3x4 uint16 image stored as two planes, values c*100 + y*10 + x.
struct TwoPlaneImage {
  std::vector<uint16_t> pixels;
  PixelIndex index;
  TwoPlaneImage() {
    for (int c = 0; c < 2; ++c)
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 4; ++x) pixels.push_back(static_cast<uint16_t>(c * 100 + y * 10 + x));
    for (int c = 0; c < 2; ++c) {
      PixelPiece p;
      p.data = reinterpret_cast<const uint8_t*>(pixels.data() + c * 12);
      p.nbytes = 24;
      p.type = PixelType::kUint16;
      p.c = c;
      p.height = 3;
      p.width = 4;
      index.pieces.push_back(p);
    }
    ImageLocation im;
    im.num_pieces = 2;
    im.declared = PixelType::kUint8;  // as ome-arrow writes uint8: declared uint8, stored uint16
    im.stored = PixelType::kUint16;
    im.channels = 2;
    im.height = 3;
    im.width = 4;
    index.images.push_back(im);
  }
  std::vector<float> run(const TransformOptions& o, const SampleAugment& aug = {}) const {
    const auto shape = sample_shape(index.images[0], o);
    std::vector<float> out(static_cast<size_t>(shape[0] * shape[1] * shape[2]), -1.0f);
    std::vector<uint8_t> scratch;
    write_sample(index, 0, o, aug, out.data(), scratch);
    return out;
  }
};

TEST(SampleWriter, ScalesByTheDeclaredTypeInTorchOrder) {
  TwoPlaneImage img;
  const auto out = img.run(TransformOptions{});
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], static_cast<float>(img.pixels[i]) / 255.0f);
}

TEST(SampleWriter, NormalisesPerChannel) {
  TwoPlaneImage img;
  TransformOptions o;
  o.mean = {0.5f, 0.25f};
  o.std = {0.5f, 2.0f};
  const auto out = img.run(o);
  EXPECT_EQ(out[0], (0.0f / 255.0f - 0.5f) / 0.5f);
  EXPECT_EQ(out[12 + 5], (static_cast<float>(img.pixels[17]) / 255.0f - 0.25f) / 2.0f);
}

TEST(SampleWriter, FlipsAndCrops) {
  TwoPlaneImage img;
  TransformOptions o;
  o.scale = false;
  o.crop_height = 2;
  o.crop_width = 3;
  SampleAugment aug;
  aug.crop_y = 1;
  aug.crop_x = 1;
  aug.hflip = true;
  aug.vflip = true;
  const auto out = img.run(o, aug);
  ASSERT_EQ(out.size(), 12u);
  // Window rows y=1..2, cols x=1..3 of channel 0 is {11,12,13; 21,22,23}; both flips reverse it.
  const std::vector<float> expected0 = {23, 22, 21, 13, 12, 11};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(out[i], expected0[i]) << i;
  EXPECT_EQ(out[6], 123.0f);
}

TEST(SampleWriter, AugmentDrawsDependOnlyOnSeedEpochRow) {
  TwoPlaneImage img;
  TransformOptions o;
  o.random_hflip = true;
  o.crop_height = 2;
  o.crop_width = 2;
  o.seed = 9;
  const ImageLocation& im = img.index.images[0];
  int flips = 0;
  for (int64_t row = 0; row < 64; ++row) {
    const SampleAugment a = draw_augment(o, im, 1, row), b = draw_augment(o, im, 1, row);
    EXPECT_EQ(a.hflip, b.hflip);
    EXPECT_EQ(a.crop_x, b.crop_x);
    EXPECT_LE(a.crop_y, 1);
    EXPECT_LE(a.crop_x, 2);
    EXPECT_FALSE(a.vflip);
    flips += a.hflip;
  }
  EXPECT_GT(flips, 10);
  EXPECT_LT(flips, 54);
  o.random_crop = false;
  o.random_hflip = false;
  const SampleAugment centre = draw_augment(o, im, 0, 0);
  EXPECT_EQ(centre.crop_y, 0);
  EXPECT_EQ(centre.crop_x, 1);
}

// torchvision's CenterCrop starts at int(round((size - crop) / 2.0)): Python rounds halves to even.
TEST(SampleWriter, CentreCropStartsWhereTorchvisionsDoes) {
  ImageLocation im;
  im.height = 20;
  TransformOptions o;
  o.random_crop = false;
  o.crop_width = 1;
  im.width = 1;
  const int32_t python_round[] = {0, 0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6};  // round(s / 2) for s = 0..11
  for (int32_t slack = 0; slack < 12; ++slack) {
    o.crop_height = 20 - slack;
    EXPECT_EQ(draw_augment(o, im, 0, 0).crop_y, python_round[slack]) << "slack " << slack;
  }
}

TEST(SampleWriter, ChunkPiecesLandInPlace) {
  // A 1-channel 2x4 float32 image stored as two 2x2 chunks side by side.
  std::vector<float> left = {1, 2, 5, 6}, right = {3, 4, 7, 8};
  PixelIndex index;
  for (int k = 0; k < 2; ++k) {
    PixelPiece p;
    p.data = reinterpret_cast<const uint8_t*>(k == 0 ? left.data() : right.data());
    p.nbytes = 16;
    p.type = PixelType::kFloat32;
    p.x = 2 * k;
    p.height = 2;
    p.width = 2;
    index.pieces.push_back(p);
  }
  ImageLocation im;
  im.num_pieces = 2;
  im.declared = im.stored = PixelType::kFloat32;
  im.height = 2;
  im.width = 4;
  index.images.push_back(im);
  std::vector<float> out(8);
  std::vector<uint8_t> scratch;
  write_sample(index, 0, TransformOptions{}, SampleAugment{}, out.data(), scratch);
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(SampleWriter, OtherOutputTypes) {
  TwoPlaneImage img;
  TransformOptions o;
  o.output = OutputType::kUint8;
  std::vector<uint8_t> bytes(24);
  std::vector<uint8_t> scratch;
  write_sample(img.index, 0, o, SampleAugment{}, bytes.data(), scratch);
  EXPECT_EQ(bytes[23], 123);  // uint8 declared: value * 255 / 255
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(0.5f), 0x3800);
  EXPECT_EQ(float_to_half(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(1e6f), 0x7C00);
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 4096.0f), 0x3C00);   // ties to even
}

TEST(SampleWriter, ValidatesOptions) {
  TwoPlaneImage img;
  const ImageLocation& im = img.index.images[0];
  TransformOptions crop;
  crop.crop_height = 4;
  crop.crop_width = 2;
  EXPECT_THROW(validate_transform(im, crop), std::invalid_argument);
  TransformOptions mean;
  mean.mean = {1, 2, 3};
  EXPECT_THROW(validate_transform(im, mean), std::invalid_argument);
  TransformOptions stdz;
  stdz.std = {0.0f};
  EXPECT_THROW(validate_transform(im, stdz), std::invalid_argument);
  TransformOptions u8;
  u8.output = OutputType::kUint8;
  u8.mean = {0.5f};
  EXPECT_THROW(validate_transform(im, u8), std::invalid_argument);
}

TEST(SampleWriter, Uint8OutputRoundsHalfAwayFromZeroAndRoundTripsEveryByte) {
  // The direct copy for uint8 in and out relies on x / 255 * 255 rounding back to x for every byte.
  std::vector<uint8_t> in(256), out(256);
  for (int x = 0; x < 256; ++x) in[static_cast<size_t>(x)] = static_cast<uint8_t>(x);
  ImageLocation im;
  im.declared = im.stored = PixelType::kUint8;
  im.height = 16;
  im.width = 16;
  TransformOptions o;
  o.output = OutputType::kUint8;
  o.random_vflip = true;  // forces the converting path, not the direct copy
  write_decoded(im, in.data(), o, {}, out.data());
  EXPECT_EQ(in, out);
  // Against std::lround on values off the grid, ties included; NaN and out-of-range values clamp.
  const std::vector<float> values = {0.5f / 255.0f, 1.5f / 255.0f, 0.3f, 0.49999997f / 255.0f, 1.0f, 2.0f, -1.0f,
                                     std::nanf("")};
  im.declared = im.stored = PixelType::kFloat32;
  im.height = 1;
  im.width = static_cast<int32_t>(values.size());
  TransformOptions raw;
  raw.output = OutputType::kUint8;
  write_decoded(im, reinterpret_cast<const uint8_t*>(values.data()), raw, {}, out.data());
  for (size_t i = 0; i < values.size(); ++i) {
    const float v = values[i];
    const long want = v > 0.0f ? std::lround(std::min(v, 1.0f) * 255.0f) : 0;
    EXPECT_EQ(out[i], want) << i;
  }
}

TEST(SampleWriter, UnchangedBytesGoStraightIntoTheSample) {
  // Two uint8 planes: with uint8 out and nothing to convert they land as stored (zstd pieces: test_native_shapes).
  const std::vector<uint8_t> plane0 = {1, 2, 3, 4, 5, 6}, plane1 = {7, 8, 9, 10, 11, 12};
  std::vector<uint8_t> stored;
  stored.insert(stored.end(), plane0.begin(), plane0.end());
  stored.insert(stored.end(), plane1.begin(), plane1.end());
  PixelIndex index;
  for (int c = 0; c < 2; ++c) {
    PixelPiece p;
    p.data = stored.data() + c * 6;
    p.nbytes = 6;
    p.type = PixelType::kUint8;
    p.c = c;
    p.height = 2;
    p.width = 3;
    index.pieces.push_back(p);
  }
  ImageLocation im;
  im.num_pieces = 2;
  im.declared = im.stored = PixelType::kUint8;
  im.channels = 2;
  im.height = 2;
  im.width = 3;
  index.images.push_back(im);
  TransformOptions o;
  o.output = OutputType::kUint8;
  std::vector<uint8_t> out(12), scratch;
  write_sample(index, 0, o, {}, out.data(), scratch);
  EXPECT_EQ(out, stored);
  EXPECT_TRUE(scratch.empty());  // no pass through scratch
  o.max_value = 12.0f;           // a real conversion: values scaled to 12 -> 255
  write_sample(index, 0, o, {}, out.data(), scratch);
  EXPECT_EQ(out[11], 255);
  EXPECT_EQ(out[5], 128);  // 6 / 12 * 255 = 127.5, rounded away from zero
}

TEST(SampleWriter, MaxValueReplacesTheDeclaredMaximum) {
  TwoPlaneImage img;
  TransformOptions o;
  o.max_value = 4095.0f;  // 12-bit data in uint16
  const auto out = img.run(o);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], static_cast<float>(img.pixels[i]) / 4095.0f);
  o.max_value = -1.0f;
  EXPECT_THROW(validate_transform(img.index.images[0], o), std::invalid_argument);
}

TEST(SampleWriter, SignedPixelsScaleByTheirTypesMaximum) {
  // int16 as CT data holds it: negative values map below zero, as torchvision's convert_image_dtype does.
  const std::vector<int16_t> pixels = {-32768, -1000, 0, 1, 1000, 32767};
  ImageLocation im;
  im.declared = im.stored = PixelType::kInt16;
  im.height = 2;
  im.width = 3;
  std::vector<float> out(6);
  write_decoded(im, reinterpret_cast<const uint8_t*>(pixels.data()), TransformOptions{}, {}, out.data());
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(out[i], static_cast<float>(pixels[i]) / 32767.0f) << i;
  const std::vector<int32_t> wide = {-5, 70000};
  im.declared = im.stored = PixelType::kInt32;
  im.height = 1;
  im.width = 2;
  TransformOptions raw;
  raw.scale = false;
  write_decoded(im, reinterpret_cast<const uint8_t*>(wide.data()), raw, {}, out.data());
  EXPECT_EQ(out[0], -5.0f);
  EXPECT_EQ(out[1], 70000.0f);
}

TEST(SampleWriter, PadsImagesSmallerThanTheCrop) {
  TwoPlaneImage img;  // 3x4, two channels
  TransformOptions o;
  o.scale = false;
  o.mean = {1.0f};  // padding is a stored zero, normalised like every pixel: (0 - 1) / 1
  o.crop_height = 5;
  o.crop_width = 3;
  EXPECT_THROW(validate_transform(img.index.images[0], o), std::invalid_argument);
  o.pad_if_needed = true;
  o.random_crop = false;
  validate_transform(img.index.images[0], o);
  const SampleAugment centre = draw_augment(o, img.index.images[0], 0, 0);
  EXPECT_EQ(centre.crop_y, -1);  // (5 - 3) / 2 rows of padding above
  EXPECT_EQ(centre.crop_x, 0);   // (4 - 3) / 2 = 0: cropped from the left
  const auto out = img.run(o, centre);
  ASSERT_EQ(out.size(), 2u * 5 * 3);
  for (int c = 0; c < 2; ++c) {
    for (int y = 0; y < 5; ++y) {
      for (int x = 0; x < 3; ++x) {
        const float got = out[static_cast<size_t>((c * 5 + y) * 3 + x)];
        const int iy = y - 1;
        const float want = iy < 0 || iy >= 3 ? -1.0f : static_cast<float>(c * 100 + iy * 10 + x) - 1.0f;
        EXPECT_EQ(got, want) << c << "," << y << "," << x;
      }
    }
  }
  // Random placement stays within the padding, whatever the draw.
  o.random_crop = true;
  o.random_hflip = true;
  for (int64_t row = 0; row < 50; ++row) {
    const SampleAugment a = draw_augment(o, img.index.images[0], 0, row);
    EXPECT_GE(a.crop_y, -2);
    EXPECT_LE(a.crop_y, 0);
    EXPECT_GE(a.crop_x, 0);
    EXPECT_LE(a.crop_x, 1);
  }
}

TEST(SampleWriter, BatchMismatchSaysWhy) {
  ImageLocation a, b;
  a.height = 10;
  a.width = 10;
  b = a;
  b.height = 8;
  TransformOptions o;
  EXPECT_NE(batch_mismatch(a, b, o).find("crop_size"), std::string::npos);
  o.crop_height = o.crop_width = 9;
  EXPECT_NE(batch_mismatch(a, b, o).find("pad_if_needed"), std::string::npos);
  o.pad_if_needed = true;
  EXPECT_EQ(batch_mismatch(a, b, o), "");
  b.channels = 3;
  EXPECT_NE(batch_mismatch(a, b, o).find("channels"), std::string::npos);
}

TEST(Decompress, CorruptPayloadIsAnError) {
  const std::vector<uint8_t> garbage = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<uint8_t> out(16);
  for (Codec codec : {Codec::kZstd, Codec::kLz4}) {
    if (!codec_available(codec)) continue;
    EXPECT_ANY_THROW(decompress(codec, garbage.data(), 8, out.data(), 16));
  }
}

}  // namespace
}  // namespace loaderbench
