#include "loaderbench/streaming_loader.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace loaderbench {
namespace {

// mix_seed streams: the chunk order, then one per block of the global order for the order of its rows.
constexpr uint64_t kChunkOrderStream = 1;
constexpr uint64_t kFirstBlockRowsStream = 2;

void shuffle_in_place(std::vector<int64_t>& values, SplitMix64& rng) {
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[rng.below(i)]);
}

/// The whole dataset's order for one epoch, block by block, without materialising it: a rank asks only for the
/// rows of its own segment. Holds the chunk order and the blocks' first positions (one int64 per chunk and per
/// block), and the rows of one block at a time.
class GlobalOrder {
 public:
  GlobalOrder(int64_t n, const StreamingOptions& o, int64_t epoch) : n_(n), options_(o), epoch_(epoch) {
    const int64_t chunks = o.chunk_starts.empty() ? n / o.chunk_size + (n % o.chunk_size != 0)
                                                  : static_cast<int64_t>(o.chunk_starts.size());
    const int64_t blocks = chunks / o.chunks_per_block + (chunks % o.chunks_per_block != 0);
    if (o.shuffle) {
      chunk_order_.resize(static_cast<size_t>(chunks));
      std::iota(chunk_order_.begin(), chunk_order_.end(), int64_t{0});
      SplitMix64 rng(mix_seed(o.loader.sampler.seed, static_cast<uint64_t>(epoch), kChunkOrderStream));
      shuffle_in_place(chunk_order_, rng);
    }
    block_starts_.reserve(static_cast<size_t>(blocks) + 1);
    int64_t start = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      block_starts_.push_back(start);
      for (int64_t c = first_chunk(b); c < end_chunk(b, chunks); ++c) start += chunk_rows(chunk_at(c));
    }
    block_starts_.push_back(start);  // == n
  }

  /// The block of global position g (g ascending between calls is the fast path).
  int64_t block_of(int64_t g) {
    const auto& s = block_starts_;
    if (!(cursor_ >= 0 && s[static_cast<size_t>(cursor_)] <= g && g < s[static_cast<size_t>(cursor_) + 1])) {
      cursor_ = std::upper_bound(s.begin(), s.end(), g) - s.begin() - 1;
    }
    return cursor_;
  }

  /// The dataset row at global position g, which lies in block `block`.
  int64_t row_at(int64_t g, int64_t block) {
    if (!options_.shuffle) return g;
    if (block != cached_block_) {
      cached_rows_.clear();
      const auto chunks = static_cast<int64_t>(chunk_order_.size());
      for (int64_t c = first_chunk(block); c < end_chunk(block, chunks); ++c) {
        const int64_t first = chunk_first_row(chunk_at(c));
        for (int64_t row = first; row < first + chunk_rows(chunk_at(c)); ++row) cached_rows_.push_back(row);
      }
      SplitMix64 rng(mix_seed(options_.loader.sampler.seed, static_cast<uint64_t>(epoch_),
                              kFirstBlockRowsStream + static_cast<uint64_t>(block)));
      shuffle_in_place(cached_rows_, rng);
      cached_block_ = block;
    }
    return cached_rows_[static_cast<size_t>(g - block_starts_[static_cast<size_t>(block)])];
  }

 private:
  // Block b's chunks are positions [first_chunk(b), end_chunk(b)) of the chunk order; b < blocks, so
  // b * chunks_per_block < chunks and nothing overflows.
  int64_t first_chunk(int64_t b) const { return b * options_.chunks_per_block; }
  int64_t end_chunk(int64_t b, int64_t chunks) const {
    return first_chunk(b) + std::min(options_.chunks_per_block, chunks - first_chunk(b));
  }
  int64_t chunk_at(int64_t c) const { return options_.shuffle ? chunk_order_[static_cast<size_t>(c)] : c; }
  int64_t chunk_first_row(int64_t chunk) const {
    return options_.chunk_starts.empty() ? chunk * options_.chunk_size
                                         : options_.chunk_starts[static_cast<size_t>(chunk)];
  }
  int64_t chunk_rows(int64_t chunk) const {
    const auto& starts = options_.chunk_starts;
    if (starts.empty()) return std::min(options_.chunk_size, n_ - chunk * options_.chunk_size);
    const auto next = static_cast<size_t>(chunk) + 1;
    return (next < starts.size() ? starts[next] : n_) - starts[next - 1];
  }

  int64_t n_;
  const StreamingOptions& options_;
  int64_t epoch_;
  std::vector<int64_t> chunk_order_;   // shuffled only
  std::vector<int64_t> block_starts_;  // global position of each block's first row, then n
  int64_t cursor_ = -1;
  int64_t cached_block_ = -1;
  std::vector<int64_t> cached_rows_;
};

