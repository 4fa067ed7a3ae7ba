// Splitting a loop over rows among a few short-lived threads, for one-off passes over a dataset (preloading,
// scanning for the largest value) that are not worth the batch loader's machinery.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace loaderbench {

/// Runs body(first, last) over [0, n) split among up to `threads` threads; rethrows the first error after joining.
template <typename Body>
void parallel_ranges(int64_t n, int threads, const Body& body) {
  const int64_t workers = std::clamp<int64_t>(threads, 1, std::max<int64_t>(n, 1));
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](int64_t w) {
    try {
      body(n * w / workers, n * (w + 1) / workers);
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> started;
  try {
    for (int64_t w = 1; w < workers; ++w) started.emplace_back(run, w);
  } catch (const std::system_error&) {
    for (std::thread& t : started) t.join();
    throw;
  }
  run(0);
  for (std::thread& t : started) t.join();
  if (error) std::rethrow_exception(error);
}

/// The largest of value(i, scratch) over i in [0, n), on up to `threads` threads, each with its own scratch buffer;
/// -inf when n is 0. Errors as parallel_ranges.
template <typename Value>
double parallel_max(int64_t n, int threads, const Value& value) {
  std::mutex mutex;
  double widest = -std::numeric_limits<double>::infinity();
  parallel_ranges(n, threads, [&](int64_t first, int64_t last) {
    std::vector<uint8_t> scratch;
    double local = -std::numeric_limits<double>::infinity();
    for (int64_t i = first; i < last; ++i) local = std::max(local, value(i, scratch));
    std::lock_guard lock(mutex);
    widest = std::max(widest, local);
  });
  return widest;
}

}  // namespace loaderbench
