#include "loaderbench/image_dataset.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "loaderbench/parallel.h"
#include "loaderbench/sample_writer.h"

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

namespace {

constexpr int64_t kImageAlignment = 64;

bool narrows(const ImageLocation& im, bool narrow) {
  return narrow && im.declared == PixelType::kUint8 && im.stored == PixelType::kUint16;
}

/// Copies one piece's ZYX block into its place in a C-contiguous (C, Z, H, W) image; false when a value does not
/// fit `Out` (only possible when narrowing uint16 to uint8).
template <typename In, typename Out>
bool place_piece(const In* src, const PixelPiece& p, const ImageLocation& im, Out* image) {
  In widest = 0;
  for (int32_t dz = 0; dz < p.depth; ++dz) {
    Out* plane = image + ((int64_t{p.c} * im.depth + p.z + dz) * im.height) * im.width;
    for (int32_t y = 0; y < p.height; ++y) {
      const In* row = src + (int64_t{dz} * p.height + y) * p.width;
      Out* dst = plane + (int64_t{p.y} + y) * im.width + p.x;
      if constexpr (sizeof(In) == sizeof(Out)) {
        std::memcpy(dst, row, static_cast<size_t>(p.width) * sizeof(In));
      } else {
        for (int32_t x = 0; x < p.width; ++x) {
          widest = std::max(widest, row[x]);
          dst[x] = static_cast<Out>(row[x]);
        }
      }
    }
  }
  return widest <= 255;
}

/// Decodes image `row` into `out` (its stored type, or uint8 when narrowed); false when narrowing lost a value.
bool decode_image(const PixelIndex& index, int64_t row, bool narrow, uint8_t* out, std::vector<uint8_t>& scratch) {
  const ImageLocation& im = index.images[static_cast<size_t>(row)];
  bool fits = true;
  for (int32_t k = 0; k < im.num_pieces; ++k) {
    const PixelPiece& p = index.pieces[static_cast<size_t>(im.first_piece + k)];
    const uint8_t* data = piece_pixels(p, row, k, scratch);
    if (narrows(im, narrow)) {
      fits &= place_piece(reinterpret_cast<const uint16_t*>(data), p, im, out);
    } else {
      with_pixel_type(p.type, [&]<typename T>(T) {
        place_piece(reinterpret_cast<const T*>(data), p, im, reinterpret_cast<T*>(out));
      });
    }
  }
  return fits;
}

}  // namespace

double ImageDataset::max_pixel_value(const std::vector<int64_t>& rows, int num_threads) const {
  for (int64_t row : rows) {
    if (row < 0 || row >= size()) throw std::out_of_range("row " + std::to_string(row) + " is out of range");
  }
  const int64_t n = rows.empty() ? size() : static_cast<int64_t>(rows.size());
  return parallel_max(n, num_threads, [&](int64_t i, std::vector<uint8_t>& scratch) {
    const int64_t row = rows.empty() ? i : rows[static_cast<size_t>(i)];
    const ImageLocation& im = index_.images[static_cast<size_t>(row)];
    double widest = -std::numeric_limits<double>::infinity();
    for (int32_t k = 0; k < im.num_pieces; ++k) {
      const PixelPiece& p = index_.pieces[static_cast<size_t>(im.first_piece + k)];
      const int64_t count = int64_t{p.depth} * p.height * p.width;
      widest = std::max(widest, largest_value(piece_pixels(p, row, k, scratch), count, p.type));
    }
    return widest;
  });
}

namespace {

/// Narrows a run of uint16 to uint8; false (with `out` partly written) when a value exceeds 255.
bool narrow_run(const uint16_t* src, int64_t count, uint8_t* out) {
  uint16_t seen = 0;  // the OR of every value: a bit above the low byte means some value does not fit
  for (int64_t i = 0; i < count; ++i) {
    seen |= src[i];
    out[i] = static_cast<uint8_t>(src[i]);
  }
  return seen <= 255;
}

}  // namespace