/// The loader options the batch stage sees: sampler.kind (and its block fields) are replaced by the chunk scheme.
LoaderOptions batch_options(const StreamingOptions& o) {
  LoaderOptions loader = o.loader;
  loader.sampler.kind = SamplerKind::kSequential;
  return loader;
}

int64_t checked_sample_bytes(const std::vector<int64_t>& shape, OutputType type) {
  int64_t bytes = output_size(type);
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(bytes, d, &bytes)) {
      throw std::invalid_argument("the block source's sample shape has a negative or too large dimension");
    }
  }
  return bytes;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

const char* type_name(OutputType type) {
  switch (type) {
    case OutputType::kFloat32: return "float32";
    case OutputType::kFloat16: return "float16";
    case OutputType::kUint8: return "uint8";
  }
  return "unknown";
}

}  // namespace

void validate_streaming_options(const StreamingOptions& o) {
  validate_options(batch_options(o));
  auto at_least_one = [](const char* name, int64_t value) {
    if (value < 1) throw std::invalid_argument(std::string(name) + " must be >= 1 (got " + std::to_string(value) + ")");
  };
  at_least_one("chunk_size", o.chunk_size);
  at_least_one("chunks_per_block", o.chunks_per_block);
  at_least_one("memory_budget", o.memory_budget);
  for (size_t c = 0; c < o.chunk_starts.size(); ++c) {
    if (c == 0 ? o.chunk_starts[0] != 0 : o.chunk_starts[c] <= o.chunk_starts[c - 1]) {
      throw std::invalid_argument("chunk_starts must start at 0 and be strictly ascending (chunk " +
                                  std::to_string(c) + " starts at row " + std::to_string(o.chunk_starts[c]) + ")");
    }
  }
  if (o.block_bytes_hint < 0) {
    throw std::invalid_argument("block_bytes_hint must be >= 0 (0: unknown), got " +
                                std::to_string(o.block_bytes_hint));
  }
  if (o.max_blocks_in_flight < 0) {
    throw std::invalid_argument("max_blocks_in_flight must be >= 0 (0: io_threads + 2), got " +
                                std::to_string(o.max_blocks_in_flight));
  }
  if (o.io_threads < 1 || o.io_threads > kMaxIoThreads) {
    throw std::invalid_argument("io_threads must lie in [1, " + std::to_string(kMaxIoThreads) + "] (got " +
                                std::to_string(o.io_threads) + ")");
  }
}

namespace {

/// Validates options for a dataset of n rows: chunk_starts (checked ascending by validate_streaming_options) must
/// all lie below n (a chunk would be empty or past the end), and n cannot be negative.
void validate_for_size(int64_t n, const StreamingOptions& o) {
  validate_streaming_options(o);
  if (n < 0) throw std::invalid_argument("dataset size is negative");
  if (!o.chunk_starts.empty() && o.chunk_starts.back() >= n) {
    throw std::invalid_argument("chunk_starts must lie below the dataset's " + std::to_string(n) +
                                " rows (the last chunk starts at row " + std::to_string(o.chunk_starts.back()) + ")");
  }
}

}  // namespace

int64_t streaming_batches_per_epoch(int64_t n, const StreamingOptions& options) {
  validate_for_size(n, options);
  return batches_per_epoch(n, options.loader);
}

