// loaderbench._core: one NB_MODULE; each subject binds itself from its own file.
#include <nanobind/nanobind.h>

namespace nb = nanobind;

namespace loaderbench::bindings {
void bind_importer(nb::module_& m);
void bind_epoch(nb::module_& m);
void bind_loader(nb::module_& m);
void bind_streaming(nb::module_& m);
void bind_file_images(nb::module_& m);
void bind_sparse(nb::module_& m);
void bind_codec(nb::module_& m);
}  // namespace loaderbench::bindings

NB_MODULE(_core, m) {
  m.doc() = "loaderbench native core: Arrow import and validation, the threaded image loader";
#ifdef LOADERBENCH_VERSION
  m.attr("__version__") = LOADERBENCH_VERSION;
#endif
  loaderbench::bindings::bind_importer(m);
  loaderbench::bindings::bind_epoch(m);
  loaderbench::bindings::bind_loader(m);
  loaderbench::bindings::bind_file_images(m);  // after bind_loader: returns its RowSource
  loaderbench::bindings::bind_sparse(m);
  loaderbench::bindings::bind_streaming(m);  // after bind_loader: uses its options and pool
  loaderbench::bindings::bind_codec(m);
}
