// Streaming epochs for datasets larger than memory: an I/O stage reads the epoch's blocks (a format's reader, a
// block at a time) a bounded number of bytes ahead, the batch workers gather rows out of them, and each block is
// released as soon as its last sample is written. Memory is the blocks in flight plus the batch buffers.
//
// The sampler is the block scheme of arrayloader-benchmarks / annbatch: chunks of `chunk_size` contiguous rows,
// `chunks_per_block` chunks read together and shuffled together, the chunk order shuffled.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "loaderbench/batch_loader.h"
#include "loaderbench/row_source.h"

namespace loaderbench {

/// One block read by the I/O stage: local row i of `rows` is dataset row `requested[i]`.
struct LoadedBlock {
  std::shared_ptr<const RowSource> rows;
  int64_t bytes = 0;  // memory it holds (what the budget counts)
};

/// Where a streaming loader's blocks come from (a format's reader; in Python, the bindings implement it).
class BlockSource {
 public:
  virtual ~BlockSource() = default;
  virtual int64_t size() const = 0;                      // dataset rows
  virtual std::vector<int64_t> sample_shape() const = 0;  // every block's rows must have it
  virtual OutputType element_type() const = 0;
  /// Reads `rows` (ascending, unique dataset rows); may be called from several I/O threads at once; may throw
  /// (the error reaches the consumer in the batch that needed the block).
  virtual LoadedBlock read(const std::vector<int64_t>& rows) = 0;
};

struct StreamingOptions {
  /// batch_size, drop_last, batch_offset/stride, sampler.seed/rank/world_size/drop_last, num_threads, prefetch
  /// (sampler.kind and the block shuffle's fields are ignored: see shuffle and the chunk fields).
  LoaderOptions loader;
  bool shuffle = false;
  int64_t chunk_size = 1024;            // contiguous rows per chunk
  // Chunks of their own sizes instead (non-empty: chunk c is rows [chunk_starts[c], chunk_starts[c + 1]), the last
  // up to the dataset's end; chunk_size is then ignored): a format's read units, which need not be even, so that
  // every chunk is exactly one unit read and no read unit is read for two blocks. Starts at 0, strictly ascending,
  // each below the dataset's size (checked where the size is known).
  std::vector<int64_t> chunk_starts;
  int64_t chunks_per_block = 1;         // chunks read together and shuffled together
  int64_t memory_budget = 256 << 20;    // bytes of blocks in flight (at least one block is always allowed)
  int io_threads = 1;                   // 1..kMaxIoThreads
  // Blocks read and not yet released, at most (0: io_threads + 2 — the block being written, the next one a batch
  // may reach into, and one read ahead per I/O thread). The budget caps bytes; this caps how far reads run ahead,
  // so a long epoch holds no more than a short one.
  int64_t max_blocks_in_flight = 0;
  // The largest block an earlier epoch over the same source read (<= 0: unknown). Without a size, the first read
  // runs alone (the budget cannot be checked); with it, an epoch's first reads run in parallel within the budget
  // from the start, as later ones do. The largest size seen this epoch still counts once it is larger.
  int64_t block_bytes_hint = 0;
};

constexpr int kMaxIoThreads = 256;

/// One epoch of one rank (and batch share): the rows it visits in order, and the blocks that order is read in.
/// A block is a maximal run of consecutive positions whose rows come from one block of the global order (rows a
/// rank repeats to pad its shard form blocks of their own), so each block is one read.
struct BlockPlan {
  std::vector<int64_t> order;         // dataset row of each position
  std::vector<int64_t> block_bounds;  // block b holds positions [block_bounds[b], block_bounds[b + 1])
  int64_t num_blocks() const { return block_bounds.empty() ? 0 : static_cast<int64_t>(block_bounds.size()) - 1; }
};

/// Throws std::invalid_argument if the options cannot describe an epoch.
void validate_streaming_options(const StreamingOptions& options);

/// The plan of one epoch for this rank: a pure function of options, n and epoch (not of any thread count), so every
/// rank of a job and every run agrees. Validates options.
///
/// Global order: the n rows cut into chunks of chunk_size (or at chunk_starts); shuffled, the chunk order is permuted, each group of
/// chunks_per_block consecutive chunks is a block and the rows within each block are permuted; unshuffled, it is
/// 0..n-1 in blocks of chunks_per_block chunks. Ranks, as torch's DistributedSampler counts them: the order padded by
/// wrapping around to ceil(n / world) * world rows (or cut to floor(n / world) * world with sampler.drop_last), but
/// rank r takes the contiguous segment [r * per_rank, (r + 1) * per_rank), so it reads about 1/world of the blocks.
/// Then loader.drop_last and the batch_offset/batch_stride share apply as for EpochIterator.
BlockPlan streaming_plan(int64_t n, const StreamingOptions& options, int64_t epoch);

/// Batches per epoch for this rank and share (the same count as batches_per_epoch); validates options.
int64_t streaming_batches_per_epoch(int64_t n, const StreamingOptions& options);

/// One streaming epoch. I/O threads (io_threads) read the plan's blocks in order while the bytes held stay within
/// memory_budget; worker threads (num_threads) assemble batches as EpochIterator does, each row from its block, and
/// a block is released (its RowSource dropped) as soon as its last position is written.
///
/// Budget: a block is claimed only if nothing is in flight, or if the bytes of the loaded blocks plus the reads in
/// progress and this one, each counted at the largest block seen so far, fit memory_budget (reads go one at a time
/// until the first has finished). The bound is exact while no block is larger than every block read before it.
/// All threads start in the constructor and are stopped and joined in the destructor (callers must not hold a lock
/// a read needs — for Python, the GIL — while destroying it; a read in progress is waited for).
///
/// A read that throws (or returns a block of the wrong size, sample shape or type) fails its block: every batch
/// with a row of that block throws a std::runtime_error with the read's message from next() (each its own
/// exception object), and the other batches come as usual.
class StreamingEpochIterator final : public BatchStream {
 public:
  StreamingEpochIterator(std::shared_ptr<BlockSource> source, std::shared_ptr<BufferPool> pool,
                         StreamingOptions options, int64_t epoch);
  ~StreamingEpochIterator() override;  // cancels and joins all threads
  StreamingEpochIterator(const StreamingEpochIterator&) = delete;
  StreamingEpochIterator& operator=(const StreamingEpochIterator&) = delete;

