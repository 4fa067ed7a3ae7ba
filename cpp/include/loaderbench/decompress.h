// Decompression of OME-Arrow byte chunks (pyarrow's "zstd" and "lz4" codecs: zstd and LZ4 frames), with
// the Debian libraries. Each codec is a build option; a codec built without raises "not supported".
#pragma once

#include <cstdint>

#include "loaderbench/pixel_index.h"

namespace loaderbench {

/// Whether this build can decompress `codec`.
bool codec_available(Codec codec);

/// Decompresses `src` into exactly `dst_size` bytes at `dst`; throws ImportError on corrupt or short data.
void decompress(Codec codec, const uint8_t* src, int64_t src_size, uint8_t* dst, int64_t dst_size);

}  // namespace loaderbench
