#include "loaderbench/batch_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "arrow_test_builder.h"
#include "loaderbench/image_dataset.h"
#include "loaderbench/sample_writer.h"

namespace loaderbench {
namespace {

using testing::FakeStream;
using testing::TestImage;

std::shared_ptr<ImageDataset> dataset_of(int n, TestImage shape = {1, 1, 4, 5}) {
  // Two record batches, so rows cross batch boundaries.
  std::vector<TestImage> first(static_cast<size_t>(n / 2), shape), second(static_cast<size_t>(n - n / 2), shape);
  std::vector<testing::NodePtr> batches{testing::ome_batch(first)};
  if (!second.empty()) batches.push_back(testing::ome_batch(second));
  return ImageDataset::from_stream(FakeStream::make(batches));
}

/// Pixel value the builder wrote: row-in-batch * 1000 + c * 100 + z * 10 + k.
float expected_pixel(int64_t row_in_batch, int c, int k) {
  return static_cast<float>(static_cast<uint16_t>(row_in_batch * 1000 + c * 100 + k)) / 65535.0f;
}

std::shared_ptr<const RowSource> rows_of(const std::shared_ptr<ImageDataset>& ds, TransformOptions t = {}) {
  return std::make_shared<ImageRows>(ds, std::move(t));
}

std::vector<Batch> run_epoch(const std::shared_ptr<ImageDataset>& ds, const LoaderOptions& o, int64_t epoch,
                             TransformOptions transform = {}) {
  auto pool = BufferPool::create(static_cast<size_t>(o.batch_size * 2 * 4 * 5 * 4), 8);
  EpochIterator it(rows_of(ds, std::move(transform)), pool, o, epoch);
  std::vector<Batch> out;
  Batch b;
  while (it.next(&b)) out.push_back(std::move(b));
  EXPECT_EQ(static_cast<int64_t>(out.size()), it.num_batches());
  return out;
}

TEST(ImageDataset, IndexesPlanesInPlace) {
  auto ds = dataset_of(6, {2, 1, 4, 5});
  ASSERT_EQ(ds->size(), 6);
  EXPECT_TRUE(ds->uniform_shape());
  for (int64_t r = 0; r < 6; ++r) {
    const ImageLocation& im = ds->image(r);
    EXPECT_EQ(im.num_pieces, 2);  // the planes, not the chunks
    EXPECT_NE(im.contiguous, nullptr);
    EXPECT_EQ(im.channels, 2);
  }
}

TEST(ImageDataset, PreloadedHoldsTheSamePixelsAsOneContiguousRunPerImage) {
  for (bool planes : {true, false}) {  // planes, or only ZYX chunks (pieces not contiguous in Arrow)
    TestImage shape{2, 3, 4, 5};
    shape.planes = planes;
    auto ds = dataset_of(7, shape);
    auto pre = ImageDataset::preloaded(*ds, 3);
    ASSERT_EQ(pre->size(), ds->size());
    EXPECT_EQ(pre->owned_bytes(), 7 * 128 * 2);  // 120 uint16 each (declared uint16: not narrowed), 64-byte aligned
    const TransformOptions t;
    std::vector<uint8_t> scratch;
    for (int64_t r = 0; r < ds->size(); ++r) {
      const ImageLocation& im = pre->image(r);
      ASSERT_NE(im.contiguous, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(im.contiguous) % 16, 0u);
      EXPECT_EQ(im.stored, PixelType::kUint16);
      EXPECT_EQ(im.num_pieces, 2);
      std::vector<float> want(120), got(120);
      write_sample(ds->index(), r, t, {}, want.data(), scratch);
      write_sample(pre->index(), r, t, {}, got.data(), scratch);
      EXPECT_EQ(want, got) << "row " << r << (planes ? " (planes)" : " (chunks)");
    }
  }
}

/// Every row of `ds` written as float32 samples of `pixels` values with the default transform.
std::vector<std::vector<float>> all_samples(const ImageDataset& ds, size_t pixels) {
  std::vector<uint8_t> scratch;
  std::vector<std::vector<float>> out(static_cast<size_t>(ds.size()), std::vector<float>(pixels));
  for (int64_t r = 0; r < ds.size(); ++r) write_sample(ds.index(), r, TransformOptions{}, {}, out[r].data(), scratch);
  return out;
}

TEST(ImageDataset, CompactedHoldsTheSamePixelsAfterTheArrowDataIsGone) {
  auto arena = BlockArena::create(2);
  // Planes, or only ZYX chunks (back to back, so also one run); compressed chunks, copied piece by piece, are
  // covered from Python (test_streaming_loader: bytes-zstd through Arrow IPC).
  for (bool planes : {true, false}) {
    TestImage shape{2, 3, 4, 5};
    shape.planes = planes;
    auto ds = dataset_of(7, shape);
    const std::vector<std::vector<float>> want = all_samples(*ds, 120);
    auto compact = ImageDataset::compacted(*ds, *arena);
    ds.reset();  // the Arrow buffers are freed: the copy must not point into them (ASan checks every read below)
    ASSERT_EQ(compact->size(), 7);
    EXPECT_EQ(compact->owned_bytes(), 7 * 256);  // one run of 120 uint16 per image, 64-byte aligned
    const std::vector<std::vector<float>> got = all_samples(*compact, 120);
    for (int64_t r = 0; r < compact->size(); ++r) {
      const ImageLocation& im = compact->image(r);
      ASSERT_NE(im.contiguous, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(im.contiguous) % 16, 0u);
      EXPECT_EQ(got[r], want[r]) << "row " << r << (planes ? " (planes)" : " (chunks)");
    }
  }
  EXPECT_EQ(arena->allocations(), 1u) << "the second block reuses the first one's buffer";
}

TEST(ImageDataset, CompactedNarrowsUint8DeclaredDataUnlessAValueExceeds255) {
  auto arena = BlockArena::create(2);
  for (int modulo : {256, 65536}) {  // uint8-range values, or values up to 6xxx in data declared uint8
    TestImage shape{2, 3, 4, 5};
    shape.type = "uint8";
    shape.value_modulo = modulo;
    auto ds = dataset_of(7, shape);
    const std::vector<std::vector<float>> want = all_samples(*ds, 120);
    auto compact = ImageDataset::compacted(*ds, *arena);
    ds.reset();
    const bool narrowed = modulo == 256;
    EXPECT_EQ(compact->owned_bytes(), 7 * (narrowed ? 128 : 256));  // 120 pixels of 1 or 2 bytes, 64-byte aligned
    const std::vector<std::vector<float>> got = all_samples(*compact, 120);
    for (int64_t r = 0; r < compact->size(); ++r) {
      const ImageLocation& im = compact->image(r);
      EXPECT_EQ(im.stored, narrowed ? PixelType::kUint8 : PixelType::kUint16);
      EXPECT_EQ(compact->index().pieces[im.first_piece].type, im.stored);
      EXPECT_EQ(got[r], want[r]) << "row " << r << " modulo " << modulo;
    }
  }
}

TEST(ImageDataset, MixedShapesBatchOneAtATimeOrCropped) {
  auto ds = ImageDataset::from_stream(
      FakeStream::make({testing::ome_batch({{1, 1, 4, 5}, {1, 1, 3, 5}, {1, 1, 6, 2}})}));
  EXPECT_FALSE(ds->uniform_shape());
  auto rows = rows_of(ds);
  EXPECT_NE(rows->shape_mismatch().find("row 1"), std::string::npos);
  EXPECT_EQ(rows->max_sample_bytes(), 4 * 5 * 4);
  LoaderOptions o;
  o.batch_size = 2;
  auto pool = BufferPool::create(2 * 4 * 5 * 4, 4);
  EXPECT_THROW(EpochIterator(rows, pool, o, 0), std::invalid_argument);
  // One sample a batch: each keeps its own shape and pixels.
  o.batch_size = 1;
  o.num_threads = 2;
  o.sampler.kind = SamplerKind::kRandom;
  EpochIterator it(rows, pool, o, 0);
  Batch b;
  std::set<int64_t> seen;
  while (it.next(&b)) {
    const ImageLocation& im = ds->image(b.indices.at(0));
    EXPECT_EQ(b.shape, (std::vector<int64_t>{1, 1, im.height, im.width}));
    const auto* values = reinterpret_cast<const float*>(b.buffer->bytes.get());
    for (int k = 0; k < im.height * im.width; ++k) EXPECT_EQ(values[k], expected_pixel(b.indices[0], 0, k));
    seen.insert(b.indices[0]);
  }
  EXPECT_EQ(seen.size(), 3u);
  // A crop every image can take (or pads) makes them one shape.
  TransformOptions crop;
  crop.crop_height = 3;
  crop.crop_width = 2;
  EXPECT_EQ(rows_of(ds, crop)->shape_mismatch(), "");
  crop.crop_height = 4;
  EXPECT_THROW(rows_of(ds, crop), std::invalid_argument);  // row 1 has 3 rows
  crop.pad_if_needed = true;
  o.batch_size = 3;
  auto cropped = rows_of(ds, crop);
  EXPECT_EQ(cropped->sample_shape(), (std::vector<int64_t>{1, 4, 2}));
  EpochIterator batched(cropped, pool, o, 0);
  ASSERT_TRUE(batched.next(&b));
  EXPECT_EQ(b.shape, (std::vector<int64_t>{3, 1, 4, 2}));
}

TEST(ImageDataset, MaxPixelValueScansTheRowsAskedFor) {
  auto ds = dataset_of(6, {2, 1, 4, 5});  // values row-in-batch * 1000 + c * 100 + k
  EXPECT_EQ(ds->max_pixel_value({}, 2), 2000.0 + 100 + 19);
  EXPECT_EQ(ds->max_pixel_value({0}, 1), 119.0);
  EXPECT_EQ(ds->max_pixel_value({3, 4}, 2), 1119.0);
  EXPECT_THROW(ds->max_pixel_value({6}, 1), std::out_of_range);
}

TEST(EpochIterator, DeliversTheRightPixels) {
  auto ds = dataset_of(10);
  LoaderOptions o;
  o.batch_size = 4;
  o.num_threads = 2;
  o.sampler.kind = SamplerKind::kRandom;
  o.sampler.seed = 1;
  for (const Batch& b : run_epoch(ds, o, 0)) {
    ASSERT_EQ(b.shape.size(), 4u);
    EXPECT_EQ(b.shape[1], 1);
    const auto* values = reinterpret_cast<const float*>(b.buffer->bytes.get());
    for (size_t i = 0; i < b.indices.size(); ++i) {
      const int64_t row = b.indices[i];
      const int64_t row_in_batch = row < 5 ? row : row - 5;
      for (int k = 0; k < 20; ++k) EXPECT_EQ(values[i * 20 + k], expected_pixel(row_in_batch, 0, k));
    }
  }
}

TEST(EpochIterator, EveryIndexExactlyOncePerEpoch) {
  for (SamplerKind kind : {SamplerKind::kSequential, SamplerKind::kRandom, SamplerKind::kBlockShuffle}) {
    for (int threads : {1, 2, 4}) {
      for (int64_t world : {1, 2, 3}) {
        for (int n : {1, 7, 33}) {
          auto ds = dataset_of(n);
          std::multiset<int64_t> seen;
          for (int64_t rank = 0; rank < world; ++rank) {
            LoaderOptions o;
            o.batch_size = 4;
            o.num_threads = threads;
            o.prefetch = 3;
            o.sampler.kind = kind;
            o.sampler.block_size = 3;
            o.sampler.buffer_blocks = 2;
            o.sampler.seed = 7;
            o.sampler.rank = rank;
            o.sampler.world_size = world;
            for (const Batch& b : run_epoch(ds, o, 1)) seen.insert(b.indices.begin(), b.indices.end());
          }
          const std::set<int64_t> unique(seen.begin(), seen.end());
          EXPECT_EQ(static_cast<int>(unique.size()), n);
          if (world == 1) EXPECT_EQ(static_cast<int>(seen.size()), n);
          else EXPECT_EQ(static_cast<int64_t>(seen.size()), (n + world - 1) / world * world);  // padded as torch does
        }
      }
    }
  }
}

TEST(EpochIterator, BatchStrideSplitsAnEpochIntoInterleavingShares) {
  // DataLoader workers: worker w of W takes batches w, w + W, ...; interleaved they are the unsplit epoch.
  auto ds = dataset_of(23);
  for (bool drop_last : {false, true}) {
    LoaderOptions o;
    o.batch_size = 4;
    o.drop_last = drop_last;
    o.sampler.kind = SamplerKind::kRandom;
    o.sampler.seed = 7;
    const std::vector<Batch> whole = run_epoch(ds, o, 3);
    for (int64_t stride : {2, 3, 7}) {
      std::vector<std::vector<Batch>> shares;
      for (int64_t offset = 0; offset < stride; ++offset) {
        LoaderOptions share = o;
        share.batch_stride = stride;
        share.batch_offset = offset;
        EXPECT_EQ(batches_per_epoch(ds->size(), share),
                  (batches_per_epoch(ds->size(), o) - offset + stride - 1) / stride);
        shares.push_back(run_epoch(ds, share, 3));
      }
      for (size_t b = 0; b < whole.size(); ++b) {
        const Batch& got = shares[b % static_cast<size_t>(stride)][b / static_cast<size_t>(stride)];
        EXPECT_EQ(got.indices, whole[b].indices) << "stride " << stride << " batch " << b;
      }
    }
  }
}

TEST(EpochIterator, DropLastDropsThePartialBatch) {
  auto ds = dataset_of(10);
  LoaderOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  const auto batches = run_epoch(ds, o, 0);
  EXPECT_EQ(batches.size(), 2u);
  for (const Batch& b : batches) EXPECT_EQ(b.shape[0], 4);
}

TEST(EpochIterator, OrderDoesNotDependOnThreads) {
  auto ds = dataset_of(50);
  std::vector<std::vector<int64_t>> orders;
  for (int threads : {1, 2, 4}) {
    LoaderOptions o;
    o.batch_size = 3;
    o.num_threads = threads;
    o.sampler.kind = SamplerKind::kRandom;
    o.sampler.seed = 42;
    TransformOptions t;
    t.random_hflip = true;
    t.seed = 42;
    std::vector<int64_t> order;
    std::vector<float> pixels;
    for (const Batch& b : run_epoch(ds, o, 3, t)) {
      order.insert(order.end(), b.indices.begin(), b.indices.end());
      const auto* v = reinterpret_cast<const float*>(b.buffer->bytes.get());
      pixels.insert(pixels.end(), v, v + b.shape[0] * 20);
    }
    orders.push_back(order);
    static std::vector<float> first_pixels;
    if (threads == 1) first_pixels = pixels;
    else EXPECT_EQ(pixels, first_pixels);
  }
  EXPECT_EQ(orders[0], orders[1]);
  EXPECT_EQ(orders[0], orders[2]);
}

TEST(EpochIterator, RecyclesBuffers) {
  auto ds = dataset_of(64);
  LoaderOptions o;
  o.batch_size = 2;
  o.num_threads = 2;
  o.prefetch = 2;
  auto pool = BufferPool::create(2 * 20 * 4, 8);
  for (int epoch = 0; epoch < 3; ++epoch) {
    EpochIterator it(rows_of(ds), pool, o, epoch);
    Batch b;
    while (it.next(&b)) b.buffer.reset();  // the consumer drops each batch before the next
  }
  EXPECT_LE(pool->allocations(), 6u);  // prefetch + threads + the one in hand, not 96
}

TEST(EpochIterator, StopsMidEpochWithoutHanging) {
  auto ds = dataset_of(64);
  LoaderOptions o;
  o.batch_size = 1;
  o.num_threads = 4;
  o.prefetch = 2;
  auto pool = BufferPool::create(20 * 4, 8);
  for (int k = 0; k < 20; ++k) {
    EpochIterator it(rows_of(ds), pool, o, k);
    Batch b;
    ASSERT_TRUE(it.next(&b));
  }  // destroyed with workers blocked on the prefetch bound
}

TEST(EpochIterator, BuffersOutliveTheirPool) {
  auto ds = dataset_of(4);
  LoaderOptions o;
  o.batch_size = 4;
  Batch kept;
  {
    auto pool = BufferPool::create(4 * 20 * 4, 2);
    EpochIterator it(rows_of(ds), pool, o, 0);
    ASSERT_TRUE(it.next(&kept));
  }
  const auto* v = reinterpret_cast<const float*>(kept.buffer->bytes.get());
  EXPECT_EQ(v[1], expected_pixel(0, 0, 1));
  kept.buffer.reset();  // freed, not returned to a dead pool
}

TEST(EpochIterator, RejectsBadOptions) {
  auto ds = dataset_of(4);
  auto pool = BufferPool::create(1024, 2);
  LoaderOptions o;
  o.batch_size = 0;
  EXPECT_THROW(EpochIterator(rows_of(ds), pool, o, 0), std::invalid_argument);
  o.batch_size = 100;  // larger than the dataset: its one batch holds 4 rows, which fit
  EXPECT_NO_THROW(EpochIterator(rows_of(ds), pool, o, 0));
  EXPECT_THROW(EpochIterator(rows_of(ds), BufferPool::create(1, 2), o, 0), std::invalid_argument);
  o.batch_size = 1;
  o.batch_stride = 2;
  o.batch_offset = 2;
  EXPECT_THROW(EpochIterator(rows_of(ds), pool, o, 0), std::invalid_argument);
  o.batch_offset = 0;
  o.batch_stride = 0;
  EXPECT_THROW(EpochIterator(rows_of(ds), pool, o, 0), std::invalid_argument);
  o.batch_stride = 1;
  o.batch_size = 1;
  o.num_threads = 0;
  EXPECT_THROW(EpochIterator(rows_of(ds), pool, o, 0), std::invalid_argument);
  o.num_threads = 1;
  o.prefetch = -1;
  EXPECT_THROW(EpochIterator(rows_of(ds), pool, o, 0), std::invalid_argument);
}

/// Row i is the float i; records which thread wrote each row; row `bad` throws. Slow enough (200 us a row) that
/// a second thread claims work while the first is still busy.
class RecordingRows final : public RowSource {
 public:
  RecordingRows(int64_t n, int64_t bad = -1) : n_(n), bad_(bad) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {1}; }
  OutputType element_type() const override { return OutputType::kFloat32; }
  void write_row(int64_t row, int64_t, uint8_t* out, std::vector<uint8_t>&) const override {
    if (row == bad_) throw std::runtime_error("bad row " + std::to_string(row));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    *reinterpret_cast<float*>(out) = static_cast<float>(row);
    std::lock_guard lock(mutex_);
    writer_[row] = std::this_thread::get_id();
  }
  std::thread::id writer(int64_t row) const {
    std::lock_guard lock(mutex_);
    return writer_.at(row);
  }

