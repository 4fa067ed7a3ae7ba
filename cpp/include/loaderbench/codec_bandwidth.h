// A decompression roofline: how many decompressed bytes per second a tight zstd loop produces from a given set of
// compressed chunks with N threads, measured in the same process as the loader, so that "fraction of the codec's
// speed" compares the loader with the decompression it cannot avoid, on the same chunks and threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace loaderbench {

/// What one zstd_decompress_bandwidth call measured.
struct CodecBandwidth {
  /// Decompressed (output) bytes per second of each timed round; the warm-up round is not included.
  std::vector<double> output_bytes_per_s;
  int64_t chunks = 0;
  int64_t input_bytes = 0;   ///< compressed bytes of one pass over the chunks
  int64_t output_bytes = 0;  ///< decompressed bytes of one pass over the chunks
  int passes_per_round = 1;  ///< passes over the chunks in each timed round (short sets are repeated)
  int threads = 1;
};

/// Whether this build has zstd (LOADERBENCH_WITH_ZSTD).
bool zstd_bandwidth_available();

/// Decompresses the zstd frames `data[offsets[i], offsets[i + 1])` (i < offsets.size() - 1) with `threads`
/// threads, each owning one reused ZSTD_DCtx and one reused output buffer of the largest chunk (so the loop is
/// bound by the codec, not by allocation or DRAM writes); chunks are split into contiguous ranges of about equal
/// output bytes. One warm-up round, then `repeats` timed rounds, each at least ~50 ms (a short set is decompressed
/// several times per round). Every frame must record its content size and decompress to exactly it;
/// std::invalid_argument otherwise, or for bad offsets, threads < 1 or repeats < 1. std::runtime_error when the
/// build has no zstd.
CodecBandwidth zstd_decompress_bandwidth(const uint8_t* data, size_t data_size, std::span<const int64_t> offsets,
                                         int threads, int repeats);

}  // namespace loaderbench
