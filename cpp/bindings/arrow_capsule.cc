#include "arrow_capsule.h"

#include <string>

namespace nb = nanobind;

namespace loaderbench::bindings {

StreamOwner take_arrow_stream(nb::handle source) {
  if (!nb::hasattr(source, "__arrow_c_stream__")) {
    const std::string type = nb::type_name(source.type()).c_str();
    throw nb::type_error(("expected an object with __arrow_c_stream__ (pyarrow Table or RecordBatchReader, "
                          "DuckDB relation, ...), got " + type).c_str());
  }
  nb::object capsule = source.attr("__arrow_c_stream__")();
  auto* stream = static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(capsule.ptr(), "arrow_array_stream"));
  if (stream == nullptr) throw nb::python_error();
  if (stream->release == nullptr) throw nb::value_error("the Arrow stream capsule was already consumed");
  return StreamOwner(stream);
}

}  // namespace loaderbench::bindings