 private:
  int64_t n_, bad_;
  mutable std::mutex mutex_;
  mutable std::map<int64_t, std::thread::id> writer_;
};

TEST(EpochIterator, ThreadsShareABatchSoPrefetchOneStillUsesThemAll) {
  auto rows = std::make_shared<RecordingRows>(100);
  LoaderOptions o;
  o.batch_size = 16;  // 6 full batches and a partial one of 4 rows
  o.num_threads = 2;
  o.prefetch = 1;
  auto pool = BufferPool::create(16 * 4, 4);
  EpochIterator it(rows, pool, o, 0);
  Batch b;
  int64_t expected = 0, shared = 0;
  while (it.next(&b)) {
    const auto* v = reinterpret_cast<const float*>(b.buffer->bytes.get());
    ASSERT_EQ(b.shape, (std::vector<int64_t>{static_cast<int64_t>(b.indices.size()), 1}));
    std::set<std::thread::id> writers;
    for (size_t i = 0; i < b.indices.size(); ++i) {
      EXPECT_EQ(b.indices[i], expected++);
      EXPECT_EQ(v[i], static_cast<float>(b.indices[i]));
      writers.insert(rows->writer(b.indices[i]));
    }
    shared += writers.size() == 2;
    b.buffer.reset();
  }
  EXPECT_EQ(expected, 100);
  EXPECT_GE(shared, 3);  // most batches were assembled by both threads at once
  EXPECT_LE(pool->allocations(), 2u);  // one batch in flight + the one in hand
}

TEST(EpochIterator, PrefetchZeroAssemblesOnDemandInOneBuffer) {
  for (int threads : {1, 2, 3}) {
    auto rows = std::make_shared<RecordingRows>(50);
    LoaderOptions o;
    o.batch_size = 8;
    o.num_threads = threads;
    o.prefetch = 0;
    auto pool = BufferPool::create(8 * 4, 4);
    EpochIterator it(rows, pool, o, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(pool->allocations(), 0u);  // nothing is assembled before it is asked for
    Batch b;
    int64_t expected = 0;
    while (it.next(&b)) {
      const auto* v = reinterpret_cast<const float*>(b.buffer->bytes.get());
      for (size_t i = 0; i < b.indices.size(); ++i) EXPECT_EQ(v[i], static_cast<float>(expected++));
      b.buffer.reset();  // dropped before the next is asked for: the same buffer serves every batch
    }
    EXPECT_EQ(expected, 50);
    EXPECT_EQ(pool->allocations(), 1u);
  }
}

TEST(EpochIterator, AWorkersErrorSurfacesForItsBatchOnly) {
  for (int threads : {1, 2, 3}) {
    auto rows = std::make_shared<RecordingRows>(40, /*bad=*/21);
    LoaderOptions o;
    o.batch_size = 8;
    o.num_threads = threads;
    o.prefetch = 2;
    EpochIterator it(rows, BufferPool::create(8 * 4, 4), o, 0);
    Batch b;
    for (int k = 0; k < 2; ++k) ASSERT_TRUE(it.next(&b));  // rows 0..15 are fine
    EXPECT_THROW(it.next(&b), std::runtime_error);          // batch 2 holds row 21
  }  // destroyed mid-epoch with the later batches in flight
}

}  // namespace
}  // namespace loaderbench
