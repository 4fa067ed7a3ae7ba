// Recycled byte buffers for streamed blocks: a block copied out of its reader's memory goes into a buffer that an
// earlier block released, so an epoch touches the same pages block after block instead of faulting in (and having
// the kernel zero) fresh ones for every block, and frees nothing across threads into the reader's allocator.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace loaderbench {

class BlockArena : public std::enable_shared_from_this<BlockArena> {
 public:
  /// A buffer's owner: while any copy lives the bytes are the holder's; the last one gives them back to the arena
  /// (or frees them, once the arena is gone).
  using Handle = std::shared_ptr<uint8_t>;

  /// Keeps at most `max_free` released buffers for reuse (the blocks one epoch holds at once is the useful count).
  static std::shared_ptr<BlockArena> create(size_t max_free);

  /// A buffer of at least `bytes` (> 0): the smallest free one that fits, or a new one with 1/8 headroom, so that
  /// blocks of slightly different sizes reuse it. Throws std::bad_alloc when it cannot be allocated.
  Handle acquire(int64_t bytes);

  size_t allocations() const;  // buffers allocated so far (a reused one is not counted again)
  size_t free_buffers() const;

 private:
  struct Buffer {
    std::unique_ptr<uint8_t[]> bytes;  // default-initialised: the holder writes what it reads
    int64_t capacity = 0;
  };
  explicit BlockArena(size_t max_free) : max_free_(max_free) {}
  void give_back(Buffer buffer);

  mutable std::mutex mutex_;
  std::vector<Buffer> free_;
  size_t max_free_;
  size_t allocations_ = 0;
};

}  // namespace loaderbench
