// Threaded batch assembly: workers gather rows of a RowSource (images, sparse matrices) into contiguous output buffers taken from a
// recycled pool, a bounded number of batches ahead of the consumer, and hand them over in order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "loaderbench/row_source.h"
#include "loaderbench/sampler.h"

namespace loaderbench {

/// Output buffers of one size, recycled: a buffer released by its last user goes back to the free list (if the
/// pool still exists) instead of to the allocator, so steady-state batches allocate nothing.
class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  struct Buffer {
    std::unique_ptr<uint8_t[]> bytes;
    size_t size = 0;
  };
  struct Return {
    std::weak_ptr<BufferPool> pool;
    void operator()(Buffer* buffer) const;
  };
  using Handle = std::unique_ptr<Buffer, Return>;

  static std::shared_ptr<BufferPool> create(size_t buffer_bytes, size_t max_free);
  Handle acquire();
  size_t buffer_bytes() const { return buffer_bytes_; }
  size_t allocations() const;  // buffers ever allocated (for tests: recycling works)

 private:
  BufferPool(size_t buffer_bytes, size_t max_free) : buffer_bytes_(buffer_bytes), max_free_(max_free) {}
  void give_back(Buffer* buffer);

  size_t buffer_bytes_;
  size_t max_free_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Buffer>> free_;
  size_t allocations_ = 0;
};

struct LoaderOptions {
  int64_t batch_size = 1;
  bool drop_last = false;  // drop this rank's partial last batch (sharding's tail is SamplerOptions::drop_last)
  // Of this rank's batches keep only those with number % batch_stride == batch_offset: how DataLoader workers
  // split one epoch among themselves (the DataLoader interleaves them back into the same order).
  int64_t batch_offset = 0;
  int64_t batch_stride = 1;
  SamplerOptions sampler;
  int num_threads = 1;
  // Batches assembled ahead of the consumer. 0: none — a batch is assembled (by all threads) only once next() asks
  // for it, so a consumer that drops each batch before asking for the next needs a single buffer.
  int prefetch = 2;
};

/// Rows in the largest batch of an epoch over `rows` rows (what a pool buffer must hold; 0 for an empty shard).
int64_t max_batch_rows(int64_t rows, const LoaderOptions& options);

/// One assembled batch in a pool buffer: shape (B, *sample_shape), e.g. (B, C, H, W) for images.
struct Batch {
  BufferPool::Handle buffer;
  std::vector<int64_t> shape;
  std::vector<int64_t> indices;  // dataset rows, in order
  int64_t number = 0;
};

void validate_options(const LoaderOptions& options);
/// Batches per epoch for this rank (and this batch_offset/batch_stride share of it) over `rows` rows.
int64_t batches_per_epoch(int64_t rows, const LoaderOptions& options);

/// Position ranges [begin, end) of a rank's order (of shard_size(rows) positions) that this batch_offset /
/// batch_stride share keeps, in order, adjacent ranges merged; drop_last's partial batch is left out. Batch k of the
/// share is positions [k * batch_size, (k + 1) * batch_size) of their concatenation.
std::vector<std::pair<int64_t, int64_t>> kept_positions(int64_t rows, const LoaderOptions& options);

/// Starts `count` threads running `body`, appended to `threads`. If the system refuses one, throws a
/// std::runtime_error saying which `role` thread failed and to lower `option`; the threads already started stay in
/// `threads`, for the caller to stop and join.
void start_threads(std::vector<std::thread>& threads, int count, const std::function<void()>& body, const char* role,
                   const char* option);

/// What an epoch's consumer sees, whatever assembles its batches (the bindings hold either iterator through it).
///
/// Consumers: next() and cancel() are safe to call from any number of threads at once; each batch goes to exactly
/// one caller of next(), in order of the calls that receive them. Destruction must wait until no thread is inside
/// next() (the Python binding keeps the iterator alive through a shared_ptr for the duration of each call).
class BatchStream {
 public:
  virtual ~BatchStream() = default;
  /// The next batch in order; blocks until it is ready. Returns false at the end of the epoch. A worker's
  /// exception is rethrown here, for the batch it happened in.
  virtual bool next(Batch* out) = 0;
  /// Stops the workers; every next() — blocked now or called later — returns false. Idempotent; callable from
  /// any thread, concurrently with next().
  virtual void cancel() = 0;
  virtual int64_t num_batches() const = 0;
};

