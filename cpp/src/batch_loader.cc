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

std::vector<std::pair<int64_t, int64_t>> kept_positions(int64_t rows, const LoaderOptions& o) {
  const int64_t b = o.batch_size, total = rank_batches(rows, o);
  // drop_last: total * b <= the shard; otherwise only the last batch may be partial.
  const int64_t used = o.drop_last ? total * b : shard_size(rows, o.sampler);
  std::vector<std::pair<int64_t, int64_t>> kept;
  for (int64_t number = o.batch_offset; number < total; number += o.batch_stride) {
    const int64_t begin = number * b, end = begin + std::min(b, used - begin);  // begin < used: no overflow
    if (!kept.empty() && kept.back().second == begin) {
      kept.back().second = end;
    } else {
      kept.emplace_back(begin, end);
    }
    if (o.batch_stride > total - number) break;  // the next number would pass the end (or overflow)
  }
  return kept;
}

void start_threads(std::vector<std::thread>& threads, int count, const std::function<void()>& body, const char* role,
                   const char* option) {
  threads.reserve(threads.size() + static_cast<size_t>(std::max(count, 0)));
  for (int t = 0; t < count; ++t) {
    try {
      threads.emplace_back(body);
    } catch (const std::system_error& e) {
      throw std::runtime_error(std::string("could not start ") + role + " thread " + std::to_string(t + 1) + " of " +
                               std::to_string(count) + " (" + e.what() + "); use fewer " + option);
    }
  }
}

namespace {

/// This rank's order, cut to this batch_offset/batch_stride share (validates the options).
std::vector<int64_t> share_order(int64_t rows, const LoaderOptions& options, int64_t epoch) {
  validate_options(options);
  std::vector<int64_t> order = epoch_indices(rows, options.sampler, epoch);
  const std::vector<std::pair<int64_t, int64_t>> kept = kept_positions(rows, options);
  if (kept.size() == 1 && kept[0].first == 0) {  // the whole rank (less drop_last's partial batch): no copy
    order.resize(static_cast<size_t>(kept[0].second));
    return order;
  }
  std::vector<int64_t> share;
  for (const auto& [begin, end] : kept) share.insert(share.end(), order.begin() + begin, order.begin() + end);
  return share;
}

}  // namespace

EpochIterator::EpochIterator(std::shared_ptr<const RowSource> rows, std::shared_ptr<BufferPool> pool,
                             LoaderOptions options, int64_t epoch)
    : rows_(std::move(rows)),
      epoch_(epoch),
      assembler_(std::move(pool), options, share_order(rows_->size(), options, epoch), rows_->sample_shape(),
                 rows_->max_sample_bytes()) {
  if (const std::string why = rows_->shape_mismatch(); !why.empty()) {
    if (options.batch_size != 1) throw std::invalid_argument(why + " (batches of one sample may differ in shape)");
    assembler_.set_row_shape([rows = rows_.get()](int64_t row) { return rows->row_shape(row); });
  }
  const int64_t sample_bytes = rows_->max_sample_bytes();
  assembler_.start([this, sample_bytes](int64_t begin, int64_t end, uint8_t* out, std::vector<uint8_t>& scratch) {
    if (out == nullptr) return;  // the batch has no buffer (and carries that error)
    const std::vector<int64_t>& order = assembler_.order();
    for (int64_t p = begin; p < end; ++p, out += sample_bytes) {
      rows_->write_row(order[static_cast<size_t>(p)], epoch_, out, scratch);
    }
  });
}

EpochIterator::~EpochIterator() { assembler_.stop_and_join(); }

BatchAssembler::BatchAssembler(std::shared_ptr<BufferPool> pool, const LoaderOptions& options,
                               std::vector<int64_t> order, std::vector<int64_t> sample_shape, int64_t sample_bytes)
    : pool_(std::move(pool)),
      options_(options),
      order_(std::move(order)),
      sample_shape_(std::move(sample_shape)),
      sample_bytes_(sample_bytes) {
  validate_options(options_);
  const auto rows = static_cast<int64_t>(order_.size());
  num_batches_ = rows / options_.batch_size + (rows % options_.batch_size != 0);
  int64_t batch_bytes = 0;
  if (__builtin_mul_overflow(sample_bytes_, std::min(options_.batch_size, rows), &batch_bytes) ||
      static_cast<uint64_t>(batch_bytes) > pool_->buffer_bytes()) {
    throw std::invalid_argument("buffer pool is smaller than one batch");
  }
  // Split each batch among the threads (at least one row per part); more threads than that would only wait.
  parts_ = std::max<int64_t>(1, std::min<int64_t>(options_.num_threads, options_.batch_size));
}

BatchAssembler::~BatchAssembler() { stop_and_join(); }

void BatchAssembler::start(WriteRows write_rows) {
  write_rows_ = std::move(write_rows);
  const int threads = static_cast<int>(
      std::min<int64_t>(options_.num_threads, std::max<int64_t>(num_batches_ * parts_, 1)));
  try {
    start_threads(threads_, threads, [this] { worker(); }, "worker", "num_threads");
  } catch (...) {
    // Stop and join the threads already started before the owner unwinds: they use its members, and a joinable
    // std::thread's destructor would call std::terminate.
    stop_and_join();
    throw;
  }
}

void BatchAssembler::cancel() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
}

void BatchAssembler::stop_and_join() {
  cancel();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void BatchAssembler::start_batch(int64_t number, Pending* pending) const {
  Batch& batch = pending->slot.batch;
  const int64_t begin = number * options_.batch_size;
  const int64_t end = begin + std::min<int64_t>(options_.batch_size, static_cast<int64_t>(order_.size()) - begin);
  batch.number = number;
  batch.indices.assign(order_.begin() + begin, order_.begin() + end);
  batch.shape.assign(1, end - begin);
  if (row_shape_ && end - begin == 1) {
    const std::vector<int64_t> shape = row_shape_(order_[static_cast<size_t>(begin)]);
    batch.shape.insert(batch.shape.end(), shape.begin(), shape.end());
  } else {
    batch.shape.insert(batch.shape.end(), sample_shape_.begin(), sample_shape_.end());
  }
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

void BatchAssembler::assemble_part(int64_t part, const Pending& pending, std::vector<uint8_t>& scratch) const {
  const Batch& batch = pending.slot.batch;
  const auto rows = static_cast<int64_t>(batch.indices.size());
  const int64_t per_part = (rows + parts_ - 1) / parts_;
  const int64_t begin = std::min(rows, part * per_part), end = std::min(rows, begin + per_part);
  if (begin == end) return;
  const int64_t first = batch.number * options_.batch_size;  // the batch's first position in the order
  // No buffer: it could not be allocated and the batch carries that error; the part is still passed on (with no
  // output) so that a streaming source can count its positions as done.
  uint8_t* out = batch.buffer ? batch.buffer->bytes.get() + begin * sample_bytes_ : nullptr;
  write_rows_(first + begin, first + end, out, scratch);
}

void BatchAssembler::worker() {
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
      if (error && !pending->slot.error) pending->slot.error = std::move(error);
      // Dropped here, not after unlocking: once the batch is handed over the consumer may be the exception's last
      // owner, and libstdc++'s reference counts on it are invisible to ThreadSanitizer.
      error = nullptr;
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

bool BatchAssembler::next(Batch* out) {
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
