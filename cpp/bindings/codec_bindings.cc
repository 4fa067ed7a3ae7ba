// Python face of the codec roofline: a tight zstd decompression loop over compressed chunk payloads given in place
// (a binary array's data and offsets buffers, e.g. pyarrow's), so benchmarks compare the loader with its codec.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <span>
#include <stdexcept>

#include "loaderbench/codec_bandwidth.h"

namespace nb = nanobind;

namespace loaderbench::bindings {

using Bytes = nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Offsets = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

void bind_codec(nb::module_& m) {
  m.def("zstd_bandwidth_available", &zstd_bandwidth_available, "Whether this build of the core has zstd.");
  m.def(
      "zstd_decompress_bandwidth",
      [](Bytes data, Offsets offsets, int threads, int repeats) {
        CodecBandwidth bw;
        {
          nb::gil_scoped_release release;  // the arrays stay referenced by this call's arguments
          try {
            bw = zstd_decompress_bandwidth(data.data(), data.size(),
                                           std::span<const int64_t>(offsets.data(), offsets.size()), threads,
                                           repeats);
          } catch (const std::invalid_argument& e) {
            throw nb::value_error(e.what());
          }
        }
        nb::list rates;
        for (double rate : bw.output_bytes_per_s) rates.append(rate);
        nb::dict d;
        d["output_bytes_per_s"] = rates;
        d["chunks"] = bw.chunks;
        d["input_bytes"] = bw.input_bytes;
        d["output_bytes"] = bw.output_bytes;
        d["passes_per_round"] = bw.passes_per_round;
        d["threads"] = bw.threads;
        return d;
      },
      nb::arg("data"), nb::arg("offsets"), nb::arg("threads"), nb::arg("repeats") = 5,
      "zstd roofline: decompress the frames data[offsets[i]:offsets[i+1]] with `threads` threads (one reused "
      "ZSTD_DCtx and output buffer each), one warm-up round then `repeats` timed rounds; a dict with "
      "`output_bytes_per_s` (decompressed bytes per second, one per round), `chunks`, `input_bytes`, "
      "`output_bytes` (one pass), `passes_per_round`, `threads`. ValueError for a chunk that is not a zstd frame "
      "recording its content size, or for bad offsets.");
}

}  // namespace loaderbench::bindings
