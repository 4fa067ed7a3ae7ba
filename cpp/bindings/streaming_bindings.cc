// Python face of the streaming loaders: a BlockSource whose reads call a format's own Python reader (one call per
// block, on the core's I/O threads, the GIL held only around that call), and epochs whose batches leave by DLPack.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "arrow_capsule.h"
#include "epoch_binding.h"
#include "loaderbench/block_arena.h"
#include "loaderbench/image_dataset.h"
#include "loaderbench/sparse_matrix.h"
#include "loaderbench/streaming_loader.h"

namespace nb = nanobind;

namespace loaderbench::bindings {
namespace {

/// What a block's Arrow data becomes: the rows the threads gather from, and the bytes they hold.
using BlockImport = std::function<LoadedBlock(StreamOwner stream, int64_t rows, int64_t arrow_bytes)>;

/// Whether Python is being finalized: an I/O thread must not take the GIL then (it would be stopped mid-call).
bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#elif !defined(Py_LIMITED_API)
  return _Py_IsFinalizing();
#else
  return false;  // the Python side closes every live epoch at exit
#endif
}

/// A Python exception as one line for the consumer: its type and message (a Python traceback object cannot cross
/// into a C++ thread's exception).
std::string python_error_line(const nb::python_error& error) {
  std::string name = nb::cast<std::string>(nb::handle(error.type()).attr("__name__"));
  std::string text = nb::str(error.value()).c_str();
  return text.empty() ? name : name + ": " + text;
}

class PyBlockSource final : public BlockSource {
 public:
  /// `read(rows: numpy int64 array) -> Arrow stream object` is the format's reader. One probe read of row 0 gives
  /// the sample shape and element type (and validates the transform) before any thread starts.
  PyBlockSource(nb::object read, int64_t rows, BlockImport import) : read_(std::move(read)), rows_(rows),
                                                                      import_(std::move(import)) {
    if (rows_ < 0) throw std::invalid_argument("a dataset cannot have a negative number of rows");
    if (rows_ == 0) return;
    LoadedBlock probe = read_with_gil_held({0});
    nb::gil_scoped_release release;
    shape_ = probe.rows->sample_shape();
    type_ = probe.rows->element_type();
    probe.rows.reset();
  }
  ~PyBlockSource() override {
    if (!nb::is_alive()) {
      read_.release();  // the interpreter is gone: leak the reference rather than touch it
      return;
    }
    nb::gil_scoped_acquire gil;
    read_.reset();
  }

  int64_t size() const override { return rows_; }
  std::vector<int64_t> sample_shape() const override { return shape_; }
  OutputType element_type() const override { return type_; }

  LoadedBlock read(const std::vector<int64_t>& rows) override {
    if (!nb::is_alive() || interpreter_finalizing()) throw std::runtime_error("the Python interpreter is shutting down");
    nb::gil_scoped_acquire gil;
    return read_with_gil_held(rows);
  }

 private:
  LoadedBlock read_with_gil_held(const std::vector<int64_t>& rows) {
    StreamOwner stream;
    int64_t arrow_bytes = 0;
    try {
      auto* copy = new std::vector<int64_t>(rows);
      nb::capsule owner(copy, [](void* p) noexcept { delete static_cast<std::vector<int64_t>*>(p); });
      const size_t shape[1] = {copy->size()};
      nb::object ids = nb::cast(nb::ndarray<nb::numpy, int64_t, nb::ndim<1>>(copy->data(), 1, shape, owner));
      nb::object table = read_(ids);
      if (nb::hasattr(table, "nbytes")) arrow_bytes = nb::cast<int64_t>(table.attr("nbytes"));
      stream = take_arrow_stream(table);
    } catch (const nb::python_error& error) {
      throw std::runtime_error(python_error_line(error));
    }
    // The import validates every buffer; it needs no Python, so other Python threads run meanwhile.
    nb::gil_scoped_release release;
    return import_(std::move(stream), static_cast<int64_t>(rows.size()), arrow_bytes);
  }

  nb::object read_;
  int64_t rows_;
  BlockImport import_;
  std::vector<int64_t> shape_;
  OutputType type_ = OutputType::kFloat32;
};

/// Blocks are copied into an arena of recycled buffers (`arena`) or held as the reader returned them (null).
BlockImport image_import(TransformOptions transform, int64_t max_sample_bytes, std::shared_ptr<BlockArena> arena) {
  return [transform = std::move(transform), max_sample_bytes, arena = std::move(arena)](
             StreamOwner stream, int64_t rows, int64_t arrow_bytes) {
    std::shared_ptr<const ImageDataset> dataset = ImageDataset::from_stream(std::move(stream), "ome_image",
                                                                            max_sample_bytes);
    if (arena) {
      // The reader's Arrow data is released here, on the I/O thread that read it; the workers read the copy.
      dataset = ImageDataset::compacted(*dataset, *arena);
      arrow_bytes = dataset->owned_bytes();
    }
    if (dataset->size() != rows) {
      throw std::runtime_error("the reader returned " + std::to_string(dataset->size()) + " rows for a block of " +
                               std::to_string(rows));
    }
    auto images = std::make_shared<ImageRows>(std::move(dataset), transform);
    if (const std::string why = images->shape_mismatch(); !why.empty()) {
      throw std::runtime_error("a block's " + why + " (rows counted within the block)");
    }
    return LoadedBlock{std::move(images), arrow_bytes};
  };
}

BlockImport sparse_import(int64_t n_genes) {
  return [n_genes](StreamOwner stream, int64_t rows, int64_t arrow_bytes) {
    // The reader gives one row per asked cell, its genes and values as lists (SparseBlockReader.read_rows).
    std::shared_ptr<const SparseMatrix> matrix = SparseMatrix::from_list_rows(std::move(stream), rows, n_genes);
    const int64_t held = matrix->bytes();
    return LoadedBlock{std::make_shared<DenseRows>(std::move(matrix)), std::max(held, arrow_bytes)};
  };
}

}  // namespace

