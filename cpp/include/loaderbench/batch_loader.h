// Threaded batch assembly: workers gather rows of a RowSource (images, sparse matrices) into contiguous output buffers taken from a
// recycled pool, a bounded number of batches ahead of the consumer, and hand them over in order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
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

/// One epoch of batches. Worker threads start in the constructor and are stopped and joined in the destructor
/// (callers must not hold a lock the workers need — for Python, the GIL — while destroying it).
///
/// Consumers: next() and cancel() are safe to call from any number of threads at once; each batch goes to exactly
/// one caller of next(), in order of the calls that receive them. Destruction must wait until no thread is inside
/// next() (the Python binding keeps the iterator alive through a shared_ptr for the duration of each call).
class EpochIterator {
 public:
  EpochIterator(std::shared_ptr<const RowSource> rows, std::shared_ptr<BufferPool> pool, LoaderOptions options,
                int64_t epoch);
  ~EpochIterator();
  EpochIterator(const EpochIterator&) = delete;
  EpochIterator& operator=(const EpochIterator&) = delete;

  /// The next batch in order; blocks until it is ready. Returns false at the end of the epoch. A worker's
  /// exception is rethrown here, for the batch it happened in.
  bool next(Batch* out);
  /// Stops the workers; every next() — blocked now or called later — returns false. Idempotent; callable from
  /// any thread, concurrently with next().
  void cancel();
  int64_t num_batches() const { return num_batches_; }

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
  void stop_and_join();
  void start_batch(int64_t number, Pending* pending) const;
  void assemble_part(int64_t part, const Pending& pending, std::vector<uint8_t>& scratch) const;

  std::shared_ptr<const RowSource> rows_;
  std::shared_ptr<BufferPool> pool_;
  LoaderOptions options_;
  int64_t epoch_;
  std::vector<int64_t> order_;
  int64_t num_batches_ = 0;
  int64_t parts_ = 1;  // parts per batch
  std::vector<int64_t> sample_shape_;
  int64_t sample_bytes_ = 0;

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

}  // namespace loaderbench
