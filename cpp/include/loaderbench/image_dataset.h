// An OME-Arrow image column held in place: the imported Arrow record batches (kept alive, never copied)
// plus the validated pixel index into them — or, once preloaded, every image decoded into one owned buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loaderbench/arrow_owners.h"
#include "loaderbench/block_arena.h"
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

  /// A copy with every image decoded once, on `num_threads` threads, into one owned buffer: each image one
  /// C-contiguous (C, Z, H, W) run (64-byte aligned), decompressed, and narrowed to uint8 where pixels_meta declares
  /// uint8 but the payload is uint16 (ome-arrow's widening) — unless some value exceeds 255, then nothing is
  /// narrowed. Epochs over it decompress nothing and read the declared bytes only; it holds no Arrow buffers.
  /// Throws ImportError on corrupt chunks (naming the row) and when the buffer cannot be allocated.
  static std::shared_ptr<ImageDataset> preloaded(const ImageDataset& source, int num_threads);
  /// A copy of every image's stored payload (compressed chunks stay compressed) into one buffer from `arena`, each
  /// image 64-byte aligned, with the index pointing into it. It holds no Arrow buffers, so the source's can be
  /// released at once: what a streaming loader holds of a block, in memory the arena recycles. Throws ImportError
  /// when the sizes overflow or the buffer cannot be allocated.
  static std::shared_ptr<ImageDataset> compacted(const ImageDataset& source, BlockArena& arena);
  /// The largest stored pixel value over `rows` (every row when empty), scanned on `num_threads` threads: what a
  /// measured bit depth is taken from, and how uint8 data stored as uint16 is recognised. Throws ImportError on
  /// corrupt chunks, std::out_of_range on a bad row.
  double max_pixel_value(const std::vector<int64_t>& rows, int num_threads) const;
  /// Bytes of the owned pixel buffer (0 unless preloaded or compacted).
  int64_t owned_bytes() const { return owned_bytes_; }

 private:
  ImageDataset() = default;
  SchemaOwner schema_;
  std::vector<ArrayOwner> batches_;
  PixelIndex index_;
  ImportSummary summary_;
  bool uniform_ = true;
  std::unique_ptr<uint8_t[]> owned_;  // preloaded pixels (default-initialised: every byte is written once)
  BlockArena::Handle arena_bytes_;  // compacted pixels
  int64_t owned_bytes_ = 0;
};

}  // namespace loaderbench
