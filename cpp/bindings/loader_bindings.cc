// Python face of the native image loader: an in-place ImageDataset over any Arrow stream, and epoch iterators
// whose batches leave as torch tensors by DLPack (a capsule owns each buffer and returns it to the pool).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "arrow_capsule.h"
#include "epoch_binding.h"
#include "tensor_helpers.h"
#include "loaderbench/batch_loader.h"
#include "loaderbench/copy_bandwidth.h"
#include "loaderbench/image_dataset.h"

namespace nb = nanobind;

namespace loaderbench::bindings {
namespace {

nb::dlpack::dtype dlpack_type(PixelType type) {
  return with_pixel_type(type, []<typename T>(T) { return nb::dtype<T>(); });
}
using bindings::dlpack_type;

/// The dataset as Python sees it; it owns the Arrow data through a shared_ptr that tensors views share.
struct PyImageDataset {
  std::shared_ptr<const ImageDataset> dataset;
  ~PyImageDataset() { release_without_gil(dataset); }
};

void check_row(const ImageDataset& ds, int64_t& row) { bindings::check_row(ds.size(), row); }

nb::object sample_tensor(const PyImageDataset& self, int64_t row, const TransformOptions& transform, int64_t epoch) {
  const ImageDataset& ds = *self.dataset;
  check_row(ds, row);
  validate_transform(ds.image(row), transform);
  const SampleAugment augment = draw_augment(transform, ds.image(row), epoch, row);
  return new_sample_tensor(sample_shape(ds.image(row), transform), transform.output,
                           [&](void* out, std::vector<uint8_t>& scratch) {
                             write_sample(ds.index(), row, transform, augment, out, scratch);
                           });
}

nb::object view_tensor(const PyImageDataset& self, int64_t row) {
  const ImageDataset& ds = *self.dataset;
  check_row(ds, row);
  const ImageLocation& image = ds.image(row);
  if (image.contiguous == nullptr) {
    throw nb::value_error("this image is not stored as one contiguous block (chunked or compressed); "
                          "a zero-copy view is not possible, ask for a converted sample instead");
  }
  std::vector<int64_t> shape{image.channels, image.height, image.width};
  if (image.depth > 1) shape.insert(shape.begin() + 1, image.depth);
  // The capsule keeps the Arrow buffers alive as long as the tensor lives.
  auto* keep = new std::shared_ptr<const ImageDataset>(self.dataset);
  nb::capsule owner(keep, [](void* p) noexcept {
    auto* held = static_cast<std::shared_ptr<const ImageDataset>*>(p);
    release_without_gil(*held);
    delete held;
  });
  return nb::cast(make_tensor(const_cast<uint8_t*>(image.contiguous), shape, dlpack_type(image.stored), owner));
}

nb::dict summary_dict(const ImageDataset& ds) {
  const ImageLocation& first = ds.image(0);
  nb::dict d;
  d["rows"] = ds.size();
  d["uniform_shape"] = ds.uniform_shape();
  d["channels"] = first.channels;
  d["depth"] = first.depth;
  d["height"] = first.height;
  d["width"] = first.width;
  d["declared_dtype"] = pixel_type_name(first.declared);
  d["stored_dtype"] = pixel_type_name(first.stored);
  const std::set<int64_t>& bits = ds.summary().significant_bits;
  d["significant_bits"] = std::vector<int64_t>(bits.begin(), bits.end());
  const std::set<std::string>& declared = ds.summary().declared_types;
  d["declared_dtypes"] = std::vector<std::string>(declared.begin(), declared.end());
  int64_t contiguous = 0, pieces = 0;
  for (const ImageLocation& im : ds.index().images) {
    contiguous += im.contiguous != nullptr;
    pieces += im.num_pieces;
  }
  d["contiguous_rows"] = contiguous;
  d["pieces"] = pieces;
  return d;
}

}  // namespace

void bind_loader(nb::module_& m) {
  nb::enum_<SamplerKind>(m, "SamplerKind")
      .value("sequential", SamplerKind::kSequential)
      .value("random", SamplerKind::kRandom)
      .value("block", SamplerKind::kBlockShuffle);
  nb::enum_<OutputType>(m, "OutputType")
      .value("float32", OutputType::kFloat32)
      .value("float16", OutputType::kFloat16)
      .value("uint8", OutputType::kUint8);

  nb::class_<SamplerOptions>(m, "SamplerOptions")
      .def(nb::init<>())
      .def_rw("kind", &SamplerOptions::kind)
      .def_rw("seed", &SamplerOptions::seed)
      .def_rw("block_size", &SamplerOptions::block_size)
      .def_rw("buffer_blocks", &SamplerOptions::buffer_blocks)
      .def_rw("rank", &SamplerOptions::rank)
      .def_rw("world_size", &SamplerOptions::world_size)
      .def_rw("drop_last", &SamplerOptions::drop_last);

  nb::class_<TransformOptions>(m, "TransformOptions")
      .def(nb::init<>())
      .def_rw("output", &TransformOptions::output)
      .def_rw("scale", &TransformOptions::scale)
      .def_rw("mean", &TransformOptions::mean)
      .def_rw("std", &TransformOptions::std)
      .def_rw("random_hflip", &TransformOptions::random_hflip)
      .def_rw("random_vflip", &TransformOptions::random_vflip)
      .def_rw("crop_height", &TransformOptions::crop_height)
      .def_rw("crop_width", &TransformOptions::crop_width)
      .def_rw("random_crop", &TransformOptions::random_crop)
      .def_rw("pad_if_needed", &TransformOptions::pad_if_needed)
      .def_rw("max_value", &TransformOptions::max_value)
      .def_rw("seed", &TransformOptions::seed);

  nb::class_<LoaderOptions>(m, "LoaderOptions")
      .def(nb::init<>())
      .def_rw("batch_size", &LoaderOptions::batch_size)
      .def_rw("drop_last", &LoaderOptions::drop_last)
      .def_rw("batch_offset", &LoaderOptions::batch_offset)
      .def_rw("batch_stride", &LoaderOptions::batch_stride)
      .def_rw("sampler", &LoaderOptions::sampler)
      .def_rw("num_threads", &LoaderOptions::num_threads)
      .def_rw("prefetch", &LoaderOptions::prefetch);

  m.def(
      "copy_bandwidth",
      [](size_t bytes, int threads, int repeats) {
        nb::gil_scoped_release release;
        return copy_bandwidth(bytes, threads, repeats);
      },
      nb::arg("bytes"), nb::arg("threads"), nb::arg("repeats") = 5,
      "memcpy roofline: median bytes moved per second (read + write) copying `bytes` with `threads` threads.");

  m.def("epoch_indices",
        [](int64_t n, const SamplerOptions& options, int64_t epoch) { return epoch_indices(n, options, epoch); },
        nb::arg("n"), nb::arg("options"), nb::arg("epoch") = 0,
        "The indices one rank visits in an epoch (the sampler alone, for tests and inspection).");

  nb::class_<BufferPool>(m, "BufferPool")
      .def_static("create", &BufferPool::create, nb::arg("buffer_bytes"), nb::arg("max_free"))
      .def_prop_ro("buffer_bytes", &BufferPool::buffer_bytes)
      .def_prop_ro("allocations", &BufferPool::allocations);

  nb::class_<PyImageDataset>(m, "ImageDataset")
      .def(
          "__init__",
          [](PyImageDataset* self, nb::handle source, const std::string& column, int64_t max_sample_bytes) {
            StreamOwner stream = take_arrow_stream(source);
            std::shared_ptr<ImageDataset> dataset;
            {
              nb::gil_scoped_release release;
              dataset = ImageDataset::from_stream(std::move(stream), column, max_sample_bytes);
            }
            new (self) PyImageDataset{std::move(dataset)};
          },
          nb::arg("source"), nb::arg("column") = "ome_image", nb::arg("max_sample_bytes") = kDefaultMaxSampleBytes,
          "Import and validate an OME-Arrow column from any __arrow_c_stream__ source; pixels stay in the Arrow "
          "buffers.")
      .def("__len__", [](const PyImageDataset& self) { return self.dataset->size(); })
      .def("summary", [](const PyImageDataset& self) { return summary_dict(*self.dataset); })
      .def("sample", &sample_tensor, nb::arg("row"), nb::arg("transform"), nb::arg("epoch") = 0,
           "One converted sample as a new tensor.")
      .def("view", &view_tensor, nb::arg("row"),
           "One image as a zero-copy tensor of its stored dtype; it keeps the Arrow buffers alive.")
      .def(
          "preloaded",
          [](const PyImageDataset& self, int num_threads) {
            std::shared_ptr<ImageDataset> dataset;
            {
              nb::gil_scoped_release release;
              dataset = ImageDataset::preloaded(*self.dataset, num_threads);
            }
            return PyImageDataset{std::move(dataset)};
          },
          nb::arg("num_threads") = 1,
          "A copy with every image decoded once into one owned buffer (decompressed; uint8 declared but stored as "
          "uint16 narrowed back to uint8); it holds no Arrow buffers.")
      .def(
          "max_pixel_value",
          [](const PyImageDataset& self, const std::vector<int64_t>& rows, int num_threads) {
            nb::gil_scoped_release release;
            return self.dataset->max_pixel_value(rows, num_threads);
          },
          nb::arg("rows") = std::vector<int64_t>{}, nb::arg("num_threads") = 1,
          "The largest stored pixel value of `rows` (all rows when empty).")
      .def_prop_ro("owned_bytes", [](const PyImageDataset& self) { return self.dataset->owned_bytes(); },
                   "Bytes of the preloaded pixel buffer (0 when the pixels stay in the Arrow buffers).")
      .def("rows",
           [](const PyImageDataset& self, const TransformOptions& transform) {
             return std::shared_ptr<const RowSource>(std::make_shared<ImageRows>(self.dataset, transform));
           },
           nb::arg("transform"), "The images as batchable rows under `transform` (validated now).");

  nb::class_<RowSource>(m, "RowSource")
      .def("__len__", &RowSource::size)
      .def_prop_ro("sample_shape", &RowSource::sample_shape)
      .def_prop_ro("sample_bytes", &RowSource::sample_bytes)
      .def_prop_ro("max_sample_bytes", &RowSource::max_sample_bytes,
                   "Bytes of the largest sample (samples differ only when shape_mismatch is not empty).")
      .def_prop_ro("shape_mismatch", &RowSource::shape_mismatch,
                   "Why rows differ in shape (then only batches of one row are possible), or ''.")
      .def("batches_per_epoch",
           [](const RowSource& self, const LoaderOptions& options) {
             validate_options(options);
             return batches_per_epoch(self.size(), options);
           })
      .def("max_batch_rows",
           [](const RowSource& self, const LoaderOptions& options) {
             validate_options(options);
             return max_batch_rows(self.size(), options);
           },
           "Rows of the largest batch of an epoch: what one pool buffer must hold.")
      .def(
          "epoch",
          [](std::shared_ptr<const RowSource> self, std::shared_ptr<BufferPool> pool, const LoaderOptions& options,
             int64_t epoch) {
            auto py_epoch = std::make_unique<PyEpoch>();
            py_epoch->keep_alive = self;
            py_epoch->dtype = dlpack_type(self->element_type());
            {
              nb::gil_scoped_release release;  // starts threads
              py_epoch->iterator = std::make_shared<EpochIterator>(std::move(self), std::move(pool), options, epoch);
            }
            return py_epoch.release();
          },
          nb::arg("pool"), nb::arg("options"), nb::arg("epoch"), nb::rv_policy::take_ownership,
          "Start an epoch: worker threads begin assembling batches now.");

}

}  // namespace loaderbench::bindings
