#include "loaderbench/row_source.h"

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
  if (!dataset_->uniform_shape()) {
    const ImageLocation& first = dataset_->image(0);
    for (int64_t row = 1; row < dataset_->size(); ++row) {
      const ImageLocation& im = dataset_->image(row);
      if (im.channels != first.channels || im.depth != first.depth || im.height != first.height ||
          im.width != first.width) {
        auto shape = [](const ImageLocation& i) {
          return std::to_string(i.channels) + "x" + std::to_string(i.depth) + "x" + std::to_string(i.height) + "x" +
                 std::to_string(i.width);
        };
        throw std::invalid_argument("images have different shapes (row 0 is " + shape(first) + " (CxZxHxW), row " +
                                    std::to_string(row) + " is " + shape(im) +
                                    "); batching needs images of one shape: crop them to one size first");
      }
    }
  }
  validate_transform(dataset_->image(0), transform_);
  for (const PixelPiece& piece : dataset_->index().pieces) {
    if (!codec_available(piece.codec)) {
      throw std::invalid_argument("the dataset has compressed chunks whose codec this build does not support");
    }
  }
}

std::vector<int64_t> ImageRows::sample_shape() const { return loaderbench::sample_shape(dataset_->image(0), transform_); }

void ImageRows::write_row_as(int64_t row, int64_t dataset_row, int64_t epoch, uint8_t* out,
                             std::vector<uint8_t>& scratch) const {
  const SampleAugment aug = draw_augment(transform_, dataset_->image(row), epoch, dataset_row);
  write_sample(dataset_->index(), row, transform_, aug, out, scratch);
}

}  // namespace loaderbench