BlockPlan streaming_plan(int64_t n, const StreamingOptions& o, int64_t epoch) {
  validate_for_size(n, o);
  const SamplerOptions& sampler = o.loader.sampler;
  const int64_t per_rank = shard_size(n, sampler);
  int64_t padded_rows;
  if (__builtin_mul_overflow(per_rank, sampler.world_size, &padded_rows)) {
    throw std::invalid_argument("the dataset's rows padded to a multiple of world_size overflow int64");
  }
  const int64_t first = sampler.rank * per_rank;  // <= padded_rows: no overflow

  BlockPlan plan;
  const std::vector<std::pair<int64_t, int64_t>> kept = kept_positions(n, o.loader);
  int64_t rows = 0;
  for (const auto& [begin, end] : kept) rows += end - begin;
  plan.order.reserve(static_cast<size_t>(rows));
  GlobalOrder global(n, o, epoch);
  // A block of the plan = a run of positions from one global block within one pass over the global order: padding
  // (a second pass, from its start) never joins the run before it, so a block never repeats a row.
  int64_t run_block = -1, run_pass = -1;
  for (const auto& [begin, end] : kept) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t padded = first + k;  // rows exist, so n > 0
      const int64_t pass = padded / n, g = padded % n;
      const int64_t block = global.block_of(g);
      if (block != run_block || pass != run_pass) {
        plan.block_bounds.push_back(static_cast<int64_t>(plan.order.size()));
        run_block = block;
        run_pass = pass;
      }
      plan.order.push_back(global.row_at(g, block));
    }
  }
  plan.block_bounds.push_back(static_cast<int64_t>(plan.order.size()));
  return plan;
}

StreamingEpochIterator::StreamingEpochIterator(std::shared_ptr<BlockSource> source, std::shared_ptr<BufferPool> pool,
                                               StreamingOptions options, int64_t epoch)
    : StreamingEpochIterator(source, std::move(pool), options, epoch,
                             streaming_plan(source ? source->size() : throw std::invalid_argument("no block source"),
                                            options, epoch)) {}

StreamingEpochIterator::StreamingEpochIterator(std::shared_ptr<BlockSource> source, std::shared_ptr<BufferPool> pool,
                                               StreamingOptions options, int64_t epoch, BlockPlan plan)
    : source_(std::move(source)),
      options_(std::move(options)),
      epoch_(epoch),
      block_bounds_(std::move(plan.block_bounds)),
      sample_shape_(source_->sample_shape()),
      element_type_(source_->element_type()),
      sample_bytes_(checked_sample_bytes(sample_shape_, element_type_)),
      assembler_(std::move(pool), batch_options(options_), std::move(plan.order), sample_shape_, sample_bytes_) {
  if (options_.block_bytes_hint > 0) largest_block_bytes_ = options_.block_bytes_hint;
  const int io_threads = static_cast<int>(std::min<int64_t>(options_.io_threads, num_blocks()));
  try {
    start_threads(io_threads_, io_threads, [this] { io_loop(); }, "I/O", "io_threads");
    assembler_.start([this](int64_t begin, int64_t end, uint8_t* out, std::vector<uint8_t>& scratch) {
      write_rows(begin, end, out, scratch);
    });
  } catch (...) {
    stop_all();  // the destructor does not run for a half-built object
    throw;
  }
}

StreamingEpochIterator::~StreamingEpochIterator() { stop_all(); }

void StreamingEpochIterator::cancel() {
  // The batch stage first: a worker that sees stop_ fails its part, and no consumer may receive that batch. Every
  // batch completed after this point is refused by next(), which checks the assembler's stop first.
  assembler_.cancel();
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  loaded_cv_.notify_all();
  budget_cv_.notify_all();
}

void StreamingEpochIterator::stop_all() {
  cancel();
  assembler_.stop_and_join();
  for (std::thread& t : io_threads_) {
    if (t.joinable()) t.join();
  }
}

int64_t StreamingEpochIterator::peak_block_bytes() const {
  std::lock_guard lock(mutex_);
  return peak_block_bytes_;
}

int64_t StreamingEpochIterator::blocks_read() const {
  std::lock_guard lock(mutex_);
  return blocks_read_;
}

int64_t StreamingEpochIterator::peak_blocks_in_flight() const {
  std::lock_guard lock(mutex_);
  return peak_blocks_in_flight_;
}

