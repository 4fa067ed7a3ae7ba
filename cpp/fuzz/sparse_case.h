// A SOMA-like COO table (soma_dim_0, soma_dim_1, soma_data) built from fuzz decisions: index and value types,
// batches, entries (sorted or not, in range or not), then materialised with fuzz-chosen offsets, lengths,
// validity and dictionaries. Shared by the fuzz target and the seed generator.
#pragma once

#include <cstdint>
#include <vector>

#include "fuzz_arrow.h"
#include "fuzz_input.h"
#include "loaderbench/sparse_matrix.h"

namespace loaderbench::fuzz {

struct CooEntry {
  int64_t row = 0, col = 0;  // as the core reads them from their Arrow type
  float value = 0.0f;        // as the core converts it
};

struct SparseCase {
  StreamPlan plan;
  CooColumns columns;  // the names the importer is asked for
  int64_t n_rows = 1, n_cols = 1, nnz_hint = 0;  // small, so no input can make it allocate much legitimately
  std::vector<CooEntry> entries;                  // in stream order
};

/// Builds the table; unless `in.structure_perturbed()`, the importer must accept it exactly when every entry
/// lies inside n_rows x n_cols.
SparseCase build_sparse_case(FuzzInput& in);

}  // namespace loaderbench::fuzz
