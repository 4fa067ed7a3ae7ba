// Image datasets stored one file (or one Zarr store) per image: a TIFF directory or an OME-Zarr directory. The
// worker threads open, decode and close each image themselves, so the native loader reads these formats with no
// Python per sample; the decoded pixels then go through the same conversion as Arrow images (write_decoded).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "loaderbench/pixel_index.h"
#include "loaderbench/row_source.h"
#include "loaderbench/sample_writer.h"

namespace loaderbench {

/// A file that cannot be read as the dataset's image: missing, truncated, corrupt, of another shape or dtype, or
/// using a feature the reader does not support. The message names the file.
class FileImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ImageFileFormat : uint8_t { kTiff, kOmeZarr };

/// Shape (C, Z, H, W) and dtype of one image, as found in its file's header or metadata; depth is 1 for a 2-D
/// image, more for a volume (Z planes of each channel, stored one after another).
struct ImageFileShape {
  PixelType type = PixelType::kUint8;
  int32_t channels = 0, depth = 1, height = 0, width = 0;
  int64_t bytes() const { return int64_t{channels} * depth * height * width * pixel_size(type); }
  bool operator==(const ImageFileShape&) const = default;
};
/// "3x64x64 uint16 (CxHxW)", or "3x5x64x64 uint16 (CxZxHxW)" for a volume.
std::string describe(const ImageFileShape& shape);

/// Throws FileImageError naming `path` when the shape a reader found is not the dataset's `expected` one. An
/// `expected` height and width of 0 take any size (a crop or padding makes the samples one shape).
void check_image_shape(const std::string& path, const ImageFileShape& found, const ImageFileShape& expected);

/// Whether this build can read `format` (the TIFF and Zarr readers are build options).
bool file_format_available(ImageFileFormat format);

/// The shape of the TIFF at `path`, from its headers only. Pages are Z planes and/or channels as the first page's
/// OME-XML or ImageJ description says; without either, pages (or the samples of one page) are channels.
/// `significant_bits`, if given, receives the OME-XML's Pixels SignificantBits (0 when it declares none).
ImageFileShape probe_tiff(const std::string& path, int32_t* significant_bits = nullptr);
/// Decodes the TIFF at `path` into `pixels` (resized to its bytes, C-contiguous (C, Z, H, W)) and returns its
/// shape; throws FileImageError before writing anything when its shape or dtype is not `expected`.
ImageFileShape read_tiff(const std::string& path, const ImageFileShape& expected, std::vector<uint8_t>& pixels);

/// The shape of the OME-Zarr image group at `path` (its first multiscales level), from its metadata only: axes
/// (t,) (c,) (z,) y, x with t of size 1; z of size more than 1 makes a volume.
ImageFileShape probe_ome_zarr(const std::string& path, int64_t max_chunk_bytes, int32_t level = 0);
/// Decodes multiscale level `level` (0: full resolution) of the OME-Zarr image group at `path` into `pixels`, as
/// read_tiff.
ImageFileShape read_ome_zarr(const std::string& path, const ImageFileShape& expected, std::vector<uint8_t>& pixels,
                             int64_t max_chunk_bytes, int32_t level = 0);

/// The images of one directory: their paths in the dataset's order and the shape every one must have (the first
/// file's, checked against each file as it is read).
class FileImageDataset {
 public:
  /// `zarr_level`: the OME-Zarr multiscale level read (0, full resolution, unless asked); TIFFs have none.
  FileImageDataset(ImageFileFormat format, std::vector<std::string> paths,
                   int64_t max_sample_bytes = kDefaultMaxSampleBytes, int32_t zarr_level = 0);

  int64_t size() const { return static_cast<int64_t>(paths_.size()); }
  ImageFileFormat format() const { return format_; }
  const std::string& path(int64_t row) const { return paths_.at(static_cast<size_t>(row)); }
  const ImageFileShape& shape() const { return shape_; }
  /// The bits per pixel the first file's metadata declares in use (OME-TIFF SignificantBits); 0 when none.
  int32_t significant_bits() const { return significant_bits_; }
  /// The shared image description the sample writer works with (one plane per channel, stored = declared).
  const ImageLocation& image() const { return image_; }

  /// Decodes image `row` in its stored dtype into `pixels` and returns its shape; thread-safe. With `any_size`,
  /// its height and width may differ from the dataset's (channels, depth and dtype may not).
  ImageFileShape read(int64_t row, std::vector<uint8_t>& pixels, bool any_size = false) const;
  /// The largest stored pixel value of `rows` (every image when empty), decoding the files on `num_threads` threads.
  double max_pixel_value(const std::vector<int64_t>& rows, int num_threads) const;
  /// Decodes image `row` and writes it converted by `transform` to `out`; thread-safe.
  void write_sample(int64_t row, const TransformOptions& transform, const SampleAugment& augment, void* out,
                    std::vector<uint8_t>& scratch) const;

 private:
  ImageFileFormat format_;
  std::vector<std::string> paths_;
  int64_t max_sample_bytes_;
  int32_t zarr_level_;
  ImageFileShape shape_;
  int32_t significant_bits_ = 0;
  ImageLocation image_;
};

/// A FileImageDataset's images converted and augmented by TransformOptions, for the batch loader.
class FileImageRows final : public RowSource {
 public:
  FileImageRows(std::shared_ptr<const FileImageDataset> dataset, TransformOptions transform);
  int64_t size() const override { return dataset_->size(); }
  std::vector<int64_t> sample_shape() const override;
  OutputType element_type() const override { return transform_.output; }
  void write_row(int64_t row, int64_t epoch, uint8_t* out, std::vector<uint8_t>& scratch) const override;

 private:
  std::shared_ptr<const FileImageDataset> dataset_;
  TransformOptions transform_;
};

}  // namespace loaderbench
