#include "loaderbench/codec_bandwidth.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#ifdef LOADERBENCH_WITH_ZSTD
#include <zstd.h>
#endif

namespace loaderbench {
namespace {

#ifdef LOADERBENCH_WITH_ZSTD
/// Chunks of `sizes` bytes (compressible), each one zstd frame, concatenated; `offsets` gets n + 1 entries.
std::vector<uint8_t> zstd_chunks(const std::vector<size_t>& sizes, std::vector<int64_t>& offsets,
                                 bool content_size = true) {
  std::vector<uint8_t> data;
  offsets.assign(1, 0);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
  for (size_t k = 0; k < sizes.size(); ++k) {
    std::vector<uint8_t> raw(sizes[k]);
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>((i / 7 + k) % 251);
    std::vector<uint8_t> frame(ZSTD_compressBound(raw.size()));
    const size_t n = ZSTD_compress2(cctx, frame.data(), frame.size(), raw.data(), raw.size());
    EXPECT_FALSE(ZSTD_isError(n));
    data.insert(data.end(), frame.begin(), frame.begin() + static_cast<long>(n));
    offsets.push_back(static_cast<int64_t>(data.size()));
  }
  ZSTD_freeCCtx(cctx);
  return data;
}

TEST(CodecBandwidth, CountsTheOutputBytesOfEveryChunkOncePerPass) {
  std::vector<int64_t> offsets;
  const std::vector<uint8_t> data = zstd_chunks({10000, 10000, 4096, 1, 70000}, offsets);
  for (int threads : {1, 2, 8}) {  // 8: more threads than chunks, some get none
    const CodecBandwidth bw = zstd_decompress_bandwidth(data.data(), data.size(), offsets, threads, 3);
    EXPECT_EQ(bw.chunks, 5);
    EXPECT_EQ(bw.output_bytes, 10000 + 10000 + 4096 + 1 + 70000);
    EXPECT_EQ(bw.input_bytes, static_cast<int64_t>(data.size()));
    EXPECT_EQ(bw.threads, threads);
    EXPECT_GE(bw.passes_per_round, 1);
    ASSERT_EQ(bw.output_bytes_per_s.size(), 3u);
    for (double rate : bw.output_bytes_per_s) EXPECT_GT(rate, 0.0);
  }
}

TEST(CodecBandwidth, RefusesWhatItCannotMeasure) {
  std::vector<int64_t> offsets;
  const std::vector<uint8_t> data = zstd_chunks({1000, 1000}, offsets);
  EXPECT_THROW(zstd_decompress_bandwidth(data.data(), data.size(), offsets, 0, 3), std::invalid_argument);
  EXPECT_THROW(zstd_decompress_bandwidth(data.data(), data.size(), offsets, 1, 0), std::invalid_argument);
  const std::vector<int64_t> one{0};
  EXPECT_THROW(zstd_decompress_bandwidth(data.data(), data.size(), one, 1, 1), std::invalid_argument);
  std::vector<int64_t> past = offsets;
  past.back() += 1;  // beyond the data
  EXPECT_THROW(zstd_decompress_bandwidth(data.data(), data.size(), past, 1, 1), std::invalid_argument);
  std::vector<int64_t> backwards{0, offsets[2], offsets[1]};
  EXPECT_THROW(zstd_decompress_bandwidth(data.data(), data.size(), backwards, 1, 1), std::invalid_argument);

  const std::vector<uint8_t> junk(64, 0xAB);
  const std::vector<int64_t> junk_offsets{0, 64};
  EXPECT_THROW(zstd_decompress_bandwidth(junk.data(), junk.size(), junk_offsets, 1, 1), std::invalid_argument);

  std::vector<int64_t> unsized_offsets;
  const std::vector<uint8_t> unsized = zstd_chunks({1000}, unsized_offsets, false);
  EXPECT_THROW(zstd_decompress_bandwidth(unsized.data(), unsized.size(), unsized_offsets, 1, 1),
               std::invalid_argument);
}

TEST(CodecBandwidth, ACorruptFrameBehindAGoodHeaderFailsTheCallFromItsThread) {
  std::vector<int64_t> offsets;
  std::vector<uint8_t> data = zstd_chunks({50000, 50000}, offsets);
  for (int64_t i = offsets[1] + 20; i < offsets[2] - 4; ++i) data[static_cast<size_t>(i)] ^= 0x5A;
  EXPECT_THROW(zstd_decompress_bandwidth(data.data(), data.size(), offsets, 2, 2), std::invalid_argument);
}
#else
TEST(CodecBandwidth, SaysWhenTheBuildHasNoZstd) {
  EXPECT_FALSE(zstd_bandwidth_available());
  const std::vector<int64_t> offsets{0, 1};
  const uint8_t byte = 0;
  EXPECT_THROW(zstd_decompress_bandwidth(&byte, 1, offsets, 1, 1), std::runtime_error);
}
#endif

}  // namespace
}  // namespace loaderbench
