// StreamingEpochIterator and its plan: the block scheme, torch's shard counts with contiguous rank segments, the
// memory budget, read errors, cancellation and destruction while threads are blocked. The concurrency tests run
// under a watchdog, so a hang fails the binary instead of blocking ctest; they are meant for TSan and ASan too.
#include "loaderbench/streaming_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace loaderbench {
namespace {

using namespace std::chrono_literals;

template <typename Body>
void with_watchdog(Body body, std::chrono::seconds limit = 60s) {  // generous for TSan
  auto done = std::async(std::launch::async, std::move(body));
  if (done.wait_for(limit) == std::future_status::timeout) {
    std::fprintf(stderr, "watchdog: %s still running after %lld s: a hang in StreamingEpochIterator\n",
                 ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                 static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  done.get();
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

/// A high-water mark that several threads raise.
void raise_peak(std::atomic<int64_t>& peak, int64_t value) {
  int64_t seen = peak.load();
  while (value > seen && !peak.compare_exchange_weak(seen, value)) {
  }
}

/// Local row i of a block is dataset row rows[i]; its sample is (row, epoch) as floats, so a sample written from the
/// wrong local row, or for the wrong epoch, shows. Counts its bytes as live until it is destroyed.
class FakeBlockRows final : public RowSource {
 public:
  FakeBlockRows(std::vector<int64_t> rows, std::vector<int64_t> shape, OutputType type, int64_t bad_row,
                std::atomic<int64_t>* live_bytes, int64_t bytes)
      : rows_(std::move(rows)), shape_(std::move(shape)), type_(type), bad_row_(bad_row), live_bytes_(live_bytes),
        bytes_(bytes) {}
  ~FakeBlockRows() override { live_bytes_->fetch_sub(bytes_); }
  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  std::vector<int64_t> sample_shape() const override { return shape_; }
  OutputType element_type() const override { return type_; }
  void write_row(int64_t row, int64_t epoch, uint8_t* out, std::vector<uint8_t>&) const override {
    const int64_t dataset_row = rows_.at(static_cast<size_t>(row));
    if (dataset_row == bad_row_) throw std::runtime_error("bad sample " + std::to_string(dataset_row));
    const float sample[2] = {static_cast<float>(dataset_row), static_cast<float>(epoch)};
    std::memcpy(out, sample, sizeof(sample));
  }

 private:
  std::vector<int64_t> rows_;
  std::vector<int64_t> shape_;
  OutputType type_;
  int64_t bad_row_;
  std::atomic<int64_t>* live_bytes_;
  int64_t bytes_;
};

/// n rows of samples (row, epoch). Records every read; optionally slow, gated (reads wait until the gate opens),
/// failing for the block whose lowest row is `fail_row`, or returning a malformed block.
class FakeSource final : public BlockSource {
 public:
  enum class Malformed { kNone, kRowCount, kShape, kType, kNoRows };

  explicit FakeSource(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {2}; }
  OutputType element_type() const override { return OutputType::kFloat32; }

  LoadedBlock read(const std::vector<int64_t>& rows) override {
    const int64_t now = ++reading_;
    raise_peak(peak_reading_, now);
    {
      std::lock_guard lock(mutex_);
      read_sets_.push_back(rows);
    }
    {
      std::unique_lock lock(mutex_);
      gate_cv_.wait(lock, [&] { return !gated_; });
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    --reading_;
    if (!rows.empty() && rows.front() == fail_row) {
      throw std::runtime_error("read failed at row " + std::to_string(fail_row));
    }
    const auto bytes = static_cast<int64_t>(rows.size()) * bytes_per_row;
    raise_peak(peak_live_bytes_, live_bytes_ += bytes);
    std::vector<int64_t> local = rows;
    std::vector<int64_t> shape = {2};
    OutputType type = OutputType::kFloat32;
    if (malformed == Malformed::kRowCount) local.pop_back();
    if (malformed == Malformed::kShape) shape = {3};
    if (malformed == Malformed::kType) type = OutputType::kUint8;
    if (malformed == Malformed::kNoRows) {
      live_bytes_ -= bytes;
      return LoadedBlock{nullptr, bytes};
    }
    return LoadedBlock{std::make_shared<FakeBlockRows>(std::move(local), shape, type, bad_row, &live_bytes_, bytes),
                       bytes};
  }

  void close_gate() {
    std::lock_guard lock(mutex_);
    gated_ = true;
  }
  void open_gate() {
    {
      std::lock_guard lock(mutex_);
      gated_ = false;
    }
    gate_cv_.notify_all();
  }
  std::vector<std::vector<int64_t>> read_sets() const {
    std::lock_guard lock(mutex_);
    return read_sets_;
  }
  int64_t reading() const { return reading_.load(); }
  int64_t peak_reading() const { return peak_reading_.load(); }
  int64_t live_bytes() const { return live_bytes_.load(); }
  int64_t peak_live_bytes() const { return peak_live_bytes_.load(); }

  // Set before any iterator reads.
  int64_t bytes_per_row = 100;
  std::chrono::microseconds delay{0};
  int64_t fail_row = -1;
  int64_t bad_row = -1;
  Malformed malformed = Malformed::kNone;

 private:
  int64_t n_;
  mutable std::mutex mutex_;
  std::condition_variable gate_cv_;
  bool gated_ = false;
  std::vector<std::vector<int64_t>> read_sets_;
  std::atomic<int64_t> reading_{0}, peak_reading_{0}, live_bytes_{0}, peak_live_bytes_{0};
};

StreamingOptions options_of(int64_t batch_size, bool shuffle, int64_t chunk_size, int64_t chunks_per_block) {
  StreamingOptions o;
  o.loader.batch_size = batch_size;
  o.loader.sampler.seed = 17;
  o.shuffle = shuffle;
  o.chunk_size = chunk_size;
  o.chunks_per_block = chunks_per_block;
  return o;
}

std::shared_ptr<BufferPool> pool_for(int64_t n, const StreamingOptions& o) {
  const int64_t rows = std::max<int64_t>(1, std::min(o.loader.batch_size, n));
  return BufferPool::create(static_cast<size_t>(rows) * 2 * sizeof(float), 16);
}

/// Checks a batch's samples against its indices.
void check_samples(const Batch& b, int64_t epoch) {
  ASSERT_TRUE(b.buffer);
  ASSERT_EQ(b.shape, (std::vector<int64_t>{static_cast<int64_t>(b.indices.size()), 2}));
  const auto* v = reinterpret_cast<const float*>(b.buffer->bytes.get());
  for (size_t i = 0; i < b.indices.size(); ++i) {
    ASSERT_EQ(v[2 * i], static_cast<float>(b.indices[i])) << "position " << i << " of batch " << b.number;
    ASSERT_EQ(v[2 * i + 1], static_cast<float>(epoch));
  }
}

struct EpochResult {
  std::vector<std::vector<int64_t>> batches;  // the indices of each batch
  std::vector<int64_t> order;                 // all of them, in order
  int64_t num_batches = 0, blocks_read = 0, peak_block_bytes = 0, peak_blocks_in_flight = 0, num_blocks = 0;
};

EpochResult run_epoch(const std::shared_ptr<FakeSource>& source, const StreamingOptions& o, int64_t epoch) {
  StreamingEpochIterator it(source, pool_for(source->size(), o), o, epoch);
  EpochResult r;
  Batch b;
  while (it.next(&b)) {
    EXPECT_EQ(b.number, static_cast<int64_t>(r.batches.size()));
    check_samples(b, epoch);
    r.batches.push_back(b.indices);
    r.order.insert(r.order.end(), b.indices.begin(), b.indices.end());
    b.buffer.reset();
  }
  EXPECT_FALSE(it.next(&b));
  r.num_batches = it.num_batches();
  EXPECT_EQ(static_cast<int64_t>(r.batches.size()), r.num_batches);
  r.blocks_read = it.blocks_read();
  r.peak_block_bytes = it.peak_block_bytes();
  r.peak_blocks_in_flight = it.peak_blocks_in_flight();
  r.num_blocks = it.num_blocks();
  return r;
}

/// The rows of block b of a plan.
std::vector<int64_t> block_rows(const BlockPlan& plan, int64_t b) {
  return {plan.order.begin() + plan.block_bounds[static_cast<size_t>(b)],
          plan.order.begin() + plan.block_bounds[static_cast<size_t>(b) + 1]};
}

// ---- The plan ----

TEST(StreamingPlan, UnshuffledIsTheIdentityInGroupsOfChunks) {
  const BlockPlan plan = streaming_plan(23, options_of(4, false, 3, 2), 5);
  EXPECT_EQ(plan.order, iota(23));
  EXPECT_EQ(plan.block_bounds, (std::vector<int64_t>{0, 6, 12, 18, 23}));  // 8 chunks of 3 (the last of 2), 2 a block
}

TEST(StreamingPlan, PaddingRowsAreABlockOfTheirOwn) {
  // 5 rows in one global block; 3 ranks of 2: rank 2 holds row 4, then row 0 again as padding (a second read).
  StreamingOptions o = options_of(4, false, 7, 1);
  o.loader.sampler.world_size = 3;
  o.loader.sampler.rank = 2;
  const BlockPlan plan = streaming_plan(5, o, 0);
  EXPECT_EQ(plan.order, (std::vector<int64_t>{4, 0}));
  EXPECT_EQ(plan.block_bounds, (std::vector<int64_t>{0, 1, 2}));
}

TEST(StreamingPlan, ShuffledBlocksAreWholeChunksShuffledTogether) {
  for (int64_t chunk : {1, 7, 64}) {
    for (int64_t per_block : {1, 3}) {
      const int64_t n = 203;  // not a multiple of 7 or 64: the last chunk is short
      const BlockPlan plan = streaming_plan(n, options_of(8, true, chunk, per_block), 2);
      std::vector<int64_t> sorted_order = plan.order;
      std::sort(sorted_order.begin(), sorted_order.end());
      ASSERT_EQ(sorted_order, iota(n));
      EXPECT_NE(plan.order, iota(n));
      const int64_t chunks = (n + chunk - 1) / chunk;
      ASSERT_EQ(plan.num_blocks(), (chunks + per_block - 1) / per_block);
      std::set<int64_t> chunks_seen;
      bool rows_mixed = false;
      for (int64_t b = 0; b < plan.num_blocks(); ++b) {
        std::vector<int64_t> rows = block_rows(plan, b);
        rows_mixed |= !std::is_sorted(rows.begin(), rows.end());
        std::set<int64_t> block_chunks;
        for (int64_t row : rows) block_chunks.insert(row / chunk);
        EXPECT_LE(static_cast<int64_t>(block_chunks.size()), per_block);
        if (b + 1 < plan.num_blocks()) EXPECT_EQ(static_cast<int64_t>(block_chunks.size()), per_block);
        int64_t whole = 0;  // the block holds its chunks whole
        for (int64_t c : block_chunks) {
          EXPECT_TRUE(chunks_seen.insert(c).second) << "chunk " << c << " in two blocks";
          whole += std::min(chunk, n - c * chunk);
        }
        EXPECT_EQ(whole, static_cast<int64_t>(rows.size()));
      }
      if (chunk * per_block > 1) EXPECT_TRUE(rows_mixed) << "rows within blocks are shuffled";
    }
  }
}

TEST(StreamingPlan, ChunkStartsMakeUnevenChunksEachWholeInOneBlock) {
  // Read units of uneven sizes (a file written by another tool): every block holds whole units, each unit is in
  // exactly one block, and chunk_size is ignored.
  const std::vector<int64_t> starts = {0, 5, 6, 40, 41, 90, 150, 151, 190};
  const int64_t n = 203;
  auto unit_of = [&](int64_t row) {
    return static_cast<int64_t>(std::upper_bound(starts.begin(), starts.end(), row) - starts.begin()) - 1;
  };
  auto unit_rows = [&](int64_t u) {
    return (u + 1 < static_cast<int64_t>(starts.size()) ? starts[static_cast<size_t>(u) + 1] : n) -
           starts[static_cast<size_t>(u)];
  };
  for (bool shuffle : {false, true}) {
    for (int64_t per_block : {1, 2, 4}) {
      StreamingOptions o = options_of(8, shuffle, 7, per_block);
      o.chunk_starts = starts;
      const BlockPlan plan = streaming_plan(n, o, 3);
      std::vector<int64_t> sorted_order = plan.order;
      std::sort(sorted_order.begin(), sorted_order.end());
      ASSERT_EQ(sorted_order, iota(n));
      const auto units = static_cast<int64_t>(starts.size());
      ASSERT_EQ(plan.num_blocks(), (units + per_block - 1) / per_block);
      std::set<int64_t> units_seen;
      for (int64_t b = 0; b < plan.num_blocks(); ++b) {
        const std::vector<int64_t> rows = block_rows(plan, b);
        std::set<int64_t> block_units;
        for (int64_t row : rows) block_units.insert(unit_of(row));
        if (b + 1 < plan.num_blocks()) EXPECT_EQ(static_cast<int64_t>(block_units.size()), per_block);
        int64_t whole = 0;
        for (int64_t u : block_units) {
          EXPECT_TRUE(units_seen.insert(u).second) << "unit " << u << " in two blocks";
          whole += unit_rows(u);
        }
        EXPECT_EQ(whole, static_cast<int64_t>(rows.size())) << "block " << b << " holds its units whole";
      }
      if (!shuffle) EXPECT_EQ(plan.order, iota(n));
      if (!shuffle && per_block == 2) {
        EXPECT_EQ(plan.block_bounds, (std::vector<int64_t>{0, 6, 41, 150, 190, 203}));
      }
    }
  }
}

TEST(StreamingPlan, RejectsChunkStartsThatDoNotCutTheRows) {
  auto rejects = [](std::vector<int64_t> starts, const char* why) {
    StreamingOptions o;
    o.chunk_starts = std::move(starts);
    EXPECT_THROW(streaming_plan(10, o, 0), std::invalid_argument) << why;
    EXPECT_THROW(streaming_batches_per_epoch(10, o), std::invalid_argument) << why;
  };
  rejects({1, 5}, "not from row 0");
  rejects({0, 5, 5}, "an empty chunk");
  rejects({0, 6, 3}, "descending");
  rejects({0, 10}, "a chunk past the end");
  rejects({-1, 4}, "a negative start");
  StreamingOptions o;
  o.chunk_starts = {0, 9};
  EXPECT_EQ(streaming_plan(10, o, 0).num_blocks(), 2);
  EXPECT_THROW(streaming_plan(0, o, 0), std::invalid_argument);  // starts that an empty dataset cannot have
}

TEST(StreamingPlan, IsAPureFunctionOfSeedAndEpoch) {
  StreamingOptions o = options_of(8, true, 7, 3);
  const BlockPlan a = streaming_plan(500, o, 1);
  EXPECT_EQ(a.order, streaming_plan(500, o, 1).order);
  EXPECT_EQ(a.block_bounds, streaming_plan(500, o, 1).block_bounds);
  EXPECT_NE(a.order, streaming_plan(500, o, 2).order);
  o.loader.num_threads = 4;  // threads do not change the order
  o.io_threads = 3;
  EXPECT_EQ(a.order, streaming_plan(500, o, 1).order);
  o.loader.sampler.seed = 18;
  EXPECT_NE(a.order, streaming_plan(500, o, 1).order);
  o.shuffle = false;
  EXPECT_EQ(streaming_plan(500, o, 1).order, streaming_plan(500, o, 2).order);
}

TEST(StreamingPlan, RanksTakeContiguousSegmentsOfThePaddedOrder) {
  for (bool shuffle : {false, true}) {
    for (bool drop_uneven : {false, true}) {
      for (int64_t world : {1, 2, 3, 5}) {
        for (int64_t n : {0, 1, 2, 4, 23, 203}) {
          SCOPED_TRACE(::testing::Message() << "shuffle " << shuffle << " drop " << drop_uneven << " world " << world
                                            << " n " << n);
          StreamingOptions o = options_of(4, shuffle, 7, 2);
          o.loader.sampler.drop_last = drop_uneven;
          const BlockPlan global = streaming_plan(n, o, 3);
          // torch's DistributedSampler: pad by wrapping around from the start, or drop the tail.
          std::vector<int64_t> expected;
          const int64_t total = drop_uneven ? n / world * world : (n + world - 1) / world * world;
          for (int64_t k = 0; k < total; ++k) expected.push_back(global.order[static_cast<size_t>(k % n)]);
          std::map<int64_t, int64_t> global_block;  // row -> its block in the global order
          for (int64_t b = 0; b < global.num_blocks(); ++b) {
            for (int64_t row : block_rows(global, b)) global_block[row] = b;
          }
          std::vector<int64_t> all;
          int64_t blocks = 0;
          for (int64_t rank = 0; rank < world; ++rank) {
            o.loader.sampler.world_size = world;
            o.loader.sampler.rank = rank;
            const BlockPlan plan = streaming_plan(n, o, 3);
            EXPECT_EQ(static_cast<int64_t>(plan.order.size()), total / world);
            EXPECT_EQ(plan.block_bounds.front(), 0);
            EXPECT_EQ(plan.block_bounds.back(), static_cast<int64_t>(plan.order.size()));
            all.insert(all.end(), plan.order.begin(), plan.order.end());
            blocks += plan.num_blocks();
            for (int64_t b = 0; b < plan.num_blocks(); ++b) {
              const std::vector<int64_t> rows = block_rows(plan, b);
              ASSERT_FALSE(rows.empty());
              std::set<int64_t> from;
              for (int64_t row : rows) from.insert(global_block.at(row));
              EXPECT_EQ(from.size(), 1u) << "a block reads from one block of the global order";
              EXPECT_EQ(std::set<int64_t>(rows.begin(), rows.end()).size(), rows.size()) << "no row twice in a block";
            }
          }
          EXPECT_EQ(all, expected);
          // Each rank reads its own blocks: a global block is split at most at rank boundaries (and padding).
          EXPECT_LE(blocks, global.num_blocks() + 2 * world);
        }
      }
    }
  }
}

TEST(StreamingPlan, BatchCountsMatchTheInMemoryLoader) {
  for (bool drop_last : {false, true}) {
    for (int64_t world : {1, 3}) {
      for (int64_t stride : {1, 2, 3}) {
        for (int64_t offset = 0; offset < stride; ++offset) {
          StreamingOptions o = options_of(4, true, 5, 2);
          o.loader.drop_last = drop_last;
          o.loader.sampler.world_size = world;
          o.loader.sampler.rank = world - 1;
          o.loader.batch_stride = stride;
          o.loader.batch_offset = offset;
          for (int64_t n : {0, 1, 9, 50}) {
            const int64_t batches = streaming_batches_per_epoch(n, o);
            EXPECT_EQ(batches, batches_per_epoch(n, o.loader));
            const BlockPlan plan = streaming_plan(n, o, 0);
            EXPECT_EQ(batches, (static_cast<int64_t>(plan.order.size()) + 3) / 4);
          }
        }
      }
    }
  }
}

TEST(StreamingPlan, RejectsBadOptions) {
  auto rejects = [](auto change) {
    StreamingOptions o;
    change(o);
    EXPECT_THROW(streaming_plan(10, o, 0), std::invalid_argument);
    EXPECT_THROW(streaming_batches_per_epoch(10, o), std::invalid_argument);
  };
  rejects([](StreamingOptions& o) { o.chunk_size = 0; });
  rejects([](StreamingOptions& o) { o.chunks_per_block = 0; });
  rejects([](StreamingOptions& o) { o.memory_budget = 0; });
  rejects([](StreamingOptions& o) { o.io_threads = 0; });
  rejects([](StreamingOptions& o) { o.io_threads = kMaxIoThreads + 1; });
  rejects([](StreamingOptions& o) { o.loader.batch_size = 0; });
  rejects([](StreamingOptions& o) { o.loader.num_threads = 0; });
  rejects([](StreamingOptions& o) { o.loader.prefetch = -1; });
  rejects([](StreamingOptions& o) {
    o.loader.batch_offset = 2;
    o.loader.batch_stride = 2;
  });
  rejects([](StreamingOptions& o) {
    o.loader.sampler.world_size = 2;
    o.loader.sampler.rank = 2;
  });
  EXPECT_THROW(streaming_plan(-1, StreamingOptions{}, 0), std::invalid_argument);
  try {
    StreamingOptions o;
    o.chunk_size = -3;
    streaming_plan(10, o, 0);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("chunk_size"), std::string::npos) << e.what();
  }
  StreamingOptions o;
  o.loader.sampler.kind = SamplerKind::kBlockShuffle;  // ignored, and so are its fields
  o.loader.sampler.block_size = 0;
  EXPECT_NO_THROW(streaming_plan(10, o, 0));
}

TEST(StreamingPlan, HugeChunksDoNotOverflow) {
  StreamingOptions o = options_of(3, true, INT64_MAX, INT64_MAX);
  o.memory_budget = INT64_MAX;
  const BlockPlan plan = streaming_plan(10, o, 0);
  EXPECT_EQ(plan.num_blocks(), 1);
  o.chunk_size = INT64_MAX / 2;
  o.chunks_per_block = 3;
  EXPECT_EQ(streaming_plan(10, o, 0).num_blocks(), 1);
  o.loader.batch_size = INT64_MAX;
  o.loader.batch_stride = INT64_MAX;
  EXPECT_EQ(streaming_plan(10, o, 0).order.size(), 10u);
  EXPECT_EQ(streaming_batches_per_epoch(10, o), 1);
}

// ---- The iterator ----

TEST(StreamingEpochIterator, EveryRowExactlyOncePerEpochWhateverTheThreads) {
  with_watchdog([] {
    const int64_t n = 203;
    auto source = std::make_shared<FakeSource>(n);
    int config = 0;
    for (bool shuffle : {false, true}) {
      for (int64_t world : {1, 2, 3}) {
        for (int64_t chunk : {1, 7, 64}) {
          for (int64_t per_block : {1, 3}) {
            for (int prefetch : {0, 2}) {
              std::vector<std::vector<int64_t>> first_orders;  // per rank, of the first thread setting
              for (int threads : {1, 2, 4}) {
                for (int io : {1, 2}) {
                  SCOPED_TRACE(::testing::Message() << "shuffle " << shuffle << " world " << world << " chunk " << chunk
                                                    << " per_block " << per_block << " prefetch " << prefetch
                                                    << " threads " << threads << " io " << io);
                  const int64_t batch_size = ++config % 2 ? 5 : 16;
                  std::multiset<int64_t> seen;
                  for (int64_t rank = 0; rank < world; ++rank) {
                    StreamingOptions o = options_of(batch_size, shuffle, chunk, per_block);
                    o.loader.num_threads = threads;
                    o.loader.prefetch = prefetch;
                    o.loader.sampler.world_size = world;
                    o.loader.sampler.rank = rank;
                    o.io_threads = io;
                    const EpochResult r = run_epoch(source, o, 4);
                    const BlockPlan plan = streaming_plan(n, o, 4);
                    EXPECT_EQ(r.order, plan.order);
                    EXPECT_EQ(static_cast<int64_t>(r.order.size()), (n + world - 1) / world);  // equal counts
                    EXPECT_EQ(r.blocks_read, plan.num_blocks());  // every block read once
                    seen.insert(r.order.begin(), r.order.end());
                    if (threads == 1 && io == 1) {
                      first_orders.push_back(r.order);
                    } else {
                      EXPECT_EQ(r.order, first_orders[static_cast<size_t>(rank)]) << "same seed, same order";
                    }
                  }
                  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), static_cast<size_t>(n));
                  // Padded as torch pads: the first (total - n) rows of the global order come twice.
                  const int64_t total = (n + world - 1) / world * world;
                  EXPECT_EQ(static_cast<int64_t>(seen.size()), total);
                  StreamingOptions global = options_of(batch_size, shuffle, chunk, per_block);
                  const BlockPlan whole = streaming_plan(n, global, 4);
                  for (int64_t k = 0; k < total - n; ++k) {
                    EXPECT_EQ(seen.count(whole.order[static_cast<size_t>(k)]), 2u);
                  }
                }
              }
            }
          }
        }
      }
    }
    for (const std::vector<int64_t>& rows : source->read_sets()) {  // what the reader was asked for
      ASSERT_FALSE(rows.empty());
      for (size_t i = 1; i < rows.size(); ++i) ASSERT_LT(rows[i - 1], rows[i]) << "read sets ascend, no repeats";
    }
    EXPECT_EQ(source->live_bytes(), 0) << "every block was released";
  });
}

TEST(StreamingEpochIterator, DifferentEpochsGiveDifferentOrdersWhenShuffled) {
  auto source = std::make_shared<FakeSource>(300);
  StreamingOptions o = options_of(10, true, 8, 2);
  o.loader.num_threads = 2;
  const std::vector<int64_t> a = run_epoch(source, o, 0).order, b = run_epoch(source, o, 1).order;
  EXPECT_NE(a, b);
  EXPECT_EQ(std::multiset<int64_t>(a.begin(), a.end()), std::multiset<int64_t>(b.begin(), b.end()));
  EXPECT_EQ(a, run_epoch(source, o, 0).order);
  o.shuffle = false;
  EXPECT_EQ(run_epoch(source, o, 0).order, iota(300));
  EXPECT_EQ(run_epoch(source, o, 1).order, iota(300));
}

TEST(StreamingEpochIterator, MemoryStaysWithinTheBudget) {
  with_watchdog([] {
    // 40 blocks of 64 rows, 6400 bytes each; a budget of two blocks.
    auto source = std::make_shared<FakeSource>(40 * 64);
    source->delay = 200us;
    for (int io : {1, 2, 4}) {
      for (int prefetch : {0, 2}) {
        StreamingOptions o = options_of(24, true, 16, 4);
        o.loader.num_threads = 2;
        o.loader.prefetch = prefetch;
        o.io_threads = io;
        o.memory_budget = 2 * 64 * source->bytes_per_row;
        const EpochResult r = run_epoch(source, o, 1);
        EXPECT_EQ(static_cast<int64_t>(r.order.size()), 40 * 64);
        EXPECT_EQ(r.blocks_read, 40);
        EXPECT_GE(r.peak_block_bytes, 64 * source->bytes_per_row);
        EXPECT_LE(r.peak_block_bytes, o.memory_budget);
        EXPECT_LE(r.peak_blocks_in_flight, 2);
        EXPECT_LE(source->peak_live_bytes(), o.memory_budget) << "released blocks are freed, not just uncounted";
        EXPECT_LE(source->peak_reading(), 2);
        EXPECT_EQ(source->live_bytes(), 0);
      }
    }
  });
}

TEST(StreamingEpochIterator, ReadsRunAheadByABoundedNumberOfBlocks) {
  with_watchdog([] {
    // A budget that would hold every block: the count cap (io_threads + 2 by default, or as set) bounds them.
    auto source = std::make_shared<FakeSource>(60 * 16);
    for (int io : {1, 2}) {
      for (int64_t cap : {0, 1, 3}) {
        StreamingOptions o = options_of(8, true, 16, 1);
        o.loader.num_threads = 2;
        o.io_threads = io;
        o.memory_budget = int64_t{1} << 40;
        o.max_blocks_in_flight = cap;
        const EpochResult r = run_epoch(source, o, 0);
        EXPECT_EQ(static_cast<int64_t>(r.order.size()), 60 * 16);
        EXPECT_LE(r.peak_blocks_in_flight, cap > 0 ? cap : io + 2);
      }
    }
    StreamingOptions bad = options_of(8, true, 16, 1);
    bad.max_blocks_in_flight = -1;
    EXPECT_THROW(validate_streaming_options(bad), std::invalid_argument);
  });
}

TEST(StreamingEpochIterator, ABudgetBelowOneBlockStillFinishesOneBlockAtATime) {
  with_watchdog([] {
    auto source = std::make_shared<FakeSource>(200);
    for (int64_t batch_size : {3, 50}) {  // a batch inside a block, and one spanning several blocks
      for (int prefetch : {0, 2}) {
        StreamingOptions o = options_of(batch_size, true, 7, 2);
        o.loader.num_threads = 3;
        o.loader.prefetch = prefetch;
        o.io_threads = 3;
        o.memory_budget = 1;
        const EpochResult r = run_epoch(source, o, 0);
        EXPECT_EQ(static_cast<int64_t>(r.order.size()), 200);
        EXPECT_EQ(r.peak_blocks_in_flight, 1);
        EXPECT_EQ(source->peak_reading(), 1);
        EXPECT_EQ(r.peak_block_bytes, 14 * source->bytes_per_row);
      }
    }
  });
}

TEST(StreamingEpochIterator, AHintedBlockSizeLetsTheFirstReadsRunTogetherWithinTheBudget) {
  with_watchdog([] {
    // 10 blocks of 16 rows (1600 bytes each); the first read is held at the gate while the others may start.
    const int64_t block_bytes = 16 * 100;
    for (int64_t hint : {int64_t{0}, block_bytes}) {
      for (int64_t budget : {3 * block_bytes, block_bytes}) {
        auto source = std::make_shared<FakeSource>(160);
        ASSERT_EQ(source->bytes_per_row, 100);
        source->close_gate();
        StreamingOptions o = options_of(8, true, 16, 1);
        o.loader.num_threads = 2;
        o.io_threads = 3;
        o.memory_budget = budget;
        o.block_bytes_hint = hint;
        auto it = std::make_unique<StreamingEpochIterator>(source, pool_for(160, o), o, 0);
        while (source->reading() == 0) std::this_thread::yield();
        std::this_thread::sleep_for(20ms);  // time for the other I/O threads to claim what they may
        // Unhinted, nothing else starts before the first read tells the size; hinted, as many as the budget holds.
        const int64_t expected = hint > 0 ? budget / block_bytes : 1;
        EXPECT_EQ(source->reading(), expected) << "hint " << hint << ", budget " << budget;
        source->open_gate();
        Batch b;
        int64_t rows = 0;
        while (it->next(&b)) {
          rows += static_cast<int64_t>(b.indices.size());
          b.buffer.reset();
        }
        EXPECT_EQ(rows, 160);
        EXPECT_EQ(it->largest_block_bytes(), block_bytes);
        EXPECT_LE(it->peak_block_bytes(), std::max(budget, block_bytes));
        it.reset();
        EXPECT_EQ(source->live_bytes(), 0);
      }
    }
    StreamingOptions bad = options_of(8, true, 16, 1);
    bad.block_bytes_hint = -1;
    EXPECT_THROW(validate_streaming_options(bad), std::invalid_argument);
  });
}

TEST(StreamingEpochIterator, BatchesLargerAndSmallerThanBlocks) {
  with_watchdog([] {
    auto source = std::make_shared<FakeSource>(203);
    struct Case {
      int64_t batch_size, chunk, per_block;
    };
    for (const Case c : {Case{50, 7, 1}, Case{203, 1, 1}, Case{1000, 3, 1}, Case{3, 64, 3}, Case{1, 64, 1}}) {
      for (bool shuffle : {false, true}) {
        for (int prefetch : {0, 1}) {
          SCOPED_TRACE(::testing::Message() << "batch " << c.batch_size << " chunk " << c.chunk << " per_block "
                                            << c.per_block << " shuffle " << shuffle << " prefetch " << prefetch);
          StreamingOptions o = options_of(c.batch_size, shuffle, c.chunk, c.per_block);
          o.loader.num_threads = 2;
          o.loader.prefetch = prefetch;
          o.io_threads = 2;
          o.memory_budget = 3 * c.chunk * c.per_block * source->bytes_per_row;
          const EpochResult r = run_epoch(source, o, 2);
          EXPECT_EQ(r.order, streaming_plan(203, o, 2).order);
          std::vector<int64_t> sorted_order = r.order;
          std::sort(sorted_order.begin(), sorted_order.end());
          EXPECT_EQ(sorted_order, iota(203));
          EXPECT_EQ(r.num_batches, (203 + c.batch_size - 1) / c.batch_size);
        }
      }
    }
  });
}

TEST(StreamingEpochIterator, UnevenChunkStartsReadEachUnitOnceWhateverTheThreadsAndRanks) {
  with_watchdog([] {
    const std::vector<int64_t> starts = {0, 3, 50, 51, 52, 120, 121, 160};
    const int64_t n = 203;
    auto source = std::make_shared<FakeSource>(n);
    for (int threads : {1, 2, 4}) {
      for (int64_t world : {1, 2, 3}) {
        std::vector<int64_t> seen;
        for (int64_t rank = 0; rank < world; ++rank) {
          StreamingOptions o = options_of(16, true, 5, 2);
          o.chunk_starts = starts;
          o.loader.num_threads = threads;
          o.io_threads = 2;
          o.loader.sampler.world_size = world;
          o.loader.sampler.rank = rank;
          o.loader.sampler.drop_last = true;
          const EpochResult r = run_epoch(source, o, 1);
          EXPECT_EQ(r.order, streaming_plan(n, o, 1).order);
          seen.insert(seen.end(), r.order.begin(), r.order.end());
        }
        std::sort(seen.begin(), seen.end());
        EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "a row twice";
        EXPECT_EQ(static_cast<int64_t>(seen.size()), n / world * world);
      }
    }
    // Unsharded, one read per block and each read is whole units: 8 units, 2 a block.
    const size_t reads_before = source->read_sets().size();
    StreamingOptions o = options_of(16, true, 5, 2);
    o.chunk_starts = starts;
    EXPECT_EQ(run_epoch(source, o, 2).blocks_read, 4);
    const auto reads = source->read_sets();
    for (size_t i = reads_before; i < reads.size(); ++i) {
      for (int64_t row : reads[i]) {
        const auto unit = std::upper_bound(starts.begin(), starts.end(), row) - starts.begin() - 1;
        const int64_t first = starts[static_cast<size_t>(unit)];
        EXPECT_TRUE(std::binary_search(reads[i].begin(), reads[i].end(), first)) << "unit read whole";
      }
    }
  });
}

TEST(StreamingEpochIterator, UnevenLastChunkIsReadAsItsOwnShortBlock) {
  auto source = std::make_shared<FakeSource>(203);
  StreamingOptions o = options_of(16, false, 64, 1);
  const EpochResult r = run_epoch(source, o, 0);
  EXPECT_EQ(r.order, iota(203));
  const auto reads = source->read_sets();
  ASSERT_EQ(reads.size(), 4u);
  std::set<size_t> sizes;
  for (const auto& rows : reads) sizes.insert(rows.size());
  EXPECT_EQ(sizes, (std::set<size_t>{64, 11}));
}

TEST(StreamingEpochIterator, FewerRowsThanRanks) {
  auto source = std::make_shared<FakeSource>(2);
  for (bool drop_uneven : {false, true}) {
    std::vector<int64_t> all;
    for (int64_t rank = 0; rank < 5; ++rank) {
      StreamingOptions o = options_of(4, true, 1, 1);
      o.loader.sampler.world_size = 5;
      o.loader.sampler.rank = rank;
      o.loader.sampler.drop_last = drop_uneven;
      const EpochResult r = run_epoch(source, o, 0);
      EXPECT_EQ(r.num_batches, drop_uneven ? 0 : 1);
      EXPECT_EQ(r.order.size(), drop_uneven ? 0u : 1u);
      all.insert(all.end(), r.order.begin(), r.order.end());
    }
    if (drop_uneven) {
      EXPECT_TRUE(all.empty());
    } else {
      const std::vector<int64_t> global = streaming_plan(2, options_of(4, true, 1, 1), 0).order;
      EXPECT_EQ(all, (std::vector<int64_t>{global[0], global[1], global[0], global[1], global[0]}));
    }
  }
}

TEST(StreamingEpochIterator, EmptyDatasetHasNoBatches) {
  auto source = std::make_shared<FakeSource>(0);
  for (int64_t world : {1, 3}) {
    StreamingOptions o = options_of(4, true, 8, 2);
    o.loader.sampler.world_size = world;
    o.loader.num_threads = 2;
    o.io_threads = 2;
    const EpochResult r = run_epoch(source, o, 0);
    EXPECT_EQ(r.num_batches, 0);
    EXPECT_EQ(r.num_blocks, 0);
    EXPECT_EQ(r.blocks_read, 0);
  }
  EXPECT_TRUE(source->read_sets().empty());
}

TEST(StreamingEpochIterator, BatchSharesInterleaveIntoTheWholeEpoch) {
  // DataLoader workers: worker w of W takes batches w, w + W, ...; interleaved they are the unsplit epoch.
  auto source = std::make_shared<FakeSource>(97);
  for (bool drop_last : {false, true}) {
    StreamingOptions o = options_of(4, true, 6, 2);
    o.loader.drop_last = drop_last;
    o.loader.sampler.world_size = 2;
    o.loader.sampler.rank = 1;
    const EpochResult whole = run_epoch(source, o, 3);
    for (int64_t stride : {2, 3, 7}) {
      std::vector<EpochResult> shares;
      for (int64_t offset = 0; offset < stride; ++offset) {
        StreamingOptions share = o;
        share.loader.batch_stride = stride;
        share.loader.batch_offset = offset;
        share.loader.num_threads = 1 + static_cast<int>(offset % 3);
        shares.push_back(run_epoch(source, share, 3));
        EXPECT_LE(shares.back().blocks_read, whole.blocks_read) << "a share reads only the blocks it needs";
      }
      size_t total = 0;
      for (const EpochResult& s : shares) total += s.batches.size();
      ASSERT_EQ(total, whole.batches.size());
      for (size_t b = 0; b < whole.batches.size(); ++b) {
        EXPECT_EQ(shares[b % static_cast<size_t>(stride)].batches[b / static_cast<size_t>(stride)], whole.batches[b])
            << "stride " << stride << " batch " << b;
      }
    }
  }
}

TEST(StreamingEpochIterator, SeveralConsumersShareOneEpoch) {
  with_watchdog([] {
    auto source = std::make_shared<FakeSource>(500);
    StreamingOptions o = options_of(7, true, 9, 2);
    o.loader.num_threads = 3;
    o.io_threads = 2;
    o.memory_budget = 3 * 18 * source->bytes_per_row;
    StreamingEpochIterator it(source, pool_for(500, o), o, 0);
    std::mutex mutex;
    std::multiset<int64_t> rows, numbers;
    auto consume = [&] {
      Batch b;
      while (it.next(&b)) {
        check_samples(b, 0);
        std::lock_guard lock(mutex);
        rows.insert(b.indices.begin(), b.indices.end());
        numbers.insert(b.number);
      }
    };
    std::thread other(consume);
    consume();
    other.join();
    EXPECT_EQ(std::vector<int64_t>(rows.begin(), rows.end()), iota(500));
    EXPECT_EQ(static_cast<int64_t>(numbers.size()), it.num_batches());
    EXPECT_EQ(std::set<int64_t>(numbers.begin(), numbers.end()).size(), numbers.size());
  });
}

// ---- Errors, cancellation, destruction ----

TEST(StreamingEpochIterator, AReadErrorReachesEveryBatchThatNeedsTheBlock) {
  with_watchdog([] {
    for (int64_t batch_size : {5, 40}) {  // the failed block inside one batch, or a batch over several blocks
      for (int threads : {1, 3}) {
        for (int io : {1, 2}) {
          for (int prefetch : {0, 2}) {
            SCOPED_TRACE(::testing::Message() << "batch " << batch_size << " threads " << threads << " io " << io
                                              << " prefetch " << prefetch);
            StreamingOptions o = options_of(batch_size, true, 4, 3);  // blocks of 12 rows
            o.loader.num_threads = threads;
            o.loader.prefetch = prefetch;
            o.io_threads = io;
            o.memory_budget = 2 * 12 * 100;
            const BlockPlan plan = streaming_plan(150, o, 0);
            const int64_t failed = 3;
            std::vector<int64_t> rows = block_rows(plan, failed);
            auto source = std::make_shared<FakeSource>(150);
            source->fail_row = *std::min_element(rows.begin(), rows.end());
            const int64_t first_bad = plan.block_bounds[failed] / batch_size;
            const int64_t last_bad = (plan.block_bounds[failed + 1] - 1) / batch_size;
            StreamingEpochIterator it(source, pool_for(150, o), o, 0);
            Batch b;
            for (int64_t number = 0; number < it.num_batches(); ++number) {
              if (number >= first_bad && number <= last_bad) {
                try {
                  it.next(&b);
                  ADD_FAILURE() << "batch " << number << " needs the failed block";
                } catch (const std::runtime_error& e) {
                  EXPECT_EQ(std::string(e.what()), "read failed at row " + std::to_string(source->fail_row));
                }
              } else {
                ASSERT_TRUE(it.next(&b)) << "batch " << number;
                EXPECT_EQ(b.number, number);
                check_samples(b, 0);
              }
            }
            EXPECT_FALSE(it.next(&b));
            EXPECT_EQ(it.blocks_read(), plan.num_blocks() - 1);
          }
        }
      }
    }
  });
}

TEST(StreamingEpochIterator, StopsCleanlyAfterAReadError) {
  with_watchdog([] {
    for (int round = 0; round < 20; ++round) {
      StreamingOptions o = options_of(1 + round % 7, round % 2 == 0, 5, 1 + round % 3);
      o.loader.num_threads = 1 + round % 4;
      o.loader.prefetch = round % 3;
      o.io_threads = 1 + round % 2;
      o.memory_budget = 1 + (round % 4) * 1000;
      auto source = std::make_shared<FakeSource>(120);
      const BlockPlan plan = streaming_plan(120, o, round);
      const int64_t block = std::upper_bound(plan.block_bounds.begin(), plan.block_bounds.end(), 60) -
                            plan.block_bounds.begin() - 1;
      const std::vector<int64_t> rows = block_rows(plan, block);
      source->fail_row = *std::min_element(rows.begin(), rows.end());  // the block of position 60 fails
      auto it = std::make_unique<StreamingEpochIterator>(source, pool_for(120, o), o, round);
      Batch b;
      bool threw = false;
      try {
        while (it->next(&b)) {
        }
      } catch (const std::runtime_error&) {
        threw = true;
      }
      EXPECT_TRUE(threw);
      it.reset();  // the consumer gives up at the error: the destructor stops and joins everything
      EXPECT_EQ(source->live_bytes(), 0);
    }
  });
}

TEST(StreamingEpochIterator, AMalformedBlockIsAClearError) {
  using Malformed = FakeSource::Malformed;
  for (Malformed m : {Malformed::kRowCount, Malformed::kShape, Malformed::kType, Malformed::kNoRows}) {
    auto source = std::make_shared<FakeSource>(30);
    source->malformed = m;
    StreamingOptions o = options_of(4, false, 10, 1);
    StreamingEpochIterator it(source, pool_for(30, o), o, 0);
    Batch b;
    try {
      it.next(&b);
      ADD_FAILURE() << "a malformed block was accepted";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("dataset row 0"), std::string::npos) << what;
      EXPECT_NE(what.find("expected 10 rows of shape (2,) (float32)"), std::string::npos) << what;
      if (m == Malformed::kRowCount) EXPECT_NE(what.find("returned 9 rows of shape (2,)"), std::string::npos) << what;
      if (m == Malformed::kShape) EXPECT_NE(what.find("shape (3,)"), std::string::npos) << what;
      if (m == Malformed::kType) EXPECT_NE(what.find("(uint8)"), std::string::npos) << what;
    }
  }
}

TEST(StreamingEpochIterator, ASampleErrorFailsItsBatchOnly) {
  auto source = std::make_shared<FakeSource>(40);
  source->bad_row = 21;
  StreamingOptions o = options_of(8, false, 16, 1);
  o.loader.num_threads = 2;
  StreamingEpochIterator it(source, pool_for(40, o), o, 0);
  Batch b;
  for (int k = 0; k < 2; ++k) ASSERT_TRUE(it.next(&b));
  EXPECT_THROW(it.next(&b), std::runtime_error);  // batch 2 holds row 21
  for (int k = 3; k < 5; ++k) {
    ASSERT_TRUE(it.next(&b));
    check_samples(b, 0);
  }
  EXPECT_FALSE(it.next(&b));
}

TEST(StreamingEpochIterator, CancelWakesEveryoneDuringASlowRead) {
  with_watchdog([] {
    for (int prefetch : {0, 2}) {
      auto source = std::make_shared<FakeSource>(100);
      source->close_gate();  // the first read blocks until the gate opens
      StreamingOptions o = options_of(4, true, 5, 1);
      o.loader.num_threads = 3;
      o.loader.prefetch = prefetch;
      o.io_threads = 3;  // the others wait for the first block's size
      o.memory_budget = 1;
      auto it = std::make_unique<StreamingEpochIterator>(source, pool_for(100, o), o, 0);
      std::vector<std::future<bool>> consumers;
      for (int c = 0; c < 2; ++c) {
        consumers.push_back(std::async(std::launch::async, [&] {
          Batch b;
          return it->next(&b);
        }));
      }
      while (source->reading() == 0) std::this_thread::yield();
      std::this_thread::sleep_for(10ms);  // let the workers block on the block and the consumers on the batch
      std::thread canceller([&] { it->cancel(); });
      canceller.join();
      for (auto& c : consumers) {
        ASSERT_EQ(c.wait_for(10s), std::future_status::ready) << "next() did not return after cancel()";
        EXPECT_FALSE(c.get());
      }
      EXPECT_EQ(source->reading(), 1) << "cancel() returned without waiting for the read";
      Batch b;
      EXPECT_FALSE(it->next(&b));
      source->open_gate();  // the read finishes in the background; the destructor joins its thread
      it.reset();
      EXPECT_EQ(source->live_bytes(), 0);
    }
  });
}

TEST(StreamingEpochIterator, DestroyedWhileThreadsAreBlocked) {
  with_watchdog([] {
    // A read stuck at destruction: the destructor wakes the workers and the waiting I/O threads, then waits for it.
    {
      auto source = std::make_shared<FakeSource>(100);
      source->close_gate();
      StreamingOptions o = options_of(4, false, 10, 1);
      o.loader.num_threads = 2;
      o.io_threads = 2;
      o.memory_budget = 1;
      auto it = std::make_unique<StreamingEpochIterator>(source, pool_for(100, o), o, 0);
      while (source->reading() == 0) std::this_thread::yield();
      std::thread opener([&] {
        std::this_thread::sleep_for(20ms);
        source->open_gate();
      });
      it.reset();
      opener.join();
    }
    // Abandoned after a few batches: I/O threads wait for budget, workers for blocks or the prefetch bound.
    uint64_t state = 99;
    auto draw = [&](uint64_t bound) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<int64_t>((state >> 33) % bound);
    };
    auto source = std::make_shared<FakeSource>(300);
    for (int round = 0; round < 60; ++round) {
      StreamingOptions o = options_of(1 + draw(20), draw(2) == 1, 1 + draw(16), 1 + draw(3));
      o.loader.num_threads = 1 + static_cast<int>(draw(4));
      o.loader.prefetch = static_cast<int>(draw(3));
      o.io_threads = 1 + static_cast<int>(draw(3));
      o.memory_budget = 1 + draw(4) * 2000;
      auto it = std::make_unique<StreamingEpochIterator>(source, pool_for(300, o), o, round);
      const int64_t take = draw(it->num_batches() + 1);
      Batch b;
      for (int64_t t = 0; t < take; ++t) ASSERT_TRUE(it->next(&b));
      if (draw(2) == 1) it->cancel();
      it.reset();
      EXPECT_EQ(source->live_bytes(), 0);
    }
  });
}

