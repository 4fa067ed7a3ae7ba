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
namespace {

#ifdef LOADERBENCH_WITH_ZSTD
ZSTD_DCtx* zstd_context() {
  struct Owner {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    ~Owner() { ZSTD_freeDCtx(ctx); }
  };
  thread_local Owner owner;
  if (owner.ctx == nullptr) throw ImportError("zstd: could not create a decompression context");
  return owner.ctx;
}
#endif
#ifdef LOADERBENCH_WITH_LZ4
LZ4F_dctx* lz4_context() {
  struct Owner {
    LZ4F_dctx* ctx = nullptr;
    Owner() {
      if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) ctx = nullptr;
    }
    ~Owner() {
      if (ctx != nullptr) LZ4F_freeDecompressionContext(ctx);
    }
  };
  thread_local Owner owner;
  if (owner.ctx == nullptr) throw ImportError("lz4: could not create a decompression context");
  return owner.ctx;
}
#endif

}  // namespace

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
      const size_t got =
          ZSTD_decompressDCtx(zstd_context(), dst, static_cast<size_t>(dst_size), src, static_cast<size_t>(src_size));
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
      LZ4F_dctx* ctx = lz4_context();
      size_t in = static_cast<size_t>(src_size), out = static_cast<size_t>(dst_size);
      const size_t rc = LZ4F_decompress(ctx, dst, &out, src, &in, nullptr);
      LZ4F_resetDecompressionContext(ctx);  // ready for the next frame, whatever state this one left
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

namespace loaderbench {

void check_frame_header(Codec codec, const uint8_t* src, int64_t src_size, int64_t expected, const std::string& where) {
  switch (codec) {
    case Codec::kNone:
      return;
#ifdef LOADERBENCH_WITH_ZSTD
    case Codec::kZstd: {
      const unsigned long long size = ZSTD_getFrameContentSize(src, static_cast<size_t>(src_size));
      if (size == ZSTD_CONTENTSIZE_ERROR) throw ImportError(where + " is not a zstd frame (corrupt or truncated)");
      // Walks the frame's block headers (no decompression): a cut-off frame fails here, at import.
      const size_t frame = ZSTD_findFrameCompressedSize(src, static_cast<size_t>(src_size));
      if (ZSTD_isError(frame)) {
        throw ImportError(where + " holds a truncated or corrupt zstd frame (" + ZSTD_getErrorName(frame) + ")");
      }
      if (frame != static_cast<size_t>(src_size)) {
        throw ImportError(where + " has " + std::to_string(static_cast<size_t>(src_size) - frame) +
                          " bytes after its zstd frame");
      }
      if (size != ZSTD_CONTENTSIZE_UNKNOWN && size != static_cast<unsigned long long>(expected)) {
        throw ImportError(where + " declares " + std::to_string(size) + " decompressed bytes, but its shape needs " +
                          std::to_string(expected));
      }
      return;
    }
#endif
#ifdef LOADERBENCH_WITH_LZ4
    case Codec::kLz4: {
      LZ4F_dctx* ctx = lz4_context();
      LZ4F_frameInfo_t info{};
      size_t consumed = static_cast<size_t>(src_size);
      const size_t rc = LZ4F_getFrameInfo(ctx, &info, src, &consumed);
      LZ4F_resetDecompressionContext(ctx);
      if (LZ4F_isError(rc)) throw ImportError(where + " is not an lz4 frame (" + LZ4F_getErrorName(rc) + ")");
      if (info.contentSize != 0 && info.contentSize != static_cast<unsigned long long>(expected)) {
        throw ImportError(where + " declares " + std::to_string(info.contentSize) +
                          " decompressed bytes, but its shape needs " + std::to_string(expected));
      }
      return;
    }
#endif
    default:
      throw ImportError(where + ": compressed chunks of this codec are not supported by this build of the core");
  }
}

}  // namespace loaderbench
