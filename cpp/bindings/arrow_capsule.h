// Taking an ArrowArrayStream out of any Python object that implements the Arrow PyCapsule interface.
#pragma once

#include <nanobind/nanobind.h>

#include "loaderbench/arrow_owners.h"

namespace loaderbench::bindings {

/// Calls `source.__arrow_c_stream__()` and moves the stream out of the capsule (the capsule's copy is
/// marked released, so it is consumed exactly once). Raises TypeError if the object is not a stream source.
StreamOwner take_arrow_stream(nanobind::handle source);

}  // namespace loaderbench::bindings
