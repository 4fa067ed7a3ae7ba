#include "loaderbench/image_dataset.h"

#include <string>

namespace loaderbench {

std::shared_ptr<ImageDataset> ImageDataset::from_stream(StreamOwner stream, const std::string& column,
                                                       int64_t max_sample_bytes) {
  std::shared_ptr<ImageDataset> dataset(new ImageDataset());
  OmeImporter importer(column, &dataset->index_, max_sample_bytes);
  consume_stream(stream, dataset->schema_, [&](ArrayOwner&& batch) {
    importer.add_batch(*dataset->schema_.get(), *batch.get());
    // Only the ArrowArray struct moves; the buffers the pixel index points into stay where they are.
    dataset->batches_.push_back(std::move(batch));
  });
  dataset->summary_ = importer.summary();
  if (dataset->size() == 0) throw ImportError("the table has no rows");
  const ImageLocation& first = dataset->index_.images.front();
  for (const ImageLocation& im : dataset->index_.images) {
    if (im.channels != first.channels || im.depth != first.depth || im.height != first.height ||
        im.width != first.width) {
      dataset->uniform_ = false;
      break;
    }
  }
  return dataset;
}

}  // namespace loaderbench
