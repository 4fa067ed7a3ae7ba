// Stress tests of EpochIterator's consumer side: several threads calling next() on one iterator, cancel() racing
// next(), destruction right after a cancelled consumer returns, and many short epochs abandoned mid-way. They are
// meant to run under ThreadSanitizer (make test-cpp-tsan) and AddressSanitizer as well as plainly; each runs under
// a watchdog, so a hang fails the test binary instead of blocking ctest.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "loaderbench/batch_loader.h"

namespace loaderbench {
namespace {

using namespace std::chrono_literals;

/// Runs `body` on its own thread; if it is still running after `limit`, reports a hang and ends the process
/// (a hung thread cannot be joined, and a blocked ctest would hide which test hung).
template <typename Body>
void with_watchdog(std::chrono::seconds limit, Body body) {
  auto done = std::async(std::launch::async, std::move(body));
  if (done.wait_for(limit) == std::future_status::timeout) {
    std::fprintf(stderr, "watchdog: %s still running after %lld s: a hang in EpochIterator\n",
                 ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                 static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  done.get();  // rethrows what the body threw
}

// Generous for ThreadSanitizer (5-15x slower); each test takes well under a second without it.
constexpr auto kWatchdog = 60s;

/// Row r of epoch e is the pair of floats (r, e). Rows are slow now and then (a few microseconds), so that
/// workers and consumers interleave; row `bad` throws; with a gate, every row waits until the gate opens.
class StressRows final : public RowSource {
 public:
  explicit StressRows(int64_t n, int64_t bad = -1) : n_(n), bad_(bad) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {2}; }
  OutputType element_type() const override { return OutputType::kFloat32; }
  void write_row(int64_t row, int64_t epoch, uint8_t* out, std::vector<uint8_t>&) const override {
    if (gated_) {
      std::unique_lock lock(gate_mutex_);
      gate_cv_.wait(lock, [&] { return open_; });
    }
    if (row == bad_) throw std::runtime_error("bad row " + std::to_string(row));
    if (row % 5 == 0) std::this_thread::sleep_for(std::chrono::microseconds(1 + row % 7));
    const float sample[2] = {static_cast<float>(row), static_cast<float>(epoch)};
    std::memcpy(out, sample, sizeof(sample));
  }

  void close_gate() { gated_ = true; }  // before any iterator uses these rows
  void open_gate() {
    {
      std::lock_guard lock(gate_mutex_);
      open_ = true;
    }
    gate_cv_.notify_all();
  }

 private:
  int64_t n_, bad_;
  bool gated_ = false;
  mutable std::mutex gate_mutex_;
  mutable std::condition_variable gate_cv_;
  bool open_ = false;
};

std::shared_ptr<BufferPool> pool_for(const LoaderOptions& o) {
  return BufferPool::create(static_cast<size_t>(o.batch_size) * 2 * sizeof(float), 16);
}

/// Checks a batch's samples against its indices; returns them.
std::vector<int64_t> checked_rows(const Batch& b, int64_t epoch) {
  EXPECT_TRUE(b.buffer);
  if (!b.buffer) return {};
  EXPECT_EQ(b.shape, (std::vector<int64_t>{static_cast<int64_t>(b.indices.size()), 2}));
  const auto* v = reinterpret_cast<const float*>(b.buffer->bytes.get());
  for (size_t i = 0; i < b.indices.size(); ++i) {
    EXPECT_EQ(v[2 * i], static_cast<float>(b.indices[i]));
    EXPECT_EQ(v[2 * i + 1], static_cast<float>(epoch));
  }
  return b.indices;
}

/// What one consumer thread received.
struct Received {
  std::vector<int64_t> numbers;
  std::vector<int64_t> rows;
  int errors = 0;
};

Received consume(EpochIterator& it, int64_t epoch) {
  Received r;
  Batch b;
  while (true) {
    try {
      if (!it.next(&b)) break;
    } catch (const std::runtime_error&) {
      ++r.errors;  // a worker's error, for one batch; the epoch goes on
      continue;
    }
    r.numbers.push_back(b.number);
    const std::vector<int64_t> rows = checked_rows(b, epoch);
    r.rows.insert(r.rows.end(), rows.begin(), rows.end());
    b.buffer.reset();
  }
  EXPECT_FALSE(it.next(&b));  // after the end, next() keeps returning false at once
  return r;
}

TEST(EpochIteratorConcurrency, ConsumersShareOneEpochExactlyOnce) {
  with_watchdog(kWatchdog, [] {
    const int64_t n = 97;  // not a multiple of any batch size below: the last batch is partial
    auto rows = std::make_shared<StressRows>(n);
    for (int threads : {1, 2, 4}) {
      for (int prefetch : {0, 1, 4}) {
        for (int consumers : {2, 3, 4}) {
          for (int64_t batch_size : {1, 3, 8}) {
            SCOPED_TRACE(::testing::Message() << "threads " << threads << " prefetch " << prefetch << " consumers "
                                              << consumers << " batch " << batch_size);
            LoaderOptions o;
            o.batch_size = batch_size;
            o.num_threads = threads;
            o.prefetch = prefetch;
            o.sampler.kind = SamplerKind::kRandom;
            o.sampler.seed = static_cast<uint64_t>(threads * 100 + prefetch * 10 + consumers);
            const int64_t epoch = batch_size;
            EpochIterator it(rows, pool_for(o), o, epoch);
            std::vector<std::future<Received>> futures;
            for (int c = 0; c < consumers; ++c) {
              futures.push_back(std::async(std::launch::async, [&] { return consume(it, epoch); }));
            }
            std::multiset<int64_t> numbers, seen_rows;
            for (auto& f : futures) {
              const Received r = f.get();
              EXPECT_EQ(r.errors, 0);
              for (size_t k = 1; k < r.numbers.size(); ++k) EXPECT_LT(r.numbers[k - 1], r.numbers[k]);  // in order
              numbers.insert(r.numbers.begin(), r.numbers.end());
              seen_rows.insert(r.rows.begin(), r.rows.end());
            }
            ASSERT_EQ(static_cast<int64_t>(numbers.size()), it.num_batches());
            int64_t expected = 0;
            for (int64_t number : numbers) EXPECT_EQ(number, expected++);  // every batch exactly once
            ASSERT_EQ(static_cast<int64_t>(seen_rows.size()), n);
            expected = 0;
            for (int64_t row : seen_rows) EXPECT_EQ(row, expected++);  // every row exactly once
          }
        }
      }
    }
  });
}

TEST(EpochIteratorConcurrency, AWorkersErrorGoesToExactlyOneConsumer) {
  with_watchdog(kWatchdog, [] {
    for (int prefetch : {0, 2}) {
      auto rows = std::make_shared<StressRows>(60, /*bad=*/33);
      LoaderOptions o;
      o.batch_size = 4;  // row 33 is in batch 8 (sequential order)
      o.num_threads = 3;
      o.prefetch = prefetch;
      EpochIterator it(rows, pool_for(o), o, 0);
      std::vector<std::future<Received>> futures;
      for (int c = 0; c < 3; ++c) futures.push_back(std::async(std::launch::async, [&] { return consume(it, 0); }));
      int errors = 0;
      std::set<int64_t> numbers;
      for (auto& f : futures) {
        const Received r = f.get();
        errors += r.errors;
        numbers.insert(r.numbers.begin(), r.numbers.end());
      }
      EXPECT_EQ(errors, 1);
      EXPECT_EQ(static_cast<int64_t>(numbers.size()), it.num_batches() - 1);
      EXPECT_EQ(numbers.count(8), 0u);
    }
  });
}

TEST(EpochIteratorConcurrency, CancelStopsAConsumerInAnyState) {
  with_watchdog(kWatchdog, [] {
    auto rows = std::make_shared<StressRows>(5000);
    for (int round = 0; round < 40; ++round) {
      LoaderOptions o;
      o.batch_size = 1 + round % 5;
      o.num_threads = 1 + round % 4;
      o.prefetch = round % 3 == 0 ? 0 : round % 3 == 1 ? 1 : 4;
      EpochIterator it(rows, pool_for(o), o, round);
      std::atomic<int64_t> delivered{0};
      auto consumer = std::async(std::launch::async, [&] {
        Batch b;
        int64_t expected = 0;
        while (it.next(&b)) {
          EXPECT_EQ(b.number, expected++);  // one consumer: consecutive batches up to the cancel
          checked_rows(b, round);
          b.buffer.reset();
          delivered.fetch_add(1, std::memory_order_relaxed);
        }
      });
      // Cancel at a different moment each round: at once, or after a few batches went by.
      if (round % 4 != 0) {
        while (delivered.load(std::memory_order_relaxed) < round % 7) std::this_thread::yield();
      }
      std::vector<std::thread> cancellers;  // several at once: cancel() is idempotent and thread-safe
      for (int c = 0; c < 1 + round % 3; ++c) cancellers.emplace_back([&] { it.cancel(); });
      for (std::thread& t : cancellers) t.join();
      ASSERT_EQ(consumer.wait_for(10s), std::future_status::ready) << "next() did not return after cancel()";
      consumer.get();
      EXPECT_LT(delivered.load(), it.num_batches());
      Batch b;
      EXPECT_FALSE(it.next(&b));  // later calls return false too
      it.cancel();
    }
  });
}

TEST(EpochIteratorConcurrency, CancelReleasesConsumersBlockedOnAStuckBatch) {
  with_watchdog(kWatchdog, [] {
    for (int prefetch : {0, 1, 3}) {
      auto rows = std::make_shared<StressRows>(64);
      rows->close_gate();  // no row can be written: every next() blocks
      LoaderOptions o;
      o.batch_size = 4;
      o.num_threads = 2;
      o.prefetch = prefetch;
      auto it = std::make_unique<EpochIterator>(rows, pool_for(o), o, 0);
      std::vector<std::future<bool>> consumers;
      for (int c = 0; c < 3; ++c) {
        consumers.push_back(std::async(std::launch::async, [&] {
          Batch b;
          return it->next(&b);
        }));
      }
      std::this_thread::sleep_for(20ms);  // let them block (if one is late, it calls next() after cancel: also false)
      it->cancel();
      for (auto& c : consumers) {
        ASSERT_EQ(c.wait_for(10s), std::future_status::ready) << "a blocked next() did not return after cancel()";
        EXPECT_FALSE(c.get());
      }
      rows->open_gate();  // the workers are still inside write_row; the destructor joins them
      it.reset();
    }
  });
}

TEST(EpochIteratorConcurrency, DestroyedRightAfterACancelledConsumerReturns) {
  with_watchdog(kWatchdog, [] {
    auto rows = std::make_shared<StressRows>(2000);
    for (int round = 0; round < 100; ++round) {
      LoaderOptions o;
      o.batch_size = 1 + round % 3;
      o.num_threads = 1 + round % 4;
      o.prefetch = round % 3 == 0 ? 0 : round % 3 == 1 ? 1 : 4;
      // The iterator owns the only reference to its pool half of the time: then a batch the consumer still
      // holds outlives both, and its buffer is freed instead of returned.
      auto pool = pool_for(o);
      auto it = std::make_unique<EpochIterator>(rows, round % 2 ? std::move(pool) : pool, o, round);
      std::atomic<bool> returned{false};
      std::atomic<bool> destroyed{false};
      std::thread consumer([&] {
        Batch b, kept;
        while (it->next(&b)) kept = std::move(b);
        returned.store(true);
        while (!destroyed.load()) std::this_thread::yield();
        if (kept.buffer) checked_rows(kept, round);  // still readable: the buffer belongs to the batch
      });
      std::this_thread::sleep_for(std::chrono::microseconds(round % 10 * 20));
      it->cancel();
      while (!returned.load()) std::this_thread::yield();
      it.reset();  // no thread is inside next() any more
      destroyed.store(true);
      consumer.join();
    }
  });
}

TEST(EpochIteratorConcurrency, ManyShortEpochsAbandonedMidway) {
  with_watchdog(kWatchdog, [] {
    auto rows = std::make_shared<StressRows>(150);
    uint64_t state = 12345;
    auto draw = [&](uint64_t bound) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return (state >> 33) % bound;
    };
    int epochs = 0;
    for (int prefetch : {0, 1, 4}) {
      for (int threads = 1; threads <= 4; ++threads) {
        for (int k = 0; k < 12; ++k, ++epochs) {
          LoaderOptions o;
          o.batch_size = 1 + static_cast<int64_t>(draw(9));
          o.num_threads = threads;
          o.prefetch = prefetch;
          o.sampler.kind = k % 2 ? SamplerKind::kRandom : SamplerKind::kSequential;
          o.sampler.seed = static_cast<uint64_t>(k);
          auto pool = pool_for(o);
          auto it = std::make_unique<EpochIterator>(rows, pool, o, epochs);
          const auto take = static_cast<int64_t>(draw(static_cast<uint64_t>(it->num_batches()) + 1));
          const uint64_t how = draw(4);
          Batch b;
          if (how == 0) {
            // Destroyed with workers busy or blocked on the prefetch bound, without cancel().
            for (int64_t t = 0; t < take; ++t) ASSERT_TRUE(it->next(&b));
          } else if (how == 1) {
            for (int64_t t = 0; t < take; ++t) ASSERT_TRUE(it->next(&b));
            it->cancel();
            EXPECT_FALSE(it->next(&b));
          } else {
            // Two consumers share the first `take` batches, then one cancels while the other may be waiting.
            std::atomic<int64_t> taken{0};
            auto worker = [&] {
              Batch mine;
              while (taken.fetch_add(1) < take) {
                if (!it->next(&mine)) break;
                checked_rows(mine, epochs);
              }
            };
            std::thread other(worker);
            worker();
            if (how == 3) it->cancel();
            other.join();
          }
          it.reset();
        }
      }
    }
    EXPECT_EQ(epochs, 3 * 4 * 12);
  });
}

}  // namespace
}  // namespace loaderbench