  /// Same contract as EpochIterator::next: in order, errors rethrown for the batch they happened in, false at end.
  bool next(Batch* out) override { return assembler_.next(out); }
  /// Same contract as EpochIterator::cancel; also wakes workers waiting for blocks and I/O threads waiting for
  /// budget (a read already in progress finishes in the background).
  void cancel() override;
  int64_t num_batches() const override { return assembler_.num_batches(); }

  // For tests and the benchmark.
  int64_t peak_block_bytes() const;       // peak bytes of loaded blocks held at once
  int64_t blocks_read() const;            // blocks read successfully so far
  int64_t peak_blocks_in_flight() const;  // peak blocks claimed by the I/O stage and not yet released
  int64_t largest_block_bytes() const;    // the largest block read so far (0: none), for the next epoch's hint
  int64_t num_blocks() const { return static_cast<int64_t>(block_bounds_.size()) - 1; }

 private:
  // A block between its claim by an I/O thread and the write of its last position.
  struct InFlight {
    bool done = false;                      // read finished: `rows` or `error` is set
    std::vector<int64_t> read_set;          // its dataset rows, ascending and unique (what was read)
    std::shared_ptr<const RowSource> rows;  // local row i is read_set[i]
    std::optional<std::string> error;       // what the read threw (a message: see write_rows)
    int64_t bytes = 0;
    int64_t positions_left = 0;  // positions not yet written (or skipped): at 0 the block is released
  };

  StreamingEpochIterator(std::shared_ptr<BlockSource> source, std::shared_ptr<BufferPool> pool,
                         StreamingOptions options, int64_t epoch, BlockPlan plan);
  void io_loop();
  bool may_claim_block() const;  // mutex_ held
  LoadedBlock checked_read(const std::vector<int64_t>& read_set) const;
  void write_rows(int64_t begin, int64_t end, uint8_t* out, std::vector<uint8_t>& scratch);
  void finish_positions(int64_t block, int64_t count);
  void stop_all();

  std::shared_ptr<BlockSource> source_;
  StreamingOptions options_;
  int64_t epoch_;
  std::vector<int64_t> block_bounds_;
  std::vector<int64_t> sample_shape_;
  OutputType element_type_;
  int64_t sample_bytes_;

  mutable std::mutex mutex_;
  std::condition_variable loaded_cv_;  // workers wait here for their block
  std::condition_variable budget_cv_;  // I/O threads wait here for room in the budget
  bool stop_ = false;
  int64_t next_block_ = 0;              // the next block an I/O thread claims
  std::map<int64_t, InFlight> in_flight_;  // node-based: a worker's reference stays valid while others insert
  int64_t reading_ = 0;                 // blocks claimed whose read has not finished
  uint128_t held_bytes_ = 0;            // bytes of loaded blocks not yet released (a sum that cannot overflow)
  int64_t largest_block_bytes_ = -1;    // largest block read so far, or the hint (-1: neither yet)
  int64_t largest_read_ = 0;            // largest block read this epoch (what the next epoch's hint is)
  int64_t peak_block_bytes_ = 0;
  int64_t blocks_read_ = 0;
  int64_t peak_blocks_in_flight_ = 0;
  std::vector<std::thread> io_threads_;

  BatchAssembler assembler_;  // last: its workers use the members above
};

}  // namespace loaderbench
