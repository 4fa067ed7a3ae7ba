#include "loaderbench/batch_loader.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <system_error>

namespace loaderbench {

void BufferPool::Return::operator()(Buffer* buffer) const {
  if (auto owner = pool.lock()) {
    owner->give_back(buffer);
  } else {
    delete buffer;
  }
}

std::shared_ptr<BufferPool> BufferPool::create(size_t buffer_bytes, size_t max_free) {
  return std::shared_ptr<BufferPool>(new BufferPool(buffer_bytes, max_free));
}

BufferPool::Handle BufferPool::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      Buffer* buffer = free_.back().release();
      free_.pop_back();
      return Handle(buffer, Return{weak_from_this()});
    }
    ++allocations_;
  }
  auto* buffer = new Buffer{std::unique_ptr<uint8_t[]>(new uint8_t[buffer_bytes_]), buffer_bytes_};
  return Handle(buffer, Return{weak_from_this()});
}

void BufferPool::give_back(Buffer* buffer) {
  std::unique_ptr<Buffer> owned(buffer);
  std::lock_guard lock(mutex_);
  if (free_.size() < max_free_) free_.push_back(std::move(owned));
}

size_t BufferPool::allocations() const {
  std::lock_guard lock(mutex_);
  return allocations_;
}

void validate_options(const LoaderOptions& o) {
  if (o.batch_size < 1) throw std::invalid_argument("batch_size must be >= 1");
  if (o.num_threads < 1) throw std::invalid_argument("num_threads must be >= 1");
  if (o.prefetch < 0) throw std::invalid_argument("prefetch must be >= 0");
  if (o.batch_stride < 1 || o.batch_offset < 0 || o.batch_offset >= o.batch_stride) {
    throw std::invalid_argument("batch_offset must lie in [0, batch_stride) and batch_stride must be >= 1");
  }
  epoch_indices(0, o.sampler, 0);  // validates the sampler options
}

namespace {

/// Batches of the whole rank's epoch, before the batch_offset/batch_stride split.
int64_t rank_batches(int64_t rows, const LoaderOptions& o) {
  const int64_t n = shard_size(rows, o.sampler);
  return o.drop_last ? n / o.batch_size : n / o.batch_size + (n % o.batch_size != 0);
}

}  // namespace

int64_t batches_per_epoch(int64_t rows, const LoaderOptions& o) {
  const int64_t total = rank_batches(rows, o);
  return total > o.batch_offset ? (total - o.batch_offset - 1) / o.batch_stride + 1 : 0;
}

int64_t max_batch_rows(int64_t rows, const LoaderOptions& o) {
  return batches_per_epoch(rows, o) == 0 ? 0 : std::min(o.batch_size, shard_size(rows, o.sampler));
}

EpochIterator::EpochIterator(std::shared_ptr<const RowSource> rows, std::shared_ptr<BufferPool> pool,
                             LoaderOptions options, int64_t epoch)
    : rows_(std::move(rows)), pool_(std::move(pool)), options_(std::move(options)), epoch_(epoch) {
  validate_options(options_);
  order_ = epoch_indices(rows_->size(), options_.sampler, epoch_);
  num_batches_ = batches_per_epoch(rows_->size(), options_);
  if (options_.batch_stride > 1) {
    // Keep this share's batches only, back to back: only the rank's last batch can be partial, and if it is
    // kept it is also the last one here, so batch k of the share is rows [k * B, (k + 1) * B) of the new order.
    const int64_t b = options_.batch_size, total = rank_batches(rows_->size(), options_);
    const int64_t used = std::min<int64_t>(static_cast<int64_t>(order_.size()), total * b);
    std::vector<int64_t> share;
    share.reserve(static_cast<size_t>(std::min(used, num_batches_ * b)));
    for (int64_t number = options_.batch_offset; number < total; number += options_.batch_stride) {
      const int64_t begin = number * b, end = std::min(used, begin + b);
      share.insert(share.end(), order_.begin() + begin, order_.begin() + end);
    }
    order_ = std::move(share);
  }
  sample_shape_ = rows_->sample_shape();
  sample_bytes_ = rows_->sample_bytes();
  int64_t batch_bytes = 0;
  if (__builtin_mul_overflow(sample_bytes_, max_batch_rows(rows_->size(), options_), &batch_bytes) ||
      static_cast<uint64_t>(batch_bytes) > pool_->buffer_bytes()) {
    throw std::invalid_argument("buffer pool is smaller than one batch");
  }
  // Split each batch among the threads (at least one row per part); more threads than that would only wait.
  parts_ = std::max<int64_t>(1, std::min<int64_t>(options_.num_threads, options_.batch_size));
  const int threads = static_cast<int>(
      std::min<int64_t>(options_.num_threads, std::max<int64_t>(num_batches_ * parts_, 1)));
  threads_.reserve(static_cast<size_t>(threads));
  try {
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { worker(); });
  } catch (const std::system_error& e) {
    // The destructor does not run for a half-built object: stop and join the threads already started here, or
    // their std::thread destructors would call std::terminate.
    const size_t started = threads_.size();
    stop_and_join();
    throw std::runtime_error("could not start worker thread " + std::to_string(started + 1) + " of " +
                             std::to_string(threads) + " (" + e.what() + "); use fewer num_threads");
  }
}

