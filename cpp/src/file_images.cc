#include "loaderbench/file_images.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace loaderbench {

std::string describe(const ImageFileShape& shape) {
  const bool volume = shape.depth != 1;
  return std::to_string(shape.channels) + "x" + (volume ? std::to_string(shape.depth) + "x" : "") +
         std::to_string(shape.height) + "x" + std::to_string(shape.width) + " " + pixel_type_name(shape.type) +
         (volume ? " (CxZxHxW)" : " (CxHxW)");
}

void check_image_shape(const std::string& path, const ImageFileShape& found, const ImageFileShape& expected) {
  if (!(found == expected)) {
    throw FileImageError(path + ": the image is " + describe(found) + ", but the dataset's images are " +
                         describe(expected));
  }
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

FileImageDataset::FileImageDataset(ImageFileFormat format, std::vector<std::string> paths, int64_t max_sample_bytes)
    : format_(format), paths_(std::move(paths)), max_sample_bytes_(max_sample_bytes) {
  if (paths_.empty()) throw std::invalid_argument("the dataset has no image files");
  if (!file_format_available(format_)) {
    throw std::invalid_argument(std::string(format_ == ImageFileFormat::kTiff ? "TIFF" : "OME-Zarr") +
                                " is not supported by this build of the core (built without its library)");
  }
  shape_ = format_ == ImageFileFormat::kTiff ? probe_tiff(paths_.front())
                                             : probe_ome_zarr(paths_.front(), max_sample_bytes_);
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

void FileImageDataset::read(int64_t row, std::vector<uint8_t>& pixels) const {
  const std::string& file = path(row);
  if (format_ == ImageFileFormat::kTiff) {
    read_tiff(file, shape_, pixels);
  } else {
    read_ome_zarr(file, shape_, pixels, max_sample_bytes_);
  }
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
  dataset_->write_sample(row, transform_, draw_augment(transform_, dataset_->image(), epoch, row), out, scratch);
}

}  // namespace loaderbench