int64_t StreamingEpochIterator::largest_block_bytes() const {
  std::lock_guard lock(mutex_);
  return largest_read_;
}

// Why the pipeline cannot deadlock. Let p be the lowest position not yet written (skipped positions of failed
// blocks count as written) and B its block. Blocks are position ranges claimed in order, so every block before B
// holds only positions below p: all are written, hence released, and no block after B is claimed before B. So
// either B is claimed — its read finishes (a read returns or throws) and B is loaded or failed — or B is the next
// block to claim and nothing is in flight, and may_claim_block() admits it whatever the budget (a block larger
// than the budget included) and the sizes seen. Then the worker that writes p: a consumer waiting in next() waits
// for the oldest batch not handed over, which holds p (every earlier batch is complete), and keeps that batch in
// the claim window even with prefetch 0. Parts are claimed in position order and every part before p's is written,
// so p's part is claimed or the next worker to finish claims it; its worker writes in order, so it is at p and
// waits for B only. A part spanning many blocks (a batch larger than a block) is the same argument, one block at a
// time; failed blocks and batches without a buffer still count their positions, so they never hold B back.
// Without a waiting consumer nothing needs to progress (prefetch and the budget bound how far it runs ahead).
bool StreamingEpochIterator::may_claim_block() const {
  if (in_flight_.empty()) return true;          // nothing held: always progress
  if (largest_block_bytes_ < 0) return false;   // no size known yet (nor hinted): one read until one finishes
  const int64_t most = options_.max_blocks_in_flight > 0 ? options_.max_blocks_in_flight
                                                         : int64_t{options_.io_threads} + 2;
  if (static_cast<int64_t>(in_flight_.size()) >= most) return false;
  // Held bytes, plus the reads in progress and this one, each at the largest size seen so far (in 128 bits: no
  // product or sum of int64 values overflows them).
  const uint128_t reserved = static_cast<uint128_t>(reading_ + 1) * static_cast<uint64_t>(largest_block_bytes_);
  return held_bytes_ + reserved <= static_cast<uint64_t>(options_.memory_budget);
}

LoadedBlock StreamingEpochIterator::checked_read(const std::vector<int64_t>& read_set) const {
  LoadedBlock block = source_->read(read_set);
  const auto requested = static_cast<int64_t>(read_set.size());
  const int64_t got = block.rows ? block.rows->size() : 0;
  const std::vector<int64_t> shape = block.rows ? block.rows->sample_shape() : std::vector<int64_t>{};
  const OutputType type = block.rows ? block.rows->element_type() : element_type_;
  if (!block.rows || got != requested || shape != sample_shape_ || type != element_type_) {
    throw std::runtime_error("the block read from dataset row " + std::to_string(read_set.front()) +
                             ": the reader returned " + std::to_string(got) + " rows of shape " + shape_text(shape) +
                             " (" + type_name(type) + "), expected " + std::to_string(requested) +
                             " rows of shape " + shape_text(sample_shape_) + " (" + type_name(element_type_) + ")");
  }
  if (block.bytes < 0) {
    throw std::runtime_error("the block read from dataset row " + std::to_string(read_set.front()) +
                             " says it holds a negative number of bytes");
  }
  return block;
}

