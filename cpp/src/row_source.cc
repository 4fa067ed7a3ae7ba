#include "loaderbench/row_source.h"

#include <stdexcept>

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
    throw std::invalid_argument("images have different shapes; batching needs images of one shape");
  }
  validate_transform(dataset_->image(0), transform_);
  for (const PixelPiece& piece : dataset_->index().pieces) {
    if (!codec_available(piece.codec)) {
      throw std::invalid_argument("the dataset has compressed chunks whose codec this build does not support");
    }
  }
}

std::vector<int64_t> ImageRows::sample_shape() const { return loaderbench::sample_shape(dataset_->image(0), transform_); }

void ImageRows::write_row(int64_t row, int64_t epoch, uint8_t* out, std::vector<uint8_t>& scratch) const {
  const SampleAugment aug = draw_augment(transform_, dataset_->image(row), epoch, row);
  write_sample(dataset_->index(), row, transform_, aug, out, scratch);
}

}  // namespace loaderbench
