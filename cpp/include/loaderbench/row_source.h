// What the threaded batch loader gathers from: anything that can write row i of a dataset as one fixed-shape
// sample. Images (ImageRows) and sparse cell x gene matrices (DenseRows) implement it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loaderbench/image_dataset.h"
#include "loaderbench/sample_writer.h"

namespace loaderbench {

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual int64_t size() const = 0;
  /// Shape of one sample (without the batch dimension).
  virtual std::vector<int64_t> sample_shape() const = 0;
  /// Element type of a sample (float32 for sparse rows; images carry their transform's output type).
  virtual OutputType element_type() const = 0;
  int element_size() const { return output_size(element_type()); }
  /// Writes row `row` as seen in `epoch` (augmentations may depend on it) to `out`; must be thread-safe.
  virtual void write_row(int64_t row, int64_t epoch, uint8_t* out, std::vector<uint8_t>& scratch) const = 0;
  /// As write_row, for a source that holds part of a dataset (a streamed block): `row` is local, `dataset_row` is
  /// what the sample's random draws depend on, so a streamed epoch augments exactly as an in-memory one.
  virtual void write_row_as(int64_t row, int64_t dataset_row, int64_t epoch, uint8_t* out,
                            std::vector<uint8_t>& scratch) const {
    (void)dataset_row;
    write_row(row, epoch, out, scratch);
  }

  int64_t sample_bytes() const;

  /// Rows of different shapes (images of different sizes with no crop) can only be batched one at a time: then this
  /// says why, row_shape gives each row's shape and max_sample_bytes the largest. "" when every row has sample_shape.
  virtual std::string shape_mismatch() const { return ""; }
  virtual std::vector<int64_t> row_shape(int64_t row) const {
    (void)row;
    return sample_shape();
  }
  virtual int64_t max_sample_bytes() const { return sample_bytes(); }
};

/// Images of an ImageDataset converted and augmented by TransformOptions.
class ImageRows final : public RowSource {
 public:
  /// Validates the transform against every image and the codecs; images of different sizes need a crop_size (and
  /// pad_if_needed for those smaller than it), or are batched one at a time (shape_mismatch says why).
  ImageRows(std::shared_ptr<const ImageDataset> dataset, TransformOptions transform);
  int64_t size() const override { return dataset_->size(); }
  std::vector<int64_t> sample_shape() const override;
  std::string shape_mismatch() const override { return shape_mismatch_; }
  std::vector<int64_t> row_shape(int64_t row) const override;
  int64_t max_sample_bytes() const override { return max_sample_bytes_; }
  OutputType element_type() const override { return transform_.output; }
  void write_row(int64_t row, int64_t epoch, uint8_t* out, std::vector<uint8_t>& scratch) const override {
    write_row_as(row, row, epoch, out, scratch);
  }
  void write_row_as(int64_t row, int64_t dataset_row, int64_t epoch, uint8_t* out,
                    std::vector<uint8_t>& scratch) const override;

 private:
  std::shared_ptr<const ImageDataset> dataset_;
  TransformOptions transform_;
  std::string shape_mismatch_;
  int64_t max_sample_bytes_ = 0;
};

}  // namespace loaderbench
