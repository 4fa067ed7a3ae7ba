// Writes the fuzzers' seed corpora: one valid input per layout and per type/shape variant, recorded by running
// the same builders the fuzz targets replay (so no binary seed is ever committed). Usage: make_seeds DIR
// (writes DIR/ome_import_fuzzer/* and DIR/sparse_coo_fuzzer/*).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "ome_case.h"
#include "sparse_case.h"

namespace {

using Forced = std::map<std::string, uint32_t>;

const std::vector<Forced> kOmeSeeds = {
    {},  // planes of uint16, one channel, one batch of two rows
    {{"layout", 1}},
    {{"layout", 2}},
    {{"layout", 3}},
    {{"layout", 4}},
    {{"layout", 5}},
    {{"layout", 6}},
    {{"layout", 2}, {"codec", 1}},
    {{"layout", 2}, {"codec", 2}},
    {{"layout", 2}, {"codec", 2}, {"lz4_content_size", 1}},
    {{"layout", 2}, {"codec", 2}, {"lz4_content_size", 2}},  // frames with and without the content size
    {{"layout", 2}, {"payload", 1}},
    {{"layout", 2}, {"codec", 1}, {"payload", 1}},
    {{"layout", 2}, {"codec", 2}, {"payload", 1}},
    {{"layout", 2}, {"codec", 2}, {"payload", 1}, {"lz4_content_size", 1}},
    {{"layout", 4}, {"codec", 1}, {"payload", 1}, {"size_c", 1}},
    {{"layout", 2}, {"codec", 1}, {"chunking", 3}, {"size_z", 2}, {"size_y", 5}},
    {{"layout", 2}, {"compression_field", 1}},
    {{"layout", 2}, {"none_name", 1}, {"dtype_field", 1}},
    {{"layout", 2}, {"pixel_type", 1}, {"codec", 1}},
    {{"layout", 2}, {"pixel_type", 2}, {"declared_alias", 1}, {"dtype_field", 1}},
    {{"layout", 2}, {"string_format", 1}, {"binary_format", 1}},
    {{"pixel_type", 1}},
    {{"pixel_type", 2}},
    {{"declared_alias", 1}},
    {{"pixel_type", 2}, {"declared_alias", 1}, {"layout", 3}},
    {{"pixel_type", 3}},  // int16: negative values too
    {{"pixel_type", 4}, {"layout", 3}},  // int32, planes and chunks
    {{"layout", 2}, {"pixel_type", 3}, {"codec", 1}},
    {{"layout", 4}, {"pixel_type", 4}, {"codec", 2}, {"size_c", 1}},
    {{"size_c", 2}, {"size_z", 1}},
    {{"plane_order", 1}, {"size_c", 1}, {"size_z", 1}},
    {{"plane_order", 2}, {"size_c", 1}, {"size_z", 2}},
    {{"layout", 1}, {"chunking", 1}, {"size_z", 2}},
    {{"layout", 1}, {"chunking", 2}, {"size_y", 6}, {"size_x", 7}},
    {{"layout", 1}, {"chunking", 3}, {"size_z", 2}, {"size_c", 1}, {"chunk_order", 1}},
    {{"batches", 2}},
    {{"batches", 1}, {"rows", 2}},
    {{"rows", 3}},  // an empty table: must be refused
    {{"int_format", 2}},
    {{"int_format", 7}, {"layout", 1}},
    {{"int_format", 3}, {"layout", 2}},
    {{"list_format", 1}, {"pixels_list", 1}, {"layout", 3}},
    {{"pixels_list", 2}},
    {{"pixels_list", 2}, {"size_c", 1}, {"batches", 1}},
    {{"string_format", 1}},
    {{"row_id", 1}},
    {{"vary_shape", 1}, {"row_y", 1}, {"row_x", 2}},
    {{"vary_shape", 1}, {"row_y", 2}, {"layout", 2}, {"codec", 1}},
    {{"string_base", 1}, {"list_base", 2}, {"layout", 4}},
    // Byte chunks at odd offsets of the binary buffer (its offsets start at 3): payloads carry no alignment.
    {{"string_base", 1}, {"layout", 2}},
    {{"string_base", 1}, {"layout", 2}, {"pixel_type", 2}, {"codec", 0}},
};

const std::vector<Forced> kSparseSeeds = {
    {},
    {{"sorted", 1}},
    {{"batches", 2}},
    {{"batches", 1}, {"sorted", 1}},
    {{"row_format", 1}, {"col_format", 2}},
    {{"row_format", 6}, {"col_format", 7}, {"value_format", 1}},
    {{"row_format", 3}, {"col_format", 4}, {"value_format", 2}},
    {{"value_format", 3}, {"nnz_hint", 2}},
    {{"value_format", 4}, {"nnz_hint", 3}, {"sorted", 1}},
    {{"nnz_hint", 1}, {"extra_column", 1}},
    {{"string_base", 2}, {"extra_column", 1}, {"batches", 2}},
};

template <typename Build>
int write_seeds(const std::filesystem::path& dir, const std::vector<Forced>& seeds, const Build& build) {
  std::filesystem::create_directories(dir);
  int k = 0;
  for (const Forced& forced : seeds) {
    std::vector<uint8_t> bytes;
    loaderbench::fuzz::FuzzInput recorder(&bytes, forced);
    build(recorder);
    loaderbench::fuzz::FuzzInput replay(bytes.data(), bytes.size());
    build(replay);
    if (!replay.pristine()) {
      std::fprintf(stderr, "make_seeds: seed %d for %s does not replay as a valid input\n", k, dir.c_str());
      return 1;
    }
    char name[32];
    std::snprintf(name, sizeof(name), "seed-%03d", k++);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                      static_cast<std::streamsize>(bytes.size()));
  }
  std::printf("make_seeds: %d seeds in %s\n", k, dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  return write_seeds(dir / "ome_import_fuzzer", kOmeSeeds, [](auto& in) { loaderbench::fuzz::build_ome_case(in); }) |
         write_seeds(dir / "sparse_coo_fuzzer", kSparseSeeds, [](auto& in) { loaderbench::fuzz::build_sparse_case(in); });
}
