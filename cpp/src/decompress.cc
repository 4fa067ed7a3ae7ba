#include "loaderbench/decompress.h"

#include <string>

#include "loaderbench/arrow_view.h"

#ifdef LOADERBENCH_WITH_ZSTD
#include <zstd.h>
#endif
#ifdef LOADERBENCH_WITH_LZ4
#include <lz4frame.h>
#endif

namespace loaderbench {

bool codec_available(Codec codec) {
  switch (codec) {
    case Codec::kNone: return true;
#ifdef LOADERBENCH_WITH_ZSTD
    case Codec::kZstd: return true;
#endif
#ifdef LOADERBENCH_WITH_LZ4
    case Codec::kLz4: return true;
#endif
    default: return false;
  }
}

void decompress(Codec codec, const uint8_t* src, int64_t src_size, uint8_t* dst, int64_t dst_size) {
  switch (codec) {
    case Codec::kNone:
      break;
#ifdef LOADERBENCH_WITH_ZSTD
    case Codec::kZstd: {
      const size_t got = ZSTD_decompress(dst, static_cast<size_t>(dst_size), src, static_cast<size_t>(src_size));
      if (ZSTD_isError(got)) throw ImportError(std::string("zstd chunk is corrupt: ") + ZSTD_getErrorName(got));
      if (static_cast<int64_t>(got) != dst_size) {
        throw ImportError("zstd chunk decompressed to " + std::to_string(got) + " bytes, expected " +
                          std::to_string(dst_size));
      }
      return;
    }
#endif
#ifdef LOADERBENCH_WITH_LZ4
    case Codec::kLz4: {
      LZ4F_dctx* ctx = nullptr;
      if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) throw ImportError("lz4: no context");
      size_t in = static_cast<size_t>(src_size), out = static_cast<size_t>(dst_size);
      const size_t rc = LZ4F_decompress(ctx, dst, &out, src, &in, nullptr);
      LZ4F_freeDecompressionContext(ctx);
      if (LZ4F_isError(rc)) throw ImportError(std::string("lz4 chunk is corrupt: ") + LZ4F_getErrorName(rc));
      if (static_cast<int64_t>(out) != dst_size || rc != 0) {
        throw ImportError("lz4 chunk decompressed to " + std::to_string(out) + " bytes, expected " +
                          std::to_string(dst_size));
      }
      return;
    }
#endif
    default:
      throw ImportError("compressed chunks of this codec are not supported by this build of the core");
  }
}

}  // namespace loaderbench