TEST(StreamingEpochIterator, RejectsWhatCannotWork) {
  auto source = std::make_shared<FakeSource>(10);
  StreamingOptions o = options_of(4, false, 2, 1);
  EXPECT_THROW(StreamingEpochIterator(nullptr, pool_for(10, o), o, 0), std::invalid_argument);
  EXPECT_THROW(StreamingEpochIterator(source, BufferPool::create(4, 2), o, 0), std::invalid_argument);  // too small
  o.io_threads = 0;
  EXPECT_THROW(StreamingEpochIterator(source, pool_for(10, o), o, 0), std::invalid_argument);
  EXPECT_TRUE(source->read_sets().empty());
}

TEST(StreamingEpochIterator, HugeBlockSizesDoNotOverflowTheBudget) {
  auto source = std::make_shared<FakeSource>(50);
  source->bytes_per_row = INT64_MAX / 4;  // a block of 3 rows holds 3/4 of INT64_MAX: the sums must not overflow
  StreamingOptions o = options_of(4, true, 3, 1);
  o.io_threads = 2;
  o.memory_budget = INT64_MAX;
  const EpochResult r = run_epoch(source, o, 0);
  EXPECT_EQ(r.order.size(), 50u);
  EXPECT_EQ(r.peak_blocks_in_flight, 1);
}

}  // namespace
}  // namespace loaderbench