EpochIterator::~EpochIterator() { stop_and_join(); }

void EpochIterator::cancel() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
}

void EpochIterator::stop_and_join() {
  cancel();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void EpochIterator::start_batch(int64_t number, Pending* pending) const {
  Batch& batch = pending->slot.batch;
  const int64_t begin = number * options_.batch_size;
  const int64_t end = std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order_.size()));
  batch.number = number;
  batch.indices.assign(order_.begin() + begin, order_.begin() + end);
  batch.shape.assign(1, end - begin);
  batch.shape.insert(batch.shape.end(), sample_shape_.begin(), sample_shape_.end());
  pending->parts_left = parts_;
  try {
    batch.buffer = pool_->acquire();
  } catch (const std::bad_alloc&) {
    pending->slot.error = std::make_exception_ptr(std::runtime_error(
        "out of memory allocating a batch buffer of " + std::to_string(pool_->buffer_bytes()) +
        " bytes; lower batch_size or prefetch"));
  } catch (...) {
    pending->slot.error = std::current_exception();
  }
}

void EpochIterator::assemble_part(int64_t part, const Pending& pending, std::vector<uint8_t>& scratch) const {
  const Batch& batch = pending.slot.batch;
  if (!batch.buffer) return;  // the buffer could not be allocated: the batch carries that error
  const auto rows = static_cast<int64_t>(batch.indices.size());
  const int64_t per_part = (rows + parts_ - 1) / parts_;
  const int64_t begin = std::min(rows, part * per_part), end = std::min(rows, begin + per_part);
  uint8_t* out = batch.buffer->bytes.get() + begin * sample_bytes_;
  for (int64_t i = begin; i < end; ++i, out += sample_bytes_) {
    rows_->write_row(batch.indices[static_cast<size_t>(i)], epoch_, out, scratch);
  }
}

void EpochIterator::worker() {
  std::vector<uint8_t> scratch;
  const int64_t total_parts = num_batches_ * parts_;
  while (true) {
    int64_t number, part;
    Pending* pending;
    {
      std::unique_lock lock(mutex_);
      work_cv_.wait(lock, [&] {
        const int64_t ahead = std::max<int64_t>(options_.prefetch, waiting_);  // prefetch 0: what consumers wait for
        return stop_ || next_to_claim_ >= total_parts || next_to_claim_ / parts_ < next_to_hand_ + ahead;
      });
      if (stop_ || next_to_claim_ >= total_parts) return;
      number = next_to_claim_ / parts_;
      part = next_to_claim_ % parts_;
      ++next_to_claim_;
      pending = &pending_[number];
      if (part == 0) start_batch(number, pending);  // parts are claimed in order: part 0 comes first
    }
    std::exception_ptr error;
    try {
      assemble_part(part, *pending, scratch);
    } catch (...) {
      error = std::current_exception();
    }
    bool done = false;
    {
      std::lock_guard lock(mutex_);
      if (error && !pending->slot.error) pending->slot.error = error;
      if (--pending->parts_left == 0) {
        Slot slot = std::move(pending->slot);
        pending_.erase(number);
        if (slot.error) slot.batch.buffer.reset();
        ready_.emplace(number, std::move(slot));
        done = true;
      }
    }
    if (done) ready_cv_.notify_all();
  }
}

bool EpochIterator::next(Batch* out) {
  std::unique_lock lock(mutex_);
  // Re-checked after every wake-up: with several consumers, another one may take the last batch or cancel.
  auto finished = [&] { return stop_ || next_to_hand_ >= num_batches_; };
  if (!finished() && ready_.count(next_to_hand_) == 0) {
    ++waiting_;
    if (options_.prefetch == 0) work_cv_.notify_all();  // the batch asked for may now be assembled
    ready_cv_.wait(lock, [&] { return finished() || ready_.count(next_to_hand_) > 0; });
    --waiting_;
  }
  if (finished()) return false;
  auto node = ready_.extract(next_to_hand_);
  ++next_to_hand_;
  const bool last = next_to_hand_ >= num_batches_;
  lock.unlock();
  work_cv_.notify_all();
  if (last) ready_cv_.notify_all();  // consumers waiting for a batch past the end return false
  if (node.mapped().error) std::rethrow_exception(node.mapped().error);
  *out = std::move(node.mapped().batch);
  return true;
}

}  // namespace loaderbench
