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

  /// Keeps at most `max_buffers` buffers, in use or free (the blocks an epoch holds at once is the useful count):
  /// so what it holds is bounded by that many of the largest blocks, even when block sizes vary.
  static std::shared_ptr<BlockArena> create(size_t max_buffers);

  /// A buffer of at least `bytes` (> 0): the smallest free one that fits, or else a new one with 1/8 headroom, so
  /// that blocks of slightly different sizes reuse it (free buffers too small for it are freed first while the
  /// count is at its limit). More than `max_buffers` exist only while more are in use at once; they are freed when
  /// released. Throws std::bad_alloc when it cannot be allocated.
  Handle acquire(int64_t bytes);

  size_t allocations() const;  // buffers allocated so far (a reused one is not counted again)
  size_t free_buffers() const;
  size_t live_buffers() const;  // allocated and not yet freed, in use or free

 private:
  struct Buffer {
    std::unique_ptr<uint8_t[]> bytes;  // default-initialised: the holder writes what it reads
    int64_t capacity = 0;
  };
  explicit BlockArena(size_t max_buffers) : max_buffers_(max_buffers) {}
  void give_back(Buffer buffer);
  void forget(Buffer buffer);  // frees a buffer (mutex_ held: only a count changes under it)

  mutable std::mutex mutex_;
  std::vector<Buffer> free_;
  size_t max_buffers_;
  size_t allocations_ = 0;
  size_t live_ = 0;
};

}  // namespace loaderbench
