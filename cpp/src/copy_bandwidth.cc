#include "loaderbench/copy_bandwidth.h"

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace loaderbench {

double copy_bandwidth(size_t bytes, int threads, int repeats) {
  if (bytes == 0 || threads < 1 || repeats < 1) throw std::invalid_argument("bytes, threads and repeats must be > 0");
  std::unique_ptr<uint8_t[]> src(new uint8_t[bytes]);
  std::unique_ptr<uint8_t[]> dst(new uint8_t[bytes]);
  std::memset(src.get(), 1, bytes);
  std::memset(dst.get(), 2, bytes);
  const size_t slice = (bytes + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
  std::vector<double> rates;
  for (int r = 0; r < repeats + 1; ++r) {  // the first round warms caches and page tables, and is dropped
    std::barrier start(threads + 1);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t begin = std::min(bytes, slice * static_cast<size_t>(t));
        const size_t end = std::min(bytes, begin + slice);
        start.arrive_and_wait();
        std::memcpy(dst.get() + begin, src.get() + begin, end - begin);
      });
    }
    const auto t0 = std::chrono::steady_clock::now();
    start.arrive_and_wait();
    for (std::thread& th : pool) th.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) rates.push_back(2.0 * static_cast<double>(bytes) / seconds);
  }
  std::nth_element(rates.begin(), rates.begin() + static_cast<long>(rates.size() / 2), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace loaderbench
