#include "loaderbench/block_arena.h"

#include <gtest/gtest.h>

#include <cstring>

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

TEST(BlockArena, KeepsAtMostMaxFreeBuffersAndTheLargest) {
  auto arena = BlockArena::create(1);
  uint8_t* large = nullptr;
  {
    BlockArena::Handle a = arena->acquire(1 << 20);
    BlockArena::Handle b = arena->acquire(2 << 20);
    large = b.get();
  }  // b is released first (reverse order), then a: a does not displace the larger b
  EXPECT_EQ(arena->free_buffers(), 1u);
  BlockArena::Handle c = arena->acquire(1 << 20);
  EXPECT_EQ(c.get(), large);
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

}  // namespace
}  // namespace loaderbench