void bind_streaming(nb::module_& m) {
  nb::class_<StreamingOptions>(m, "StreamingOptions")
      .def(nb::init<>())
      .def_rw("loader", &StreamingOptions::loader)
      .def_rw("shuffle", &StreamingOptions::shuffle)
      .def_rw("chunk_size", &StreamingOptions::chunk_size)
      .def_rw("chunk_starts", &StreamingOptions::chunk_starts)
      .def_rw("chunks_per_block", &StreamingOptions::chunks_per_block)
      .def_rw("memory_budget", &StreamingOptions::memory_budget)
      .def_rw("io_threads", &StreamingOptions::io_threads)
      .def_rw("max_blocks_in_flight", &StreamingOptions::max_blocks_in_flight)
      .def_rw("block_bytes_hint", &StreamingOptions::block_bytes_hint);

  m.def("streaming_batches_per_epoch", &streaming_batches_per_epoch, nb::arg("rows"), nb::arg("options"),
        "Batches per epoch for this rank (and DataLoader worker share) of a streaming loader.");

  nb::class_<BlockSource>(m, "BlockSource")
      .def_static(
          "images",
          [](nb::object read, int64_t rows, const TransformOptions& transform, int64_t max_sample_bytes,
             int64_t copy_buffers) {
            if (copy_buffers < 0) throw std::invalid_argument("copy_buffers must be >= 0");
            auto arena = copy_buffers > 0 ? BlockArena::create(static_cast<size_t>(copy_buffers)) : nullptr;
            return std::shared_ptr<BlockSource>(std::make_shared<PyBlockSource>(
                std::move(read), rows, image_import(transform, max_sample_bytes, std::move(arena))));
          },
          nb::arg("read"), nb::arg("rows"), nb::arg("transform"), nb::arg("max_sample_bytes") = kDefaultMaxSampleBytes,
          nb::arg("copy_buffers") = 0,
          "Blocks of OME-Arrow images: `read(rows)` returns those rows (sorted int64 ids) as Arrow with an "
          "`ome_image` column. Reads row 0 now to learn the sample shape. `copy_buffers` > 0: each block's pixels "
          "are copied out of the reader's Arrow data as soon as it is read (which is then released), into buffers "
          "recycled from block to block, at most `copy_buffers` of them held (in use or free) unless more blocks are "
          "in flight at once.")
      .def_static(
          "sparse",
          [](nb::object read, int64_t rows, int64_t n_genes) {
            return std::shared_ptr<BlockSource>(
                std::make_shared<PyBlockSource>(std::move(read), rows, sparse_import(n_genes)));
          },
          nb::arg("read"), nb::arg("rows"), nb::arg("n_genes"),
          "Blocks of cells: `read(rows)` returns one Arrow row per asked cell, in order, with list columns "
          "`genes` (integers) and `values` (numbers), as SparseBlockReader.read_rows does.")
      .def("__len__", &BlockSource::size)
      .def_prop_ro("sample_shape", &BlockSource::sample_shape)
      .def_prop_ro("sample_bytes", [](const BlockSource& self) {
        int64_t bytes = output_size(self.element_type());
        for (int64_t d : self.sample_shape()) bytes *= d;
        return bytes;
      })
      .def(
          "epoch",
          [](std::shared_ptr<BlockSource> self, std::shared_ptr<BufferPool> pool, const StreamingOptions& options,
             int64_t epoch) {
            auto py_epoch = std::make_unique<PyEpoch>();
            py_epoch->dtype = dlpack_type(self->element_type());
            nb::gil_scoped_release release;  // starts threads; the I/O threads take the GIL for each read
            auto iterator = std::make_shared<StreamingEpochIterator>(std::move(self), std::move(pool), options, epoch);
            py_epoch->stats = [weak = std::weak_ptr<StreamingEpochIterator>(iterator)] {
              StreamStats stats;
              if (auto it = weak.lock()) {
                stats.peak_block_bytes = it->peak_block_bytes();
                stats.blocks_read = it->blocks_read();
                stats.peak_blocks_in_flight = it->peak_blocks_in_flight();
                stats.largest_block_bytes = it->largest_block_bytes();
              }
              return stats;
            };
            py_epoch->iterator = std::move(iterator);
            return py_epoch.release();
          },
          nb::arg("pool"), nb::arg("options"), nb::arg("epoch"), nb::rv_policy::take_ownership,
          "Start a streaming epoch: the I/O threads begin reading blocks and the workers assembling batches now.");
}

}  // namespace loaderbench::bindings
