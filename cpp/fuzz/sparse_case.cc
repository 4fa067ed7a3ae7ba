#include "sparse_case.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

namespace loaderbench::fuzz {
namespace {

constexpr const char* kIntFormats[] = {"l", "i", "s", "c", "C", "S", "I", "L"};

}  // namespace

SparseCase build_sparse_case(FuzzInput& in) {
  SparseCase sc;
  uint64_t prng_state = 0x5EED;  // what the seed generator records for raw draws
  auto draw = [&](int n) {
    prng_state = prng_state * 6364136223846793005ull + 1442695040888963407ull;
    return in.raw(n, prng_state >> 33);
  };
  sc.n_rows = 1 + static_cast<int64_t>(draw(1) % 64);
  sc.n_cols = 1 + static_cast<int64_t>(draw(1) % 64);
  sc.nnz_hint = std::array<int64_t, 4>{0, 1, 16, 1000}[in.choose(4, "nnz_hint")];
  const std::string row_format = kIntFormats[in.choose(8, "row_format")];
  const std::string col_format = kIntFormats[in.choose(8, "col_format")];
  const std::string value_format = std::array{"f", "g", "l", "i", "S"}[in.choose(5, "value_format")];
  const bool sorted = in.choose(2, "sorted") == 0;
  const bool extra_column = in.choose(2, "extra_column") == 1;
  const uint32_t bad_names = in.rare(3);  // ask for a missing column, leave one out, or give a string value column
  if (bad_names) in.perturb_structure();
  if (bad_names == 1) sc.columns.col = "soma_dim_2";

  const int batches = 1 + static_cast<int>(in.choose(3, "batches"));
  for (int b = 0; b < batches; ++b) {
    const auto count = static_cast<int64_t>(draw(1) % 40);
    struct Drawn {
      int64_t row, col;
      std::vector<uint8_t> value;  // encoded as value_format
      float read;
    };
    std::vector<Drawn> drawn;
    for (int64_t k = 0; k < count; ++k) {
      Drawn d;
      d.row = as_format(row_format, in.integer(static_cast<int64_t>(draw(1)) % sc.n_rows));
      d.col = as_format(col_format, in.integer(static_cast<int64_t>(draw(1)) % sc.n_cols));
      const auto small = static_cast<int8_t>(draw(1));
      if (value_format == "f" || value_format == "g") {
        double v = small / 4.0;
        if (in.rare(1)) {  // any bit pattern: NaN, infinities, subnormals, out of float range
          if (value_format == "f") {
            const auto bits = static_cast<uint32_t>(in.raw(4));
            float f;
            std::memcpy(&f, &bits, 4);
            v = f;
          } else {
            const uint64_t bits = in.raw(8);
            std::memcpy(&v, &bits, 8);
          }
        }
        if (value_format == "f") {
          const auto f = static_cast<float>(v);
          d.value.resize(4);
          std::memcpy(d.value.data(), &f, 4);
          d.read = f;
        } else {
          d.value.resize(8);
          std::memcpy(d.value.data(), &v, 8);
          d.read = static_cast<float>(v);
        }
      } else {
        const int64_t v = as_format(value_format, in.integer(small));
        const int width = format_width(value_format);
        d.value.resize(static_cast<size_t>(width));
        for (int i = 0; i < width; ++i) d.value[static_cast<size_t>(i)] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
        d.read = static_cast<float>(static_cast<double>(v));
      }
      drawn.push_back(std::move(d));
    }
    if (sorted) std::stable_sort(drawn.begin(), drawn.end(), [](const Drawn& a, const Drawn& b) { return a.row < b.row; });
    std::vector<int64_t> rows, cols;
    std::vector<uint8_t> values;
    std::vector<std::string> ids;
    for (const Drawn& d : drawn) {
      rows.push_back(d.row);
      cols.push_back(d.col);
      values.insert(values.end(), d.value.begin(), d.value.end());
      ids.push_back("cell" + std::to_string(d.row));
      sc.entries.push_back({d.row, d.col, d.read});
    }
    std::vector<Column> fields{integers(row_format, "soma_dim_0", rows)};
    if (bad_names != 2) fields.push_back(integers(col_format, "soma_dim_1", cols));
    fields.push_back(bad_names == 3 ? strings("u", "soma_data", ids) : raw_values(value_format, "soma_data", values));
    if (extra_column) fields.push_back(strings("u", "obs_id", ids));
    std::vector<DictionaryPlacement> dictionaries;
    sc.plan.batches.push_back(materialize(structure("", std::move(fields)), in, &dictionaries));
    sc.plan.dictionaries.push_back(std::move(dictionaries));
  }
  return sc;
}

}  // namespace loaderbench::fuzz
