#include "loaderbench/batch_loader.h"

#include <algorithm>
#include <stdexcept>
#include <string>


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
  epoch_indices(0, o.sampler, 0);  // validates the sampler options
}

int64_t batches_per_epoch(int64_t rows, const LoaderOptions& o) {
  const int64_t n = shard_size(rows, o.sampler);
  return o.drop_last ? n / o.batch_size : (n + o.batch_size - 1) / o.batch_size;
}

EpochIterator::EpochIterator(std::shared_ptr<const RowSource> rows, std::shared_ptr<BufferPool> pool,
                             LoaderOptions options, int64_t epoch)
    : rows_(std::move(rows)), pool_(std::move(pool)), options_(std::move(options)), epoch_(epoch) {
  validate_options(options_);
  order_ = epoch_indices(rows_->size(), options_.sampler, epoch_);
  num_batches_ = batches_per_epoch(rows_->size(), options_);
  sample_shape_ = rows_->sample_shape();
  sample_bytes_ = rows_->sample_bytes();
  if (static_cast<size_t>(sample_bytes_ * options_.batch_size) > pool_->buffer_bytes()) {
    throw std::invalid_argument("buffer pool is smaller than one batch");
  }
  // Split each batch among the threads (at least one row per part); more threads than that would only wait.
  parts_ = std::max<int64_t>(1, std::min<int64_t>(options_.num_threads, options_.batch_size));
  const int threads = static_cast<int>(
      std::min<int64_t>(options_.num_threads, std::max<int64_t>(num_batches_ * parts_, 1)));
  threads_.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { worker(); });
}

EpochIterator::~EpochIterator() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
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
        const int64_t ahead = std::max<int64_t>(options_.prefetch, waiting_ > 0 ? 1 : 0);
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
  if (next_to_hand_ >= num_batches_) return false;
  if (ready_.count(next_to_hand_) == 0) {
    ++waiting_;
    if (options_.prefetch == 0) work_cv_.notify_all();  // the batch asked for may now be assembled
    ready_cv_.wait(lock, [&] { return ready_.count(next_to_hand_) > 0; });
    --waiting_;
  }
  auto node = ready_.extract(next_to_hand_);
  ++next_to_hand_;
  lock.unlock();
  work_cv_.notify_all();
  if (node.mapped().error) std::rethrow_exception(node.mapped().error);
  *out = std::move(node.mapped().batch);
  return true;
}

}  // namespace loaderbench
