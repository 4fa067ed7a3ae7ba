#include "loaderbench/decompress.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "loaderbench/arrow_view.h"

#ifdef LOADERBENCH_WITH_LZ4
#include <lz4frame.h>
#endif

namespace loaderbench {
namespace {

#ifdef LOADERBENCH_WITH_LZ4
std::vector<uint8_t> lz4_frame(const std::vector<uint8_t>& raw, bool with_content_size) {
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.contentSize = with_content_size ? raw.size() : 0;
  std::vector<uint8_t> out(LZ4F_compressFrameBound(raw.size(), &prefs));
  const size_t n = LZ4F_compressFrame(out.data(), out.size(), raw.data(), raw.size(), &prefs);
  EXPECT_FALSE(LZ4F_isError(n));
  out.resize(n);
  return out;
}

// Found by the fuzzer: reading a frame header on the decoding context left its content size behind, and the next
// frame without a content size that the thread decoded was refused.
TEST(Decompress, Lz4FramesDecodeAfterAHeaderCheckOrAnErrorOnTheSameThread) {
  std::vector<uint8_t> raw(300);
  std::iota(raw.begin(), raw.end(), uint8_t{0});
  const std::vector<uint8_t> sized = lz4_frame(raw, true), unsized = lz4_frame(raw, false);
  std::vector<uint8_t> out(raw.size());
  check_frame_header(Codec::kLz4, sized.data(), static_cast<int64_t>(sized.size()), 300, "chunk");
  decompress(Codec::kLz4, unsized.data(), static_cast<int64_t>(unsized.size()), out.data(), 300);
  EXPECT_EQ(out, raw);
  std::vector<uint8_t> cut(sized.begin(), sized.end() - 4);
  EXPECT_THROW(decompress(Codec::kLz4, cut.data(), static_cast<int64_t>(cut.size()), out.data(), 300), ImportError);
  decompress(Codec::kLz4, unsized.data(), static_cast<int64_t>(unsized.size()), out.data(), 300);
  EXPECT_EQ(out, raw);
  EXPECT_THROW(check_frame_header(Codec::kLz4, sized.data(), static_cast<int64_t>(sized.size()), 299, "chunk"),
               ImportError);
}
#endif

TEST(Decompress, RefusesWhatIsNotAFrame) {
  const std::vector<uint8_t> junk(16, 0xAB);
#ifdef LOADERBENCH_WITH_ZSTD
  EXPECT_THROW(check_frame_header(Codec::kZstd, junk.data(), 16, 64, "chunk"), ImportError);
#endif
#ifdef LOADERBENCH_WITH_LZ4
  EXPECT_THROW(check_frame_header(Codec::kLz4, junk.data(), 16, 64, "chunk"), ImportError);
#endif
  check_frame_header(Codec::kNone, junk.data(), 16, 16, "chunk");  // raw payloads have no header
}

}  // namespace
}  // namespace loaderbench
