#include "loaderbench/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <stdexcept>

namespace loaderbench {
namespace {

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

TEST(Sampler, SequentialIsTheIdentity) { EXPECT_EQ(epoch_indices(7, SamplerOptions{}, 3), iota(7)); }

TEST(Sampler, RandomIsAPermutationFixedBySeedAndEpoch) {
  SamplerOptions o;
  o.kind = SamplerKind::kRandom;
  o.seed = 11;
  const auto a = epoch_indices(1000, o, 0);
  EXPECT_EQ(sorted(a), iota(1000));
  EXPECT_NE(a, iota(1000));
  EXPECT_EQ(a, epoch_indices(1000, o, 0));
  EXPECT_NE(a, epoch_indices(1000, o, 1));
  o.seed = 12;
  EXPECT_NE(a, epoch_indices(1000, o, 0));
}

TEST(Sampler, BlockShuffleKeepsBlocksWithinBuffers) {
  SamplerOptions o;
  o.kind = SamplerKind::kBlockShuffle;
  o.block_size = 10;
  o.buffer_blocks = 2;
  o.seed = 5;
  EXPECT_EQ(sorted(epoch_indices(95, o, 0)), iota(95));  // the last block short
  const auto order = epoch_indices(100, o, 0);
  EXPECT_NE(order, iota(100));
  // Each run of (buffer_blocks * block_size) outputs draws from exactly two whole blocks.
  for (size_t start = 0; start < 100; start += 20) {
    std::set<int64_t> blocks;
    for (size_t k = start; k < start + 20; ++k) blocks.insert(order[k] / 10);
    EXPECT_EQ(blocks.size(), 2u);
  }
}

TEST(Sampler, ShardsFollowDistributedSampler) {
  for (bool drop_last : {false, true}) {
    for (int64_t world : {1, 2, 3, 4}) {
      for (int64_t n : {0, 1, 2, 7, 10, 101}) {
        SamplerOptions o;
        o.kind = SamplerKind::kRandom;
        o.seed = 3;
        o.world_size = world;
        o.drop_last = drop_last;
        std::vector<int64_t> all;
        for (int64_t r = 0; r < world; ++r) {
          o.rank = r;
          const auto shard = epoch_indices(n, o, 2);
          EXPECT_EQ(static_cast<int64_t>(shard.size()), shard_size(n, o));
          all.insert(all.end(), shard.begin(), shard.end());
        }
        const std::set<int64_t> unique(all.begin(), all.end());
        if (drop_last) {
          EXPECT_EQ(unique.size(), all.size()) << "no index twice when dropping";
          EXPECT_EQ(static_cast<int64_t>(all.size()), n / world * world);
        } else {
          EXPECT_EQ(static_cast<int64_t>(unique.size()), n) << "every index covered";
          EXPECT_EQ(static_cast<int64_t>(all.size()), (n + world - 1) / world * world);
        }
      }
    }
  }
}

TEST(Sampler, RejectsBadOptions) {
  SamplerOptions o;
  o.world_size = 2;
  o.rank = 2;
  EXPECT_THROW(epoch_indices(4, o, 0), std::invalid_argument);
  o.rank = 0;
  o.world_size = 0;
  EXPECT_THROW(epoch_indices(4, o, 0), std::invalid_argument);
  SamplerOptions b;
  b.kind = SamplerKind::kBlockShuffle;
  b.block_size = 0;
  EXPECT_THROW(epoch_indices(4, b, 0), std::invalid_argument);
}

TEST(SplitMix64, BelowStaysInRange) {
  SplitMix64 rng(1);
  for (uint64_t bound : {1ull, 2ull, 3ull, 1000ull}) {
    for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.below(bound), bound);
  }
}

}  // namespace
}  // namespace loaderbench
