#include "loaderbench/decompress.h"

#include <functional>
#include <memory>
#include <string>

#include "loaderbench/arrow_view.h"

#ifdef LOADERBENCH_WITH_ZSTD
#include <zstd.h>
#endif
#ifdef LOADERBENCH_WITH_LZ4
#include <lz4frame.h>
#endif
#ifdef LOADERBENCH_WITH_ZLIB
#include <zlib.h>
#endif
#ifdef LOADERBENCH_WITH_BLOSC
#include <blosc.h>
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
/// An LZ4 frame decompression context, freed with its owner.
struct Lz4Context {
  LZ4F_dctx* ctx = nullptr;
  Lz4Context() {
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) ctx = nullptr;
    if (ctx == nullptr) throw ImportError("lz4: could not create a decompression context");
  }
  ~Lz4Context() { LZ4F_freeDecompressionContext(ctx); }
  Lz4Context(const Lz4Context&) = delete;
  Lz4Context& operator=(const Lz4Context&) = delete;
};

/// This thread's context for decoding whole frames. LZ4F_resetDecompressionContext does not clear everything a
/// failed or header-only use leaves behind (lz4 1.9.4 keeps the last frame's content size), so a context that saw
/// an error is replaced, and headers are read with a context of their own (check_frame_header).
std::unique_ptr<Lz4Context>& lz4_thread_context() {
  thread_local std::unique_ptr<Lz4Context> context;
  if (!context) context = std::make_unique<Lz4Context>();
  return context;
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
#ifdef LOADERBENCH_WITH_ZLIB
    case Codec::kGzip: return true;
#endif
#ifdef LOADERBENCH_WITH_BLOSC
    case Codec::kBlosc: return true;
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
      std::unique_ptr<Lz4Context>& context = lz4_thread_context();
      size_t in = static_cast<size_t>(src_size), out = static_cast<size_t>(dst_size);
      const size_t rc = LZ4F_decompress(context->ctx, dst, &out, src, &in, nullptr);
      if (rc != 0) context.reset();  // an error or an unfinished frame: the next frame gets a fresh context
      if (LZ4F_isError(rc)) throw ImportError(std::string("lz4 chunk is corrupt: ") + LZ4F_getErrorName(rc));
      if (static_cast<int64_t>(out) != dst_size || rc != 0) {
        throw ImportError("lz4 chunk decompressed to " + std::to_string(out) + " bytes, expected " +
                          std::to_string(dst_size));
      }
      return;
    }
#endif
#ifdef LOADERBENCH_WITH_ZLIB
    case Codec::kGzip: {
      z_stream z{};
      if (inflateInit2(&z, 15 + 32) != Z_OK) throw ImportError("gzip: could not create an inflate stream");
      z.next_in = const_cast<Bytef*>(src);
      z.avail_in = static_cast<uInt>(src_size);
      z.next_out = dst;
      z.avail_out = static_cast<uInt>(dst_size);
      const int rc = inflate(&z, Z_FINISH);
      const int64_t got = dst_size - z.avail_out;
      const std::string why = z.msg != nullptr ? z.msg : "code " + std::to_string(rc);
      inflateEnd(&z);
      if (rc != Z_STREAM_END) {
        throw ImportError(rc == Z_BUF_ERROR && got == dst_size
                              ? "gzip chunk decompresses to more than the expected " + std::to_string(dst_size) +
                                    " bytes"
                              : "gzip chunk is corrupt or truncated (zlib: " + why + ")");
      }
      if (got != dst_size) {
        throw ImportError("gzip chunk decompressed to " + std::to_string(got) + " bytes, expected " +
                          std::to_string(dst_size));
      }
      return;
    }
#endif
#ifdef LOADERBENCH_WITH_BLOSC
    case Codec::kBlosc: {
      size_t nbytes = 0;
      if (src_size < BLOSC_MIN_HEADER_LENGTH ||
          blosc_cbuffer_validate(src, static_cast<size_t>(src_size), &nbytes) != 0) {
        throw ImportError("blosc chunk is corrupt or truncated (bad header)");
      }
      if (static_cast<int64_t>(nbytes) != dst_size) {
        throw ImportError("blosc chunk holds " + std::to_string(nbytes) + " bytes, expected " +
                          std::to_string(dst_size));
      }
      // The _ctx variant keeps no global state, so worker threads decode at once.
      const int got = blosc_decompress_ctx(src, dst, static_cast<size_t>(dst_size), 1);
      if (got < 0 || got != dst_size) throw ImportError("blosc chunk is corrupt (error " + std::to_string(got) + ")");
      return;
    }
#endif
    default:
      throw ImportError("compressed chunks of this codec are not supported by this build of the core");
  }
}

}  // namespace loaderbench

namespace loaderbench {

void check_frame_header(Codec codec, const uint8_t* src, int64_t src_size, int64_t expected,
                        const std::function<std::string()>& where) {
  switch (codec) {
    case Codec::kNone:
      return;
#ifdef LOADERBENCH_WITH_ZSTD
    case Codec::kZstd: {
      const unsigned long long size = ZSTD_getFrameContentSize(src, static_cast<size_t>(src_size));
      if (size == ZSTD_CONTENTSIZE_ERROR) throw ImportError(where() + " is not a zstd frame (corrupt or truncated)");
      // Walks the frame's block headers (no decompression): a cut-off frame fails here, at import.
      const size_t frame = ZSTD_findFrameCompressedSize(src, static_cast<size_t>(src_size));
      if (ZSTD_isError(frame)) {
        throw ImportError(where() + " holds a truncated or corrupt zstd frame (" + ZSTD_getErrorName(frame) + ")");
      }
      if (frame != static_cast<size_t>(src_size)) {
        throw ImportError(where() + " has " + std::to_string(static_cast<size_t>(src_size) - frame) +
                          " bytes after its zstd frame");
      }
      if (size != ZSTD_CONTENTSIZE_UNKNOWN && size != static_cast<unsigned long long>(expected)) {
        throw ImportError(where() + " declares " + std::to_string(size) + " decompressed bytes, but its shape needs " +
                          std::to_string(expected));
      }
      return;
    }
#endif
#ifdef LOADERBENCH_WITH_LZ4
    case Codec::kLz4: {
      const Lz4Context header;  // never the decoding context: getFrameInfo leaves state behind in it
      LZ4F_frameInfo_t info{};
      size_t consumed = static_cast<size_t>(src_size);
      const size_t rc = LZ4F_getFrameInfo(header.ctx, &info, src, &consumed);
      if (LZ4F_isError(rc)) throw ImportError(where() + " is not an lz4 frame (" + LZ4F_getErrorName(rc) + ")");
      if (info.contentSize != 0 && info.contentSize != static_cast<unsigned long long>(expected)) {
        throw ImportError(where() + " declares " + std::to_string(info.contentSize) +
                          " decompressed bytes, but its shape needs " + std::to_string(expected));
      }
      return;
    }
#endif
    default:
      throw ImportError(where() + ": compressed chunks of this codec are not supported by this build of the core");
  }
}

void check_frame_header(Codec codec, const uint8_t* src, int64_t src_size, int64_t expected, const std::string& where) {
  check_frame_header(codec, src, src_size, expected, [&] { return where; });
}

}  // namespace loaderbench
