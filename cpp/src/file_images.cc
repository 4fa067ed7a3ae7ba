#include "loaderbench/file_images.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "loaderbench/parallel.h"

namespace loaderbench {

std::string describe(const ImageFileShape& shape) {
  const bool volume = shape.depth != 1;
  return std::to_string(shape.channels) + "x" + (volume ? std::to_string(shape.depth) + "x" : "") +
         std::to_string(shape.height) + "x" + std::to_string(shape.width) + " " + pixel_type_name(shape.type) +
         (volume ? " (CxZxHxW)" : " (CxHxW)");
}

void check_image_shape(const std::string& path, const ImageFileShape& found, const ImageFileShape& expected) {
  const bool any_size = expected.height == 0 && expected.width == 0;
  const bool same_kind = found.type == expected.type && found.channels == expected.channels &&
                         found.depth == expected.depth;
  if (same_kind && (any_size || (found.height == expected.height && found.width == expected.width))) return;
  throw FileImageError(path + ": the image is " + describe(found) + ", but the dataset's images are " +
                       (any_size ? std::to_string(expected.channels) + " channel(s) x " +
                                       std::to_string(expected.depth) + " plane(s) of " + pixel_type_name(expected.type)
                                 : describe(expected)) +
                       (same_kind ? " (images of other sizes need a crop_size, with pad_if_needed for smaller ones)"
                                  : ""));
}

bool file_format_available(ImageFileFormat format) {
  switch (format) {
    case ImageFileFormat::kTiff:
#ifdef LOADERBENCH_WITH_TIFF
      return true;
#else
      return false;
#endif
    case ImageFileFormat::kOmeZarr:
#ifdef LOADERBENCH_WITH_ZARR
      return true;
#else
      return false;
#endif
  }
  return false;
}

FileImageDataset::FileImageDataset(ImageFileFormat format, std::vector<std::string> paths, int64_t max_sample_bytes,
                                   int32_t zarr_level)
    : format_(format), paths_(std::move(paths)), max_sample_bytes_(max_sample_bytes), zarr_level_(zarr_level) {
  if (paths_.empty()) throw std::invalid_argument("the dataset has no image files");
  if (zarr_level_ != 0 && format_ != ImageFileFormat::kOmeZarr) {
    throw std::invalid_argument("a multiscale level applies to OME-Zarr images; TIFFs have one resolution");
  }
  if (!file_format_available(format_)) {
    throw std::invalid_argument(std::string(format_ == ImageFileFormat::kTiff ? "TIFF" : "OME-Zarr") +
                                " is not supported by this build of the core (built without its library)");
  }
  shape_ = format_ == ImageFileFormat::kTiff ? probe_tiff(paths_.front(), &significant_bits_)
                                             : probe_ome_zarr(paths_.front(), max_sample_bytes_, zarr_level_);
  if (shape_.bytes() > max_sample_bytes_) {
    throw FileImageError(paths_.front() + ": an image of " + describe(shape_) + " is " +
                         std::to_string(shape_.bytes()) + " bytes, over max_sample_bytes (" +
                         std::to_string(max_sample_bytes_) + ")");
  }
  image_.declared = image_.stored = shape_.type;
  image_.channels = shape_.channels;
  image_.depth = shape_.depth;
  image_.height = shape_.height;
  image_.width = shape_.width;
  image_.num_pieces = shape_.channels;  // write_decoded: one (Z, H, W) block per channel
}

ImageFileShape FileImageDataset::read(int64_t row, std::vector<uint8_t>& pixels, bool any_size) const {
  const std::string& file = path(row);
  ImageFileShape expected = shape_;
  if (any_size) expected.height = expected.width = 0;
  return format_ == ImageFileFormat::kTiff ? read_tiff(file, expected, pixels)
                                           : read_ome_zarr(file, expected, pixels, max_sample_bytes_, zarr_level_);
}

double FileImageDataset::max_pixel_value(const std::vector<int64_t>& rows, int num_threads) const {
  const int64_t n = rows.empty() ? size() : static_cast<int64_t>(rows.size());
  for (int64_t row : rows) (void)path(row);  // out_of_range before any thread starts
  return parallel_max(n, num_threads, [&](int64_t i, std::vector<uint8_t>& pixels) {
    const ImageFileShape shape = read(rows.empty() ? i : rows[static_cast<size_t>(i)], pixels, true);
    return largest_value(pixels.data(), shape.bytes() / pixel_size(shape.type), shape.type);
  });
}

void FileImageDataset::write_sample(int64_t row, const TransformOptions& transform, const SampleAugment& augment,
                                    void* out, std::vector<uint8_t>& scratch) const {
  read(row, scratch);
  write_decoded(image_, scratch.data(), transform, augment, out);
}

FileImageRows::FileImageRows(std::shared_ptr<const FileImageDataset> dataset, TransformOptions transform)
    : dataset_(std::move(dataset)), transform_(std::move(transform)) {
  validate_transform(dataset_->image(), transform_);
}

std::vector<int64_t> FileImageRows::sample_shape() const {
  return loaderbench::sample_shape(dataset_->image(), transform_);
}

void FileImageRows::write_row(int64_t row, int64_t epoch, uint8_t* out, std::vector<uint8_t>& scratch) const {
  if (transform_.crop_height == 0) {
    dataset_->write_sample(row, transform_, draw_augment(transform_, dataset_->image(), epoch, row), out, scratch);
    return;
  }
  // A crop (with padding) makes every size one sample shape: each file is taken at its own size.
  const ImageFileShape shape = dataset_->read(row, scratch, true);
  ImageLocation image = dataset_->image();
  image.height = shape.height;
  image.width = shape.width;
  if (const std::string why = batch_mismatch(dataset_->image(), image, transform_); !why.empty()) {
    throw FileImageError(dataset_->path(row) + ": the image " + why);
  }
  write_decoded(image, scratch.data(), transform_, draw_augment(transform_, image, epoch, row), out);
}

}  // namespace loaderbench
