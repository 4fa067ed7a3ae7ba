// libFuzzer target: the OME-Arrow importer, the pixel index and write_sample on structure-aware Arrow input
// (see fuzz_input.h and fuzz_arrow.h). Clean outcomes are an ImportError / std::exception from the import, or
// rows that import and then write. A crash, a sanitizer report, or one of the checks below is a finding:
//  - a pristine input (nothing perturbed) must import and read back pixel-exact;
//  - ImageDataset::from_stream and import_ome_stream accept and refuse the same tables, with the same summary;
//  - write_sample writes every byte of its sample (run twice over differently pre-filled buffers).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "fuzz_input.h"
#include "loaderbench/image_dataset.h"
#include "loaderbench/row_source.h"
#include "loaderbench/sample_writer.h"
#include "ome_case.h"

namespace loaderbench::fuzz {
namespace {

constexpr int64_t kMaxSampleBytes = int64_t{16} << 20;  // keeps legitimately large images (zstd bombs) fast

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

float declared_max(PixelType type) {  // an integer type's maximum (signed data spans [-1, 1]), floats as they are
  switch (type) {
    case PixelType::kUint8: return 255.0f;
    case PixelType::kUint16: return 65535.0f;
    case PixelType::kInt16: return 32767.0f;
    case PixelType::kInt32: return 2147483647.0f;
    case PixelType::kFloat32: return 1.0f;
  }
  return 1.0f;
}

/// The sample write_sample should produce, computed independently from the expected pixels.
std::vector<uint8_t> reference_sample(const ExpectedImage& e, const TransformOptions& t, const SampleAugment& aug) {
  const int64_t out_h = t.crop_height ? t.crop_height : e.height, out_w = t.crop_width ? t.crop_width : e.width;
  const int size = output_size(t.output);
  std::vector<uint8_t> out(static_cast<size_t>(e.channels * e.depth * out_h * out_w * size));
  for (int64_t c = 0; c < e.channels; ++c) {
    for (int64_t z = 0; z < e.depth; ++z) {
      for (int64_t oy = 0; oy < out_h; ++oy) {
        for (int64_t ox = 0; ox < out_w; ++ox) {
          const int64_t y = aug.crop_y + (aug.vflip ? out_h - 1 - oy : oy);
          const int64_t x = aug.crop_x + (aug.hflip ? out_w - 1 - ox : ox);
          float v = e.pixels[static_cast<size_t>(((c * e.depth + z) * e.height + y) * e.width + x)];
          v = v / (t.scale ? declared_max(e.declared) : 1.0f);
          if (!t.mean.empty() || !t.std.empty()) {
            const float mean = t.mean.empty() ? 0.0f : t.mean[t.mean.size() == 1 ? 0 : static_cast<size_t>(c)];
            const float sd = t.std.empty() ? 1.0f : t.std[t.std.size() == 1 ? 0 : static_cast<size_t>(c)];
            v = (v - mean) / sd;
          }
          uint8_t* dst = out.data() + (((c * e.depth + z) * out_h + oy) * out_w + ox) * size;
          if (t.output == OutputType::kFloat32) {
            std::memcpy(dst, &v, 4);
          } else if (t.output == OutputType::kFloat16) {
            const uint16_t h = float_to_half(v);
            std::memcpy(dst, &h, 2);
          } else {
            *dst = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
          }
        }
      }
    }
  }
  return out;
}

std::vector<TransformOptions> transforms(FuzzInput& in) {
  std::vector<TransformOptions> out(4);
  out[1].output = OutputType::kUint8;
  out[2].output = OutputType::kFloat16;
  out[2].scale = in.raw(1) % 2 == 0;
  out[2].random_hflip = out[2].random_vflip = true;
  out[2].seed = in.raw(1);
  out[3].crop_height = 1 + static_cast<int32_t>(in.raw(1) % 16);
  out[3].crop_width = 1 + static_cast<int32_t>(in.raw(1) % 16);
  out[3].random_crop = in.raw(1) % 2 == 0;
  out[3].mean = {0.5f};
  out[3].std = {0.25f};
  if (in.raw(1) % 2) {
    out[3].mean = {0.1f, 0.2f, 0.3f};
    out[3].std = {1.0f, 2.0f, 4.0f};
  }
  return out;
}

bool same_summary(const ImportSummary& a, const ImportSummary& b) {
  return a.rows == b.rows && a.batches == b.batches && a.declared_types == b.declared_types &&
         a.stored_types == b.stored_types && a.compressions == b.compressions && a.has_planes == b.has_planes &&
         a.has_chunks == b.has_chunks && a.chunk_encoding == b.chunk_encoding && a.shapes == b.shapes &&
         a.planes == b.planes && a.chunks == b.chunks && a.payload_bytes == b.payload_bytes && a.voxels == b.voxels;
}

void write_rows(const ImageDataset& ds, const OmeCase& oc, const std::vector<TransformOptions>& options, bool pristine) {
  for (int64_t row = 0; row < ds.size(); ++row) {
    const ImageLocation& image = ds.image(row);
    const std::string where = "row " + std::to_string(row);
    if (pristine) {
      const ExpectedImage& e = oc.images.at(static_cast<size_t>(row));
      if (image.channels != e.channels || image.depth != e.depth || image.height != e.height ||
          image.width != e.width || image.declared != e.declared || image.stored != e.stored) {
        finding(where + ": the pixel index records another shape or dtype than the table declares");
      }
    }
    for (const TransformOptions& t : options) {
      try {
        validate_transform(image, t);
      } catch (const std::invalid_argument&) {
        continue;
      }
      const std::vector<int64_t> shape = sample_shape(image, t);
      int64_t bytes = output_size(t.output);
      for (int64_t d : shape) {
        if (d <= 0 || __builtin_mul_overflow(bytes, d, &bytes)) finding(where + ": sample_shape is not positive");
      }
      if (bytes > 4 * kMaxSampleBytes) finding(where + ": a sample larger than max_sample_bytes was accepted");
      const SampleAugment aug = draw_augment(t, image, 0, row);
      // Exactly sample-sized heap buffers, so ASan sees any write past the sample.
      std::unique_ptr<uint8_t[]> first(new uint8_t[static_cast<size_t>(bytes)]);
      std::unique_ptr<uint8_t[]> second(new uint8_t[static_cast<size_t>(bytes)]);
      std::memset(first.get(), 0x00, static_cast<size_t>(bytes));
      std::memset(second.get(), 0xFF, static_cast<size_t>(bytes));
      std::vector<uint8_t> scratch;
      std::string error;
      int failures = 0;
      for (uint8_t* out : {first.get(), second.get()}) {
        try {
          write_sample(ds.index(), row, t, aug, out, scratch);
        } catch (const ImportError& e) {  // corrupt data behind a valid frame header: found when decoded
          error = e.what();
          ++failures;
        }
      }
      if (failures == 1) finding(where + ": write_sample failed once and succeeded once");
      if (failures == 2) {
        if (pristine) finding(where + ": a valid chunk failed to decode: " + error);
        continue;
      }
      if (std::memcmp(first.get(), second.get(), static_cast<size_t>(bytes)) != 0) {
        finding(where + ": write_sample left part of the sample unwritten (the pieces do not cover the image)");
      }
      if (pristine) {
        const std::vector<uint8_t> expected = reference_sample(oc.images.at(static_cast<size_t>(row)), t, aug);
        if (expected.size() != static_cast<size_t>(bytes) || std::memcmp(expected.data(), first.get(), expected.size()) != 0) {
          finding(where + ": the sample differs from the pixels the table holds");
        }
      }
    }
  }
}

}  // namespace
}  // namespace loaderbench::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loaderbench;
  using namespace loaderbench::fuzz;
  FuzzInput in(data, size);
  const OmeCase oc = build_ome_case(in);
  const std::vector<TransformOptions> options = transforms(in);
  const bool pristine = in.pristine();
  const auto dictionaries = make_dictionary_store();  // outlives the dataset, which keeps the batches
  if (const char* debug = std::getenv("LOADERBENCH_FUZZ_DEBUG"); debug != nullptr && std::strcmp(debug, "2") == 0) {
    for (size_t b = 0; b < oc.plan.batches.size(); ++b) {
      std::fprintf(stderr, "batch %zu (%zu dictionaries, fail_at %d):\n%s", b, oc.plan.dictionaries[b].size(),
                   oc.plan.fail_at, describe(oc.plan.batches[b]).c_str());
    }
  }

  std::shared_ptr<ImageDataset> dataset;
  std::string refused;
  try {
    dataset = ImageDataset::from_stream(make_stream(oc.plan, dictionaries), oc.column, kMaxSampleBytes);
  } catch (const ImportError& e) {
    refused = std::string("ImportError: ") + e.what();
  } catch (const std::exception& e) {
    refused = std::string("exception: ") + e.what();
  }
  ImportSummary summary;
  bool summarised = false;
  try {
    summary = import_ome_stream(make_stream(oc.plan, dictionaries), oc.column, kMaxSampleBytes);
    summarised = true;
  } catch (const std::exception&) {
  }

  if (std::getenv("LOADERBENCH_FUZZ_DEBUG") != nullptr) {  // to read what a reproducer does
    std::fprintf(stderr, "ome: %s, %lld rows built, %s\n", pristine ? "pristine" : "perturbed",
                 static_cast<long long>(oc.rows),
                 dataset ? ("accepted " + std::to_string(dataset->size()) + " rows").c_str() : refused.c_str());
  }
  if (pristine && oc.rows > 0 && !dataset) finding("a valid table was refused: " + refused);
  if (pristine && oc.rows == 0 && dataset) finding("an empty table was accepted");
  if (static_cast<bool>(dataset) != summarised) {
    finding(std::string("from_stream ") + (dataset ? "accepted" : "refused (" + refused + ")") +
            " a table that import_ome_stream " + (summarised ? "accepted" : "refused"));
  }
  if (!dataset) return 0;
  if (!same_summary(dataset->summary(), summary)) finding("from_stream and import_ome_stream summarise differently");
  if (pristine && dataset->size() != oc.rows) finding("the dataset has another number of rows than the table");
  for (const TransformOptions& t : options) {
    try {
      ImageRows rows(dataset, t);
      (void)rows.sample_bytes();
    } catch (const std::invalid_argument&) {
    }
  }
  write_rows(*dataset, oc, options, pristine);
  return 0;
}
