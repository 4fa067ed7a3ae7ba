// An epoch as Python sees it, shared by the in-memory and the streaming loaders: batches leave as torch tensors by
// DLPack (a capsule owns each pool buffer and returns it to the pool when the tensor dies).
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "loaderbench/batch_loader.h"
#include "tensor_helpers.h"

namespace loaderbench::bindings {

/// What a streaming epoch measured about its blocks (zero for in-memory epochs).
struct StreamStats {
  int64_t peak_block_bytes = 0;
  int64_t blocks_read = 0;
  int64_t peak_blocks_in_flight = 0;
  int64_t largest_block_bytes = 0;
};

/// An epoch in progress. Each next() holds its own reference to the iterator, so close() (or garbage collection)
/// from another thread cancels it without destroying it under that next(); the last reference joins the threads,
/// always with the GIL released.
struct PyEpoch {
  std::shared_ptr<const void> keep_alive;  // what the iterator reads from, dropped after it
  std::shared_ptr<BatchStream> iterator;
  nanobind::dlpack::dtype dtype;
  std::function<StreamStats()> stats;  // read while the iterator lives; kept in `last` once it is closed
  StreamStats last;
  ~PyEpoch() { close(); }
  void close() {
    if (iterator) {
      iterator->cancel();
      if (stats) last = stats();
    }
    release_without_gil(iterator);
    release_without_gil(keep_alive);
  }
  StreamStats current() const { return iterator && stats ? stats() : last; }
};

void bind_epoch(nanobind::module_& m);

}  // namespace loaderbench::bindings
