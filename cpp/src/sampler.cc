#include "loaderbench/sampler.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace loaderbench {
namespace {

void shuffle(std::vector<int64_t>& values, SplitMix64& rng, size_t begin = 0, size_t end = SIZE_MAX) {
  end = std::min(end, values.size());
  for (size_t i = end; i > begin + 1; --i) {
    const size_t j = begin + rng.below(i - begin);
    std::swap(values[i - 1], values[j]);
  }
}

}  // namespace

uint64_t mix_seed(uint64_t seed, uint64_t epoch, uint64_t stream) {
  SplitMix64 a(seed ^ 0x5DEECE66Dull);
  SplitMix64 b(a.next() ^ (epoch * 0xD1B54A32D192ED03ull));
  SplitMix64 c(b.next() ^ (stream * 0x8CB92BA72F3D8DD7ull));
  return c.next();
}

int64_t shard_size(int64_t n, const SamplerOptions& o) {
  if (o.world_size <= 1) return n;
  return o.drop_last ? n / o.world_size : (n + o.world_size - 1) / o.world_size;
}

std::vector<int64_t> epoch_indices(int64_t n, const SamplerOptions& o, int64_t epoch) {
  if (n < 0) throw std::invalid_argument("dataset size is negative");
  if (o.world_size < 1) throw std::invalid_argument("world_size must be >= 1");
  if (o.rank < 0 || o.rank >= o.world_size) {
    throw std::invalid_argument("rank " + std::to_string(o.rank) + " is outside [0, world_size=" +
                                std::to_string(o.world_size) + ")");
  }
  if (o.kind == SamplerKind::kBlockShuffle && (o.block_size < 1 || o.buffer_blocks < 1)) {
    throw std::invalid_argument("block_size and buffer_blocks must be >= 1");
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  SplitMix64 rng(mix_seed(o.seed, static_cast<uint64_t>(epoch), 0));
  if (o.kind == SamplerKind::kRandom) {
    shuffle(order, rng);
  } else if (o.kind == SamplerKind::kBlockShuffle) {
    // Shuffle the order of contiguous blocks, then rows within each buffer of `buffer_blocks` blocks: reads stay
    // block-contiguous (good for streamed storage) while batches mix rows from several blocks.
    const int64_t blocks = (n + o.block_size - 1) / o.block_size;
    std::vector<int64_t> block_order(static_cast<size_t>(blocks));
    std::iota(block_order.begin(), block_order.end(), int64_t{0});
    shuffle(block_order, rng);
    order.clear();
    for (int64_t start = 0; start < blocks; start += o.buffer_blocks) {
      const size_t group_begin = order.size();
      for (int64_t b = start; b < std::min(blocks, start + o.buffer_blocks); ++b) {
        const int64_t first = block_order[static_cast<size_t>(b)] * o.block_size;
        for (int64_t i = first; i < std::min(n, first + o.block_size); ++i) order.push_back(i);
      }
      shuffle(order, rng, group_begin, order.size());
    }
  }
  if (o.world_size == 1) return order;

  const int64_t per_rank = shard_size(n, o);
  const int64_t total = per_rank * o.world_size;
  if (total > n) {  // pad by wrapping around, as DistributedSampler does
    const size_t original = order.size();
    for (int64_t k = 0; static_cast<int64_t>(order.size()) < total; ++k) {
      order.push_back(order[static_cast<size_t>(k) % original]);
    }
  }
  std::vector<int64_t> shard;
  shard.reserve(static_cast<size_t>(per_rank));
  for (int64_t k = o.rank; k < total; k += o.world_size) shard.push_back(order[static_cast<size_t>(k)]);
  return shard;
}

}  // namespace loaderbench
