// An OME-Arrow table built from fuzz decisions: the layout (planes, chunks as pixel lists, chunks as raw or
// zstd/lz4 byte payloads), the Arrow types of every field, the number of batches and rows, each image's shape
// and every integer in it; then materialised with fuzz-chosen offsets, lengths, validity and dictionaries.
// Shared by the fuzz target and the seed generator (which records the decisions of the plain variants).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_arrow.h"
#include "fuzz_input.h"
#include "loaderbench/pixel_index.h"

namespace loaderbench::fuzz {

/// What a pristine row must read back as.
struct ExpectedImage {
  int32_t channels = 1, depth = 1, height = 1, width = 1;
  PixelType declared = PixelType::kUint16;
  PixelType stored = PixelType::kUint16;
  std::vector<float> pixels;  // (C, Z, H, W), the stored values as float
};

struct OmeCase {
  StreamPlan plan;
  std::string column = "ome_image";
  int64_t rows = 0;                    // rows over all batches, as built
  std::vector<ExpectedImage> images;   // one per row
};

/// Builds the table; `in.pristine()` afterwards says whether it is the plain valid one.
OmeCase build_ome_case(FuzzInput& in);

}  // namespace loaderbench::fuzz
