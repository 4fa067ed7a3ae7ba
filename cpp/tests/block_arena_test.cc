#include "loaderbench/block_arena.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

namespace loaderbench {
namespace {

TEST(BlockArena, ReusesAReleasedBufferThatFits) {
  auto arena = BlockArena::create(4);
  uint8_t* first = nullptr;
  {
    BlockArena::Handle a = arena->acquire(1000);
    first = a.get();
    std::memset(first, 7, 1000);  // the whole size asked for is writable
  }
  EXPECT_EQ(arena->free_buffers(), 1u);
  BlockArena::Handle b = arena->acquire(1100);  // within the first buffer's headroom
  EXPECT_EQ(b.get(), first);
  EXPECT_EQ(arena->allocations(), 1u);
  BlockArena::Handle c = arena->acquire(1 << 20);  // larger than any free buffer: a new one
  EXPECT_EQ(arena->allocations(), 2u);
  std::memset(c.get(), 1, 1 << 20);
}

TEST(BlockArena, PicksTheSmallestFreeBufferThatFits) {
  auto arena = BlockArena::create(4);
  uint8_t* small = nullptr;
  {
    BlockArena::Handle big = arena->acquire(4 << 20);
    BlockArena::Handle little = arena->acquire(100 << 10);
    small = little.get();
  }
  BlockArena::Handle again = arena->acquire(50 << 10);
  EXPECT_EQ(again.get(), small);
}

TEST(BlockArena, HoldsAtMostMaxBuffersInUseOrFree) {
  auto arena = BlockArena::create(2);
  {
    BlockArena::Handle a = arena->acquire(1 << 20);
    BlockArena::Handle b = arena->acquire(2 << 20);
    BlockArena::Handle c = arena->acquire(3 << 20);  // more in use at once than the arena keeps: allowed
    EXPECT_EQ(arena->live_buffers(), 3u);
  }  // c, b, a released: the first one back is freed (3 > 2 live), the other two kept
  EXPECT_EQ(arena->live_buffers(), 2u);
  EXPECT_EQ(arena->free_buffers(), 2u);
  // Larger than both free buffers: at the limit, one is freed before a new one is made (never 3 held).
  BlockArena::Handle d = arena->acquire(8 << 20);
  EXPECT_EQ(arena->live_buffers(), 2u);
  EXPECT_EQ(arena->free_buffers(), 1u);
  EXPECT_EQ(arena->allocations(), 4u);
}

TEST(BlockArena, AHandleMayOutliveItsArena) {
  BlockArena::Handle held;
  {
    auto arena = BlockArena::create(2);
    held = arena->acquire(4096);
  }
  std::memset(held.get(), 3, 4096);  // still owned by the handle; freed when it goes (ASan checks both)
  held.reset();
}

TEST(BlockArena, ThreadsAcquireAndReleaseAtOnce) {
  auto arena = BlockArena::create(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&arena, t] {
      for (int i = 0; i < 200; ++i) {
        BlockArena::Handle h = arena->acquire(((i + t) % 5 + 1) * 4096);
        h.get()[0] = static_cast<uint8_t>(i);  // each buffer is its holder's alone (TSan checks)
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(arena->live_buffers(), 3u);
  EXPECT_EQ(arena->live_buffers(), arena->free_buffers());  // none in use any more
}

}  // namespace
}  // namespace loaderbench
