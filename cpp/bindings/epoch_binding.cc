#include "epoch_binding.h"

#include <nanobind/stl/vector.h>

#include <utility>
#include <vector>

namespace nb = nanobind;

namespace loaderbench::bindings {
namespace {

nb::object next_batch(PyEpoch& self, bool with_indices) {
  std::shared_ptr<BatchStream> iterator = self.iterator;  // taken with the GIL held: close() may run meanwhile
  if (!iterator) throw nb::stop_iteration();
  auto batch = std::make_unique<Batch>();
  bool more;
  try {
    nb::gil_scoped_release release;
    more = iterator->next(batch.get());
  } catch (...) {
    release_without_gil(iterator);
    throw;
  }
  release_without_gil(iterator);
  if (!more) {
    self.close();
    throw nb::stop_iteration();
  }
  void* data = batch->buffer->bytes.get();
  const std::vector<int64_t> shape = batch->shape;
  std::vector<int64_t> indices = std::move(batch->indices);
  // The batch (its pool buffer) dies with the tensor; the buffer then returns to the pool.
  Batch* raw = batch.release();
  nb::capsule owner(raw, [](void* p) noexcept { delete static_cast<Batch*>(p); });
  nb::object tensor = nb::cast(make_tensor(data, shape, self.dtype, owner));
  if (!with_indices) return tensor;
  return nb::make_tuple(tensor, nb::cast(indices));
}

nb::dict stats_dict(const PyEpoch& self) {
  const StreamStats stats = self.current();
  nb::dict d;
  d["peak_block_bytes"] = stats.peak_block_bytes;
  d["blocks_read"] = stats.blocks_read;
  d["peak_blocks_in_flight"] = stats.peak_blocks_in_flight;
  d["largest_block_bytes"] = stats.largest_block_bytes;
  return d;
}

}  // namespace

void bind_epoch(nb::module_& m) {
  // Weak-referenceable: the streaming loaders keep a weak set of live epochs and close them at exit, before an I/O
  // thread could ask for the GIL of an interpreter being finalized.
  nb::class_<PyEpoch>(m, "Epoch", nb::is_weak_referenceable())
      .def("next", &next_batch, nb::arg("with_indices") = false,
           "The next batch as a tensor (or (tensor, indices)); raises StopIteration at the end.")
      .def("__len__", [](const PyEpoch& self) { return self.iterator ? self.iterator->num_batches() : 0; })
      .def("stats", &stats_dict,
           "Streaming epochs: peak bytes of blocks held at once, blocks read, peak blocks in flight (so far, or "
           "final once closed).")
      .def("close", &PyEpoch::close, "Stop the worker threads now (also done when the epoch is garbage collected).");
}

}  // namespace loaderbench::bindings
