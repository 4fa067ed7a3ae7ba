#include "loaderbench/codec_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#ifdef LOADERBENCH_WITH_ZSTD
#include <zstd.h>
#endif

namespace loaderbench {

bool zstd_bandwidth_available() {
#ifdef LOADERBENCH_WITH_ZSTD
  return true;
#else
  return false;
#endif
}

#ifdef LOADERBENCH_WITH_ZSTD
namespace {

constexpr double kMinRoundSeconds = 0.05;

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* ctx) const noexcept { ZSTD_freeDCtx(ctx); }
};
using DCtx = std::unique_ptr<ZSTD_DCtx, DCtxDeleter>;

/// First chunk of each thread's range (threads + 1 entries), splitting the output bytes about evenly.
std::vector<size_t> split_by_output(const std::vector<int64_t>& sizes, int threads, int64_t total) {
  std::vector<size_t> starts(static_cast<size_t>(threads) + 1, sizes.size());
  starts[0] = 0;
  int64_t done = 0;
  size_t t = 1;
  for (size_t i = 0; i < sizes.size() && t < static_cast<size_t>(threads); ++i) {
    done += sizes[i];
    while (t < static_cast<size_t>(threads) && done * threads >= total * static_cast<int64_t>(t)) starts[t++] = i + 1;
  }
  return starts;
}

}  // namespace
#endif

CodecBandwidth zstd_decompress_bandwidth(const uint8_t* data, size_t data_size, std::span<const int64_t> offsets,
                                         int threads, int repeats) {
#ifndef LOADERBENCH_WITH_ZSTD
  (void)data, (void)data_size, (void)offsets, (void)threads, (void)repeats;
  throw std::runtime_error("zstd_decompress_bandwidth: this build of the core has no zstd");
#else
  if (threads < 1 || repeats < 1) throw std::invalid_argument("threads and repeats must be > 0");
  if (offsets.size() < 2) throw std::invalid_argument("offsets must describe at least one chunk");
  const size_t n = offsets.size() - 1;
  CodecBandwidth result;
  result.chunks = static_cast<int64_t>(n);
  result.threads = threads;
  std::vector<int64_t> sizes(n);
  int64_t largest = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t begin = offsets[i], end = offsets[i + 1];
    if (begin < 0 || end < begin || static_cast<uint64_t>(end) > data_size) {
      throw std::invalid_argument("chunk " + std::to_string(i) + ": offsets [" + std::to_string(begin) + ", " +
                                  std::to_string(end) + ") outside the " + std::to_string(data_size) + "-byte data");
    }
    const unsigned long long content = ZSTD_getFrameContentSize(data + begin, static_cast<size_t>(end - begin));
    if (content == ZSTD_CONTENTSIZE_ERROR) {
      throw std::invalid_argument("chunk " + std::to_string(i) + " is not a zstd frame");
    }
    if (content == ZSTD_CONTENTSIZE_UNKNOWN) {
      throw std::invalid_argument("chunk " + std::to_string(i) + ": the zstd frame does not record its content size");
    }
    sizes[i] = static_cast<int64_t>(content);
    largest = std::max(largest, sizes[i]);
    result.input_bytes += end - begin;
    result.output_bytes += sizes[i];
  }
  const std::vector<size_t> starts = split_by_output(sizes, threads, result.output_bytes);

  std::atomic<int> passes{1};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::barrier sync(threads + 1);
  const int rounds = repeats + 1;  // the first warms caches, contexts and page tables, and is dropped
  std::vector<std::jthread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      DCtx ctx(ZSTD_createDCtx());
      std::unique_ptr<uint8_t[]> out(new uint8_t[static_cast<size_t>(std::max<int64_t>(largest, 1))]);
      const size_t begin = starts[static_cast<size_t>(t)], end = starts[static_cast<size_t>(t) + 1];
      for (int r = 0; r < rounds; ++r) {
        sync.arrive_and_wait();  // start
        try {
          if (!ctx) throw std::runtime_error("zstd: could not create a decompression context");
          const int times = passes.load(std::memory_order_relaxed);
          for (int p = 0; p < times && !failed.load(std::memory_order_relaxed); ++p) {
            for (size_t i = begin; i < end; ++i) {
              const size_t got =
                  ZSTD_decompressDCtx(ctx.get(), out.get(), static_cast<size_t>(sizes[i]), data + offsets[i],
                                      static_cast<size_t>(offsets[i + 1] - offsets[i]));
              if (ZSTD_isError(got) || got != static_cast<size_t>(sizes[i])) {
                throw std::invalid_argument("chunk " + std::to_string(i) + " does not decompress to its " +
                                            std::to_string(sizes[i]) + " bytes" +
                                            (ZSTD_isError(got) ? std::string(": ") + ZSTD_getErrorName(got) : ""));
              }
            }
          }
        } catch (...) {
          const std::lock_guard lock(error_mutex);
          if (!error) error = std::current_exception();
          failed = true;
        }
        sync.arrive_and_wait();  // done
      }
    });
  }
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r == 0) {  // a short set is decompressed several times per timed round, so a round is not all noise
      const int times = seconds > 0 ? static_cast<int>(std::ceil(kMinRoundSeconds / seconds)) : 1;
      passes = std::clamp(times, 1, 1 << 16);
    } else {
      result.output_bytes_per_s.push_back(static_cast<double>(result.output_bytes) * passes.load() / seconds);
    }
  }
  pool.clear();  // joins
  if (error) std::rethrow_exception(error);
  result.passes_per_round = passes.load();
  return result;
#endif
}

}  // namespace loaderbench
