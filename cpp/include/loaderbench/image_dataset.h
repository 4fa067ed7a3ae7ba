// An OME-Arrow image column held in place: the imported Arrow record batches (kept alive, never copied)
// plus the validated pixel index into them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "loaderbench/arrow_owners.h"
#include "loaderbench/ome_importer.h"
#include "loaderbench/pixel_index.h"

namespace loaderbench {

class ImageDataset {
 public:
  /// Consumes the stream, validating every batch; the Arrow buffers stay where the producer put them.
  static std::shared_ptr<ImageDataset> from_stream(StreamOwner stream, const std::string& column = "ome_image",
                                                   int64_t max_sample_bytes = kDefaultMaxSampleBytes);

  int64_t size() const { return static_cast<int64_t>(index_.images.size()); }
  const PixelIndex& index() const { return index_; }
  const ImageLocation& image(int64_t row) const { return index_.images.at(static_cast<size_t>(row)); }
  const ImportSummary& summary() const { return summary_; }
  /// Whether every image has the same (C, Z, H, W), which batching needs.
  bool uniform_shape() const { return uniform_; }

 private:
  ImageDataset() = default;
  SchemaOwner schema_;
  std::vector<ArrayOwner> batches_;
  PixelIndex index_;
  ImportSummary summary_;
  bool uniform_ = true;
};

}  // namespace loaderbench
