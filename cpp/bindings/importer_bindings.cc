// Python face of the OME-Arrow importer: validate a stream and describe what it holds.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include "arrow_capsule.h"
#include "loaderbench/ome_importer.h"

namespace nb = nanobind;

namespace loaderbench::bindings {
namespace {

nb::dict summary_to_dict(const ImportSummary& s) {
  nb::dict out;
  out["column"] = s.column;
  out["rows"] = s.rows;
  out["batches"] = s.batches;
  auto to_list = [](const std::set<std::string>& values) {
    nb::list list;
    for (const auto& v : values) list.append(v);
    return list;
  };
  out["declared_types"] = to_list(s.declared_types);
  out["stored_types"] = to_list(s.stored_types);
  out["compressions"] = to_list(s.compressions);
  out["has_planes"] = s.has_planes;
  out["has_chunks"] = s.has_chunks;
  out["chunk_encoding"] = s.chunk_encoding;
  nb::list shapes;
  for (const auto& [shape, count] : s.shapes) {
    nb::dict entry;
    entry["t"] = shape[0];
    entry["c"] = shape[1];
    entry["z"] = shape[2];
    entry["y"] = shape[3];
    entry["x"] = shape[4];
    entry["rows"] = count;
    shapes.append(entry);
  }
  out["shapes"] = shapes;
  out["planes"] = s.planes;
  out["chunks"] = s.chunks;
  out["payload_bytes"] = s.payload_bytes;
  out["voxels"] = s.voxels;
  return out;
}

}  // namespace

void bind_importer(nb::module_& m) {
  nb::exception<ImportError>(m, "ArrowImportError", PyExc_ValueError);
  m.attr("DEFAULT_MAX_SAMPLE_BYTES") = kDefaultMaxSampleBytes;

  m.def(
      "inspect_arrow",
      [](nb::handle source, const std::string& column, int64_t max_sample_bytes) {
        StreamOwner stream = take_arrow_stream(source);
        ImportSummary summary;
        {
          // Producers that need Python (a generator-backed reader) take the GIL themselves.
          nb::gil_scoped_release release;
          summary = import_ome_stream(std::move(stream), column, max_sample_bytes);
        }
        return summary_to_dict(summary);
      },
      nb::arg("source"), nb::arg("column") = "ome_image", nb::arg("max_sample_bytes") = kDefaultMaxSampleBytes,
      "Validate every row of an OME-Arrow column read through the Arrow C Stream Interface (the same "
      "validation as the native loader) and return a summary dict (rows, shapes, dtypes, layout, bytes). Raises ArrowImportError naming the row and field.");
}

}  // namespace loaderbench::bindings