std::shared_ptr<ImageDataset> ImageDataset::compacted(const ImageDataset& source, BlockArena& arena) {
  const PixelIndex& from = source.index_;
  const auto aligned = [](int64_t bytes) { return (bytes + kImageAlignment - 1) / kImageAlignment * kImageAlignment; };
  // As preloaded does, a run of uint16 declared uint8 (ome-arrow's widening) is narrowed to uint8 where it is one
  // contiguous run: half the bytes held and read. If any value exceeds 255, nothing is narrowed.
  for (bool narrow : {true, false}) {
    const auto narrowed = [&](const ImageLocation& im) { return im.contiguous != nullptr && narrows(im, narrow); };
    // Per image one run: its contiguous pixels when it has them, else its pieces one after another (each aligned
    // for typed loads). Offsets in checked arithmetic: the payload sizes were validated one by one, not summed.
    std::vector<int64_t> offsets(from.images.size() + 1, 0);
    for (size_t i = 0; i < from.images.size(); ++i) {
      const ImageLocation& im = from.images[i];
      int64_t bytes = 0;
      if (im.contiguous != nullptr) {
        bytes = aligned(im.pixels() * (narrowed(im) ? 1 : pixel_size(im.stored)));
      } else {
        for (int32_t k = 0; k < im.num_pieces; ++k) {
          const int64_t piece = aligned(from.pieces[static_cast<size_t>(im.first_piece + k)].nbytes);
          if (__builtin_add_overflow(bytes, piece, &bytes)) throw ImportError("compacting: an image's size overflows");
        }
      }
      if (__builtin_add_overflow(offsets[i], bytes, &offsets[i + 1])) {
        throw ImportError("compacting: the block's total size overflows");
      }
    }
    std::shared_ptr<ImageDataset> out(new ImageDataset());
    try {
      out->arena_bytes_ = arena.acquire(offsets.back());
    } catch (const std::bad_alloc&) {
      throw ImportError("a block needs " + std::to_string(offsets.back()) +
                        " bytes for its images, which could not be allocated; lower chunks_per_block");
    }
    out->owned_bytes_ = offsets.back();
    uint8_t* base = out->arena_bytes_.get();
    out->index_.images.reserve(from.images.size());
    out->index_.pieces.reserve(from.pieces.size());
    bool lost = false;
    for (size_t i = 0; i < from.images.size() && !lost; ++i) {
      ImageLocation im = from.images[i];
      uint8_t* at = base + offsets[i];
      const int64_t first = static_cast<int64_t>(out->index_.pieces.size());
      const bool narrow_image = narrowed(im);
      if (narrow_image) {
        lost = !narrow_run(reinterpret_cast<const uint16_t*>(im.contiguous), im.pixels(), at);
      } else if (im.contiguous != nullptr) {
        std::memcpy(at, im.contiguous, static_cast<size_t>(im.pixels() * pixel_size(im.stored)));
      }
      for (int32_t k = 0; k < im.num_pieces; ++k) {
        PixelPiece p = from.pieces[static_cast<size_t>(im.first_piece + k)];
        if (narrow_image) {
          p.data = at + (p.data - im.contiguous) / 2;  // inside the run just narrowed
          p.nbytes /= 2;
          p.type = PixelType::kUint8;
        } else if (im.contiguous != nullptr) {
          p.data = at + (p.data - im.contiguous);  // inside the run just copied
        } else {
          std::memcpy(at, p.data, static_cast<size_t>(p.nbytes));
          p.data = at;
          at += aligned(p.nbytes);
        }
        out->index_.pieces.push_back(p);
      }
      if (im.contiguous != nullptr) im.contiguous = at;
      if (narrow_image) im.stored = PixelType::kUint8;
      im.first_piece = first;
      out->index_.images.push_back(im);
    }
    if (lost) continue;  // declared uint8 but holding larger values: copy every image at its stored width
    out->summary_ = source.summary_;
    out->uniform_ = source.uniform_;
    return out;
  }
  throw ImportError("compacting: unreachable");  // the second pass narrows nothing, so it cannot lose a value
}

std::shared_ptr<ImageDataset> ImageDataset::preloaded(const ImageDataset& source, int num_threads) {
  const PixelIndex& from = source.index_;
  for (bool narrow : {true, false}) {
    // Offsets first, in checked arithmetic: each image was checked against max_sample_bytes, their sum was not.
    std::vector<int64_t> offsets(from.images.size() + 1, 0);
    for (size_t i = 0; i < from.images.size(); ++i) {
      const ImageLocation& im = from.images[i];
      const int64_t bytes = im.pixels() * (narrows(im, narrow) ? 1 : pixel_size(im.stored));
      const int64_t padded = (bytes + kImageAlignment - 1) / kImageAlignment * kImageAlignment;
      if (__builtin_add_overflow(offsets[i], padded, &offsets[i + 1])) {
        throw ImportError("preloading: the decoded images' total size overflows");
      }
    }
    std::shared_ptr<ImageDataset> out(new ImageDataset());
    out->owned_bytes_ = offsets.back();
    try {
      // operator new[] aligns to __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16); images sit at multiples of 64 from it.
      out->owned_.reset(new uint8_t[static_cast<size_t>(std::max<int64_t>(offsets.back(), 1))]);
    } catch (const std::bad_alloc&) {
      throw ImportError("preloading needs " + std::to_string(offsets.back()) +
                        " bytes for the decoded images, which could not be allocated; load without preload");
    }
    std::atomic<bool> lost{false};
    uint8_t* base = out->owned_.get();
    parallel_ranges(source.size(), num_threads, [&](int64_t first, int64_t last) {
      std::vector<uint8_t> scratch;
      for (int64_t row = first; row < last && !lost.load(std::memory_order_relaxed); ++row) {
        if (!decode_image(from, row, narrow, base + offsets[static_cast<size_t>(row)], scratch)) lost = true;
      }
    });
    if (lost) continue;  // declared uint8 but holding larger values: keep every image at its stored width
    // The new index: per image one contiguous run, one piece per channel (a ZYX block at (c, 0, 0, 0)).
    out->index_.images.reserve(from.images.size());
    for (size_t i = 0; i < from.images.size(); ++i) {
      ImageLocation im = from.images[i];
      im.stored = narrows(im, narrow) ? PixelType::kUint8 : im.stored;
      im.contiguous = base + offsets[i];
      im.first_piece = static_cast<int64_t>(out->index_.pieces.size());
      im.num_pieces = im.channels;
      const int64_t channel_bytes = int64_t{im.depth} * im.height * im.width * pixel_size(im.stored);
      for (int32_t c = 0; c < im.channels; ++c) {
        PixelPiece p;
        p.data = im.contiguous + c * channel_bytes;
        p.nbytes = channel_bytes;
        p.type = im.stored;
        p.c = c;
        p.depth = im.depth;
        p.height = im.height;
        p.width = im.width;
        out->index_.pieces.push_back(p);
      }
      out->index_.images.push_back(im);
    }
    out->summary_ = source.summary_;
    out->uniform_ = source.uniform_;
    return out;
  }
  throw ImportError("preloading: unreachable");  // the second pass narrows nothing, so it cannot lose a value
}

}  // namespace loaderbench
