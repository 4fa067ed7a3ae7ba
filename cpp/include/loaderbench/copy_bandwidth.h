// A memcpy roofline: how many bytes per second this machine moves (read + write) with N threads, measured in
// the same process as the loader so that "fraction of memcpy speed" compares like with like.
#pragma once

#include <cstddef>

namespace loaderbench {

/// Median over `repeats` of (2 * bytes) / seconds for copying `bytes` split across `threads` threads
/// (each thread copies its own contiguous slice with std::memcpy). Buffers are touched before timing.
double copy_bandwidth(size_t bytes, int threads, int repeats);

}  // namespace loaderbench
