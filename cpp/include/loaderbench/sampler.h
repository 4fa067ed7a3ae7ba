// Index orders for one epoch: sequential, random permutation, block shuffle, then sharding across ranks
// with torch DistributedSampler semantics. Pure functions of (options, epoch): the same seed gives the same
// order on every machine, whatever the number of threads that later consume it.
#pragma once

#include <cstdint>
#include <vector>

namespace loaderbench {

__extension__ typedef unsigned __int128 uint128_t;  // GCC/Clang extension; used for multiply-shift only

enum class SamplerKind { kSequential, kRandom, kBlockShuffle };

struct SamplerOptions {
  SamplerKind kind = SamplerKind::kSequential;
  uint64_t seed = 0;
  int64_t block_size = 1;     // block shuffle: rows per contiguous block
  int64_t buffer_blocks = 1;  // block shuffle: blocks whose rows are shuffled together
  int64_t rank = 0;
  int64_t world_size = 1;
  bool drop_last = false;     // sharding: drop the tail (true) or pad by wrapping around (false), as torch does
};

/// A small, fast, portable PRNG (splitmix64), so orders do not depend on the standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, bound) by multiply-shift (bias below 2^-40 for the sizes used here).
  uint64_t below(uint64_t bound) { return static_cast<uint64_t>((static_cast<uint128_t>(next()) * bound) >> 64); }

 private:
  uint64_t state_;
};

/// Mixes seed, epoch and a stream id into one PRNG seed.
uint64_t mix_seed(uint64_t seed, uint64_t epoch, uint64_t stream);

/// Number of indices one rank gets per epoch.
int64_t shard_size(int64_t n, const SamplerOptions& options);

/// The indices this rank visits in `epoch`; validates options (throws std::invalid_argument).
std::vector<int64_t> epoch_indices(int64_t n, const SamplerOptions& options, int64_t epoch);

}  // namespace loaderbench
