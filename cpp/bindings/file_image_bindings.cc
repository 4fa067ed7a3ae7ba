// Python face of the directory formats: a FileImageDataset over a TIFF or OME-Zarr directory's item paths, whose
// rows the same epoch iterators batch (every file decoded on the core's threads, no Python per sample).
#include <nanobind/nanobind.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>
#include <vector>

#include "loaderbench/file_images.h"
#include "tensor_helpers.h"

namespace nb = nanobind;

namespace loaderbench::bindings {
namespace {

struct PyFileImageDataset {
  std::shared_ptr<const FileImageDataset> dataset;
};

ImageFileFormat parse_format(const std::string& name) {
  if (name == "tiff") return ImageFileFormat::kTiff;
  if (name == "ome_zarr") return ImageFileFormat::kOmeZarr;
  throw nb::value_error(("the native core reads the directory formats 'tiff' and 'ome_zarr', not '" + name + "'")
                            .c_str());
}

nb::object file_sample(const PyFileImageDataset& self, int64_t row, const TransformOptions& transform, int64_t epoch) {
  const FileImageDataset& ds = *self.dataset;
  check_row(ds.size(), row);
  const FileImageRows rows(self.dataset, transform);  // validates the transform; crops files of any size
  return new_sample_tensor(rows.sample_shape(), transform.output, [&](void* out, std::vector<uint8_t>& scratch) {
    rows.write_row(row, epoch, static_cast<uint8_t*>(out), scratch);
  });
}

nb::dict file_summary(const FileImageDataset& ds) {
  nb::dict d;
  d["rows"] = ds.size();
  d["uniform_shape"] = true;  // checked per file as it is read
  d["channels"] = ds.shape().channels;
  d["depth"] = ds.shape().depth;
  d["height"] = ds.shape().height;
  d["width"] = ds.shape().width;
  d["declared_dtype"] = pixel_type_name(ds.shape().type);
  d["stored_dtype"] = pixel_type_name(ds.shape().type);
  d["declared_dtypes"] = std::vector<std::string>{pixel_type_name(ds.shape().type)};
  // OME-TIFF's SignificantBits, from the first file (OME-Zarr has no such field)
  d["significant_bits"] =
      ds.significant_bits() > 0 ? std::vector<int64_t>{ds.significant_bits()} : std::vector<int64_t>{};
  d["contiguous_rows"] = 0;  // decoded from files: no zero-copy view
  d["pieces"] = ds.size() * ds.shape().channels;
  d["format"] = ds.format() == ImageFileFormat::kTiff ? "tiff" : "ome_zarr";
  return d;
}

}  // namespace

void bind_file_images(nb::module_& m) {
  nb::exception<FileImageError>(m, "FileImageError", PyExc_ValueError);
  m.def("file_format_available", [](const std::string& name) { return file_format_available(parse_format(name)); },
        nb::arg("format"), "Whether this build of the core reads the directory format natively.");

  nb::class_<PyFileImageDataset>(m, "FileImageDataset")
      .def(
          "__init__",
          [](PyFileImageDataset* self, const std::string& format, std::vector<std::string> paths,
             int64_t max_sample_bytes, int32_t zarr_level) {
            const ImageFileFormat kind = parse_format(format);
            std::shared_ptr<FileImageDataset> dataset;
            {
              nb::gil_scoped_release release;  // probes the first file
              dataset = std::make_shared<FileImageDataset>(kind, std::move(paths), max_sample_bytes, zarr_level);
            }
            new (self) PyFileImageDataset{std::move(dataset)};
          },
          nb::arg("format"), nb::arg("paths"), nb::arg("max_sample_bytes") = kDefaultMaxSampleBytes,
          nb::arg("zarr_level") = 0,
          "Images of a TIFF or OME-Zarr directory, one path per image in dataset order; every image must have the "
          "first one's (C, H, W) or (C, Z, H, W) and dtype, or any height and width under a crop (checked as each "
          "is read).")
      .def("__len__", [](const PyFileImageDataset& self) { return self.dataset->size(); })
      .def("summary", [](const PyFileImageDataset& self) { return file_summary(*self.dataset); })
      .def("sample", &file_sample, nb::arg("row"), nb::arg("transform"), nb::arg("epoch") = 0,
           "One converted sample as a new tensor (the file decoded now).")
      .def(
          "max_pixel_value",
          [](const PyFileImageDataset& self, const std::vector<int64_t>& rows, int num_threads) {
            nb::gil_scoped_release release;
            return self.dataset->max_pixel_value(rows, num_threads);
          },
          nb::arg("rows") = std::vector<int64_t>{}, nb::arg("num_threads") = 1,
          "The largest stored pixel value of `rows` (all images when empty), decoding each file.")
      .def(
          "view",
          [](const PyFileImageDataset&, int64_t) -> nb::object {
            throw nb::value_error("a zero-copy view (dtype=None) is not supported for directory formats: the pixels "
                                  "live in files; ask for a converted sample (a dtype) instead");
          },
          nb::arg("row"))
      .def(
          "rows",
          [](const PyFileImageDataset& self, const TransformOptions& transform) {
            return std::shared_ptr<const RowSource>(std::make_shared<FileImageRows>(self.dataset, transform));
          },
          nb::arg("transform"), "The images as batchable rows under `transform` (validated now).");
}

}  // namespace loaderbench::bindings
