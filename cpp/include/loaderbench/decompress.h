// Decompression of OME-Arrow byte chunks (pyarrow's "zstd" and "lz4" codecs: zstd and LZ4 frames) and of Zarr
// chunks (zstd, gzip/zlib, blosc), with the Debian libraries. Each codec is a build option; a codec built without raises "not supported".
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "loaderbench/pixel_index.h"

namespace loaderbench {

/// Whether this build can decompress `codec`.
bool codec_available(Codec codec);

/// Checks a compressed payload's frame header before anything is allocated for it: it must be a frame of `codec`
/// and, where the header records the content size, declare exactly `expected` bytes. Throws ImportError
/// prefixed with `where`. (Corrupt data behind a good header is still caught by decompress.)
void check_frame_header(Codec codec, const uint8_t* src, int64_t src_size, int64_t expected, const std::string& where);
/// The same, with the location spelled out only when the header is bad (for callers that check many chunks).
void check_frame_header(Codec codec, const uint8_t* src, int64_t src_size, int64_t expected,
                        const std::function<std::string()>& where);

/// Decompresses `src` into exactly `dst_size` bytes at `dst`; throws ImportError on corrupt or short data.
/// Each thread reuses one decompression context per codec (creating one per call costs more than a small chunk).
void decompress(Codec codec, const uint8_t* src, int64_t src_size, uint8_t* dst, int64_t dst_size);

}  // namespace loaderbench
