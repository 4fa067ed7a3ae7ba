#include "loaderbench/block_arena.h"

#include <algorithm>
#include <limits>
#include <new>

namespace loaderbench {

std::shared_ptr<BlockArena> BlockArena::create(size_t max_free) {
  return std::shared_ptr<BlockArena>(new BlockArena(max_free));
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
      ++allocations_;
    }
  }
  if (!buffer.bytes) {
    // 1/8 headroom, in whole 64 KiB, so the next block a little larger than this one fits too.
    constexpr int64_t kGrain = 64 << 10;
    const int64_t limit = std::numeric_limits<int64_t>::max() - kGrain;
    const int64_t wanted = bytes > limit - bytes / 8 ? bytes : bytes + bytes / 8;
    buffer.capacity = wanted > limit ? wanted : (wanted + kGrain - 1) / kGrain * kGrain;
    buffer.bytes.reset(new uint8_t[static_cast<size_t>(buffer.capacity)]);
  }
  uint8_t* data = buffer.bytes.get();
  // The deleter owns the buffer until it is handed back: no path leaks it, the arena's death included.
  auto held = std::make_shared<Buffer>(std::move(buffer));
  std::weak_ptr<BlockArena> arena = weak_from_this();
  return Handle(data, [held, arena](uint8_t*) mutable {
    if (auto owner = arena.lock()) owner->give_back(std::move(*held));
  });
}

void BlockArena::give_back(Buffer buffer) {
  std::lock_guard lock(mutex_);
  if (free_.size() < max_free_) {
    free_.push_back(std::move(buffer));
    return;
  }
  // Full: keep the larger buffers (they fit any block the smaller ones fit).
  auto smallest = std::min_element(free_.begin(), free_.end(),
                                   [](const Buffer& a, const Buffer& b) { return a.capacity < b.capacity; });
  if (smallest != free_.end() && smallest->capacity < buffer.capacity) *smallest = std::move(buffer);
}

size_t BlockArena::allocations() const {
  std::lock_guard lock(mutex_);
  return allocations_;
}

size_t BlockArena::free_buffers() const {
  std::lock_guard lock(mutex_);
  return free_.size();
}

}  // namespace loaderbench