/// The batch stage both epoch iterators share: `num_threads` workers claim parts of the batches of `order` (a
/// bounded number of batches ahead of the consumer), fill them into pool buffers through a WriteRows callback,
/// and next() hands the batches over in order, with BatchStream's contract.
class BatchAssembler {
 public:
  /// Writes the samples of positions [begin, end) of the order, one after another, to `out`; called by several
  /// workers at once (on disjoint positions), once for every part of every batch until cancel(). What it throws
  /// goes to the batch. `out` is null when the batch has no buffer (its allocation failed; it carries that error).
  using WriteRows = std::function<void(int64_t begin, int64_t end, uint8_t* out, std::vector<uint8_t>& scratch)>;

  /// `order`: the dataset rows of this share, batch k being positions [k * batch_size, (k + 1) * batch_size).
  /// Throws std::invalid_argument if a pool buffer cannot hold the largest batch.
  BatchAssembler(std::shared_ptr<BufferPool> pool, const LoaderOptions& options, std::vector<int64_t> order,
                 std::vector<int64_t> sample_shape, int64_t sample_bytes);
  ~BatchAssembler();
  BatchAssembler(const BatchAssembler&) = delete;
  BatchAssembler& operator=(const BatchAssembler&) = delete;

  /// For rows of different shapes (batches of one row only): the shape of the sample at dataset row `row`.
  using RowShape = std::function<std::vector<int64_t>(int64_t row)>;
  void set_row_shape(RowShape row_shape) { row_shape_ = std::move(row_shape); }

  /// Starts the workers (once, after whatever `write_rows` uses is ready); throws if a thread cannot start.
  void start(WriteRows write_rows);
  bool next(Batch* out);
  void cancel();
  void stop_and_join();
  int64_t num_batches() const { return num_batches_; }
  const std::vector<int64_t>& order() const { return order_; }

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  // A batch being assembled: its rows are split into `parts_` parts that any worker may claim, so every thread
  // works on the oldest batches first and one batch in flight (prefetch=1) still uses all threads.
  struct Pending {
    Slot slot;
    int64_t parts_left = 0;
  };
  void worker();
  void start_batch(int64_t number, Pending* pending) const;
  void assemble_part(int64_t part, const Pending& pending, std::vector<uint8_t>& scratch) const;

  std::shared_ptr<BufferPool> pool_;
  LoaderOptions options_;
  std::vector<int64_t> order_;
  int64_t num_batches_ = 0;
  int64_t parts_ = 1;  // parts per batch
  std::vector<int64_t> sample_shape_;
  int64_t sample_bytes_ = 0;
  WriteRows write_rows_;
  RowShape row_shape_;

  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable ready_cv_;
  int64_t next_to_claim_ = 0;  // the next part (batch * parts_ + part) to claim
  int64_t next_to_hand_ = 0;
  int waiting_ = 0;  // consumers blocked in next(): with prefetch 0, the batch they wait for may be claimed
  bool stop_ = false;
  std::map<int64_t, Pending> pending_;  // node-based: a worker's reference stays valid while others insert
  std::map<int64_t, Slot> ready_;
  std::vector<std::thread> threads_;
};

/// One epoch of batches of a RowSource held in memory. Worker threads start in the constructor and are stopped and
/// joined in the destructor (callers must not hold a lock the workers need — for Python, the GIL — while
/// destroying it).
class EpochIterator final : public BatchStream {
 public:
  EpochIterator(std::shared_ptr<const RowSource> rows, std::shared_ptr<BufferPool> pool, LoaderOptions options,
                int64_t epoch);
  ~EpochIterator() override;
  EpochIterator(const EpochIterator&) = delete;
  EpochIterator& operator=(const EpochIterator&) = delete;

  bool next(Batch* out) override { return assembler_.next(out); }
  void cancel() override { assembler_.cancel(); }
  int64_t num_batches() const override { return assembler_.num_batches(); }

 private:
  std::shared_ptr<const RowSource> rows_;
  int64_t epoch_;
  BatchAssembler assembler_;  // last: its workers use the members above
};

}  // namespace loaderbench
