#include "loaderbench/block_arena.h"

#include <algorithm>
#include <limits>
#include <new>

namespace loaderbench {

std::shared_ptr<BlockArena> BlockArena::create(size_t max_buffers) {
  return std::shared_ptr<BlockArena>(new BlockArena(max_buffers));
}

BlockArena::Handle BlockArena::acquire(int64_t bytes) {
  if (bytes <= 0) bytes = 1;
  Buffer buffer;
  {
    std::lock_guard lock(mutex_);
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->capacity >= bytes && (best == free_.end() || it->capacity < best->capacity)) best = it;
    }
    if (best != free_.end()) {
      buffer = std::move(*best);
      free_.erase(best);
    } else {
      // None fits: at the limit, the free ones (all too small) go before a new one is made.
      while (live_ >= max_buffers_ && !free_.empty()) {
        forget(std::move(free_.back()));
        free_.pop_back();
      }
      ++allocations_;
      ++live_;
    }
  }
  if (!buffer.bytes) {
    // 1/8 headroom, in whole 64 KiB, so the next block a little larger than this one fits too.
    constexpr int64_t kGrain = 64 << 10;
    const int64_t limit = std::numeric_limits<int64_t>::max() - kGrain;
    const int64_t wanted = bytes > limit - bytes / 8 ? bytes : bytes + bytes / 8;
    buffer.capacity = wanted > limit ? wanted : (wanted + kGrain - 1) / kGrain * kGrain;
    try {
      buffer.bytes.reset(new uint8_t[static_cast<size_t>(buffer.capacity)]);
    } catch (...) {
      std::lock_guard lock(mutex_);
      --live_;
      throw;
    }
  }
  uint8_t* data = buffer.bytes.get();
  // The deleter owns the buffer until it is handed back: no path leaks it, the arena's death included.
  auto held = std::make_shared<Buffer>(std::move(buffer));
  std::weak_ptr<BlockArena> arena = weak_from_this();
  return Handle(data, [held, arena](uint8_t*) {
    if (auto owner = arena.lock()) owner->give_back(std::move(*held));
  });
}

void BlockArena::give_back(Buffer buffer) {
  std::lock_guard lock(mutex_);
  if (live_ > max_buffers_) {
    forget(std::move(buffer));  // more were in use at once than the arena keeps
    return;
  }
  free_.push_back(std::move(buffer));
}

void BlockArena::forget(Buffer buffer) {
  --live_;
  buffer.bytes.reset();  // a free() under the lock: short, and it keeps the count exact
}

size_t BlockArena::allocations() const {
  std::lock_guard lock(mutex_);
  return allocations_;
}

size_t BlockArena::live_buffers() const {
  std::lock_guard lock(mutex_);
  return live_;
}

size_t BlockArena::free_buffers() const {
  std::lock_guard lock(mutex_);
  return free_.size();
}

}  // namespace loaderbench
