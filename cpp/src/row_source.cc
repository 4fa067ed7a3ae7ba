#include "loaderbench/row_source.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "loaderbench/decompress.h"

namespace loaderbench {

int64_t RowSource::sample_bytes() const {
  int64_t bytes = element_size();
  for (int64_t d : sample_shape()) bytes *= d;
  return bytes;
}

ImageRows::ImageRows(std::shared_ptr<const ImageDataset> dataset, TransformOptions transform)
    : dataset_(std::move(dataset)), transform_(std::move(transform)) {
  const ImageLocation& first = dataset_->image(0);
  validate_transform(first, transform_);
  max_sample_bytes_ = sample_bytes();
  if (!dataset_->uniform_shape()) {
    for (int64_t row = 1; row < dataset_->size(); ++row) {
      const ImageLocation& image = dataset_->image(row);
      const std::string why = batch_mismatch(first, image, transform_);
      if (why.empty()) continue;
      // A crop the image cannot take, or other channels: no batch size helps.
      if (transform_.crop_height != 0 || image.channels != first.channels || image.depth != first.depth) {
        throw std::invalid_argument("row " + std::to_string(row) + " " + why);
      }
      if (shape_mismatch_.empty()) {
        shape_mismatch_ = "images have different sizes: row " + std::to_string(row) + " " + why;
      }
      int64_t bytes = output_size(transform_.output);
      for (int64_t d : row_shape(row)) bytes *= d;
      max_sample_bytes_ = std::max(max_sample_bytes_, bytes);
    }
  }
  for (const PixelPiece& piece : dataset_->index().pieces) {
    if (!codec_available(piece.codec)) {
      throw std::invalid_argument("the dataset has compressed chunks whose codec this build does not support");
    }
  }
}

std::vector<int64_t> ImageRows::sample_shape() const { return loaderbench::sample_shape(dataset_->image(0), transform_); }

std::vector<int64_t> ImageRows::row_shape(int64_t row) const {
  return loaderbench::sample_shape(dataset_->image(shape_mismatch_.empty() ? 0 : row), transform_);
}

void ImageRows::write_row_as(int64_t row, int64_t dataset_row, int64_t epoch, uint8_t* out,
                             std::vector<uint8_t>& scratch) const {
  const SampleAugment aug = draw_augment(transform_, dataset_->image(row), epoch, dataset_row);
  write_sample(dataset_->index(), row, transform_, aug, out, scratch);
}

}  // namespace loaderbench