void StreamingEpochIterator::io_loop() {
  const std::vector<int64_t>& order = assembler_.order();  // immutable: read without the lock
  while (true) {
    int64_t block;
    InFlight* state;
    {
      std::unique_lock lock(mutex_);
      budget_cv_.wait(lock, [&] { return stop_ || next_block_ >= num_blocks() || may_claim_block(); });
      if (stop_ || next_block_ >= num_blocks()) return;
      block = next_block_++;
      state = &in_flight_[block];  // erased only once its positions are written, which waits for `done`
      state->positions_left = block_bounds_[block + 1] - block_bounds_[block];
      ++reading_;
      peak_blocks_in_flight_ = std::max(peak_blocks_in_flight_, static_cast<int64_t>(in_flight_.size()));
    }
    std::vector<int64_t> read_set;
    LoadedBlock loaded;
    std::optional<std::string> error;
    try {
      read_set.assign(order.begin() + block_bounds_[block], order.begin() + block_bounds_[block + 1]);
      std::sort(read_set.begin(), read_set.end());
      read_set.erase(std::unique(read_set.begin(), read_set.end()), read_set.end());
      loaded = checked_read(read_set);
    } catch (const std::bad_alloc&) {
      error = "out of memory reading the block of dataset row " + std::to_string(order[block_bounds_[block]]);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "reading the block of dataset row " + std::to_string(order[block_bounds_[block]]) +
              " failed with an unknown exception";
    }
    {
      std::lock_guard lock(mutex_);
      --reading_;
      state->done = true;
      state->read_set = std::move(read_set);
      if (error) {
        state->error = std::move(error);
      } else {
        state->rows = std::move(loaded.rows);
        state->bytes = loaded.bytes;
        held_bytes_ += static_cast<uint64_t>(loaded.bytes);
        const auto held = static_cast<int64_t>(std::min<uint128_t>(held_bytes_, INT64_MAX));
        peak_block_bytes_ = std::max(peak_block_bytes_, held);
        largest_block_bytes_ = std::max(largest_block_bytes_, loaded.bytes);
        largest_read_ = std::max(largest_read_, loaded.bytes);
        ++blocks_read_;
      }
    }
    loaded_cv_.notify_all();
    budget_cv_.notify_all();  // a block size may have become known: the other I/O threads look again
  }
}

void StreamingEpochIterator::write_rows(int64_t begin, int64_t end, uint8_t* out, std::vector<uint8_t>& scratch) {
  const std::vector<int64_t>& order = assembler_.order();
  std::exception_ptr error;  // the part's first error; after it the part's positions are only counted
  int64_t block = std::upper_bound(block_bounds_.begin(), block_bounds_.end(), begin) - block_bounds_.begin() - 1;
  for (int64_t p = begin; p < end; ++block) {
    const int64_t run_end = std::min(end, block_bounds_[block + 1]);
    std::shared_ptr<const RowSource> rows;
    const std::vector<int64_t>* read_set = nullptr;
    {
      std::unique_lock lock(mutex_);
      const InFlight* state = nullptr;
      loaded_cv_.wait(lock, [&] {
        if (stop_) return true;
        const auto it = in_flight_.find(block);  // absent: not claimed yet (it cannot be released: p is unwritten)
        if (it == in_flight_.end() || !it->second.done) return false;
        state = &it->second;
        return true;
      });
      if (stop_) throw std::runtime_error("the epoch was cancelled");  // never handed over (see cancel())
      // Each part gets its own copy of a read error: no exception object is shared between threads.
      if (!error && state->error) error = std::make_exception_ptr(std::runtime_error(*state->error));
      rows = state->rows;
      read_set = &state->read_set;  // fixed from `done` until the block is released, after this run is counted
    }
    if (!error && out != nullptr) {
      try {
        for (int64_t q = p; q < run_end; ++q) {
          const int64_t row = order[static_cast<size_t>(q)];
          const int64_t local = std::lower_bound(read_set->begin(), read_set->end(), row) - read_set->begin();
          rows->write_row_as(local, row, epoch_, out + (q - begin) * sample_bytes_, scratch);
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    rows.reset();  // before counting: the writer of a block's last position drops its last reference
    finish_positions(block, run_end - p);
    p = run_end;
  }
  if (error) std::rethrow_exception(error);
}

void StreamingEpochIterator::finish_positions(int64_t block, int64_t count) {
  std::shared_ptr<const RowSource> released;
  std::vector<int64_t> read_set;
  {
    std::lock_guard lock(mutex_);
    const auto it = in_flight_.find(block);
    if ((it->second.positions_left -= count) > 0) return;
    released = std::move(it->second.rows);
    read_set = std::move(it->second.read_set);
    held_bytes_ -= static_cast<uint64_t>(it->second.bytes);
    in_flight_.erase(it);
  }
  // Freed outside the lock (a block can be large, or in Python hold objects whose release takes other locks) but
  // before the I/O threads hear of the room: the next block is never read while this one still exists.
  released.reset();
  read_set = {};
  budget_cv_.notify_all();
}

}  // namespace loaderbench
