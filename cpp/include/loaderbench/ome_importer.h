// Imports OME-Arrow images through the Arrow C Stream Interface and validates them before anything reads
// a pixel: the column's schema, every buffer's offsets, and that each image's pixel count matches the
// shape its pixels_meta declares. The result is a summary (rows, shapes, dtypes, layout, bytes).
#pragma once

#include <array>
#include <functional>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "loaderbench/arrow_c_abi.h"
#include "loaderbench/arrow_owners.h"
#include "loaderbench/arrow_view.h"
#include "loaderbench/pixel_index.h"

namespace loaderbench {

/// What a stream of OME-Arrow images holds, as found by validating every row.
struct ImportSummary {
  std::string column;
  int64_t rows = 0;
  int64_t batches = 0;
  std::set<std::string> declared_types;  // pixels_meta.type values ("uint8", "uint16", "float32")
  std::set<std::string> stored_types;    // element type of the pixel payload ("uint16", or a byte chunk's dtype)
  std::set<std::string> compressions;    // byte-chunk codecs seen ("none", "zstd", "lz4")
  std::set<int64_t> significant_bits;    // pixels_meta.significant_bits values, where the column has them
  bool has_planes = false;               // at least one row carries planes
  bool has_chunks = false;               // at least one row carries chunks
  std::string chunk_encoding;            // "list", "bytes" or "" (no chunks field)
  std::map<std::array<int64_t, 5>, int64_t> shapes;  // (t, c, z, y, x) -> number of rows
  int64_t planes = 0;
  int64_t chunks = 0;
  int64_t payload_bytes = 0;  // bytes of pixel payload held by planes and chunks (as stored)
  int64_t voxels = 0;         // sum over rows of t*c*z*y*x
};

/// Largest image (decoded, in its stored dtype) accepted by default: declared sizes are checked against it before
/// anything is allocated for them, so a corrupt header cannot make the loader zero-fill gigabytes.
inline constexpr int64_t kDefaultMaxSampleBytes = int64_t{1} << 30;

/// Validates record batches of a table with an OME-Arrow struct column and accumulates an ImportSummary.
/// Every row gets the same full validation whether or not an index is kept (so `loaderbench inspect` refuses
/// exactly what the loaders refuse): checked 64-bit arithmetic for every bound, no nulls in a field that is read,
/// no dictionary-encoded fields, planes and chunks that tile the declared image exactly (no gap, overlap or
/// duplicate), compressed frames whose headers match their shape, sizes within `max_sample_bytes`.
class OmeImporter {
 public:
  /// With `index`, also records where each row's pixels are (planes when present, else chunks); the pointers
  /// stay valid as long as the record batches passed to add_batch are alive.
  explicit OmeImporter(std::string column = "ome_image", PixelIndex* index = nullptr,
                       int64_t max_sample_bytes = kDefaultMaxSampleBytes);

  /// Validates one record batch (a struct array with its schema); throws ImportError naming the row and field.
  void add_batch(const ArrowSchema& schema, const ArrowArray& batch);
  const ImportSummary& summary() const { return summary_; }

 private:
  void check_row(const ArrayView& image, int64_t row, int64_t global_row);
  ImportSummary summary_;
  PixelIndex* index_ = nullptr;
  PixelIndex scratch_index_;  // used (and cleared per batch) when the caller keeps no index
  int64_t max_sample_bytes_;
};

/// Reads the schema into `schema`, then hands every record batch to `on_batch` (end of stream: returns). Stream
/// errors become ImportError with the producer's get_last_error text.
void consume_stream(StreamOwner& stream, SchemaOwner& schema, const std::function<void(ArrayOwner&&)>& on_batch);

/// Consumes `stream` (taking ownership) batch by batch through an OmeImporter. Stream errors are reported
/// with the producer's get_last_error text.
ImportSummary import_ome_stream(StreamOwner stream, const std::string& column = "ome_image",
                                int64_t max_sample_bytes = kDefaultMaxSampleBytes);

}  // namespace loaderbench
