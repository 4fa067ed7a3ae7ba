// libFuzzer target: SparseMatrix::from_coo_stream on structure-aware COO input (see sparse_case.h), with small
// n_rows/n_cols so that no input can make it allocate much legitimately. Clean outcomes are an ImportError /
// std::exception, or a matrix. Findings besides crashes and sanitizer reports:
//  - without structural perturbation the importer must accept exactly the tables whose entries lie in range, and
//    densify to the reference (duplicates summed in stream order);
//  - an accepted matrix must be valid CSR (indptr from 0, monotonic, ending at nnz; sorted unique columns in range).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "fuzz_input.h"
#include "loaderbench/sparse_matrix.h"
#include "sparse_case.h"

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

bool same(float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }

void check_csr(const loaderbench::SparseMatrix& m, int64_t n_rows, int64_t n_cols) {
  const auto& indptr = m.indptr();
  if (m.rows() != n_rows || m.cols() != n_cols) finding("the matrix has another shape than requested");
  if (indptr.empty() || indptr.front() != 0 || indptr.back() != m.nnz()) finding("indptr does not run from 0 to nnz");
  if (m.data().size() != m.indices().size()) finding("indices and data differ in length");
  for (int64_t r = 0; r < m.rows(); ++r) {
    if (indptr[r + 1] < indptr[r]) finding("indptr decreases");
    for (int64_t k = indptr[r]; k < indptr[r + 1]; ++k) {
      const int32_t c = m.indices()[static_cast<size_t>(k)];
      if (c < 0 || c >= n_cols) finding("a column index out of range survived the import");
      if (k > indptr[r] && c <= m.indices()[static_cast<size_t>(k - 1)]) finding("columns not sorted and unique");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loaderbench;
  using namespace loaderbench::fuzz;
  FuzzInput in(data, size);
  const SparseCase sc = build_sparse_case(in);
  const auto dictionaries = make_dictionary_store();
  if (const char* debug = std::getenv("LOADERBENCH_FUZZ_DEBUG"); debug != nullptr && std::strcmp(debug, "2") == 0) {
    for (size_t b = 0; b < sc.plan.batches.size(); ++b) {
      std::fprintf(stderr, "batch %zu (%zu dictionaries, fail_at %d):\n%s", b, sc.plan.dictionaries[b].size(),
                   sc.plan.fail_at, describe(sc.plan.batches[b]).c_str());
    }
  }

  std::shared_ptr<SparseMatrix> m;
  std::string refused;
  try {
    m = SparseMatrix::from_coo_stream(make_stream(sc.plan, dictionaries), sc.columns, sc.n_rows, sc.n_cols,
                                      sc.nnz_hint);
  } catch (const ImportError& e) {
    refused = std::string("ImportError: ") + e.what();
  } catch (const std::exception& e) {
    refused = std::string("exception: ") + e.what();
  }

  const bool checked = !in.structure_perturbed();
  bool in_range = true;
  for (const CooEntry& e : sc.entries) {
    in_range = in_range && e.row >= 0 && e.row < sc.n_rows && e.col >= 0 && e.col < sc.n_cols;
  }
  if (std::getenv("LOADERBENCH_FUZZ_DEBUG") != nullptr) {  // to read what a reproducer does
    std::fprintf(stderr, "coo: %s, %zu entries %s range, %lldx%lld, %s\n", checked ? "checked" : "perturbed",
                 sc.entries.size(), in_range ? "in" : "out of", static_cast<long long>(sc.n_rows),
                 static_cast<long long>(sc.n_cols), m ? ("accepted nnz " + std::to_string(m->nnz())).c_str() : refused.c_str());
  }
  if (checked && in_range && !m) finding("a valid COO table was refused: " + refused);
  if (checked && !in_range && m) finding("a COO entry outside n_rows x n_cols was accepted");
  if (!m) return 0;
  check_csr(*m, sc.n_rows, sc.n_cols);

  std::vector<float> reference;
  if (checked) {
    reference.assign(static_cast<size_t>(sc.n_rows * sc.n_cols), 0.0f);
    std::vector<bool> set(reference.size(), false);
    for (const CooEntry& e : sc.entries) {
      const auto k = static_cast<size_t>(e.row * sc.n_cols + e.col);
      reference[k] = set[k] ? reference[k] + e.value : e.value;
      set[k] = true;
    }
  }
  std::unique_ptr<float[]> dense(new float[static_cast<size_t>(sc.n_cols)]);  // exactly one row, for ASan
  for (int64_t r = 0; r < m->rows(); ++r) {
    m->densify_row(r, dense.get());
    if (!checked) continue;
    for (int64_t c = 0; c < sc.n_cols; ++c) {
      if (!same(dense[static_cast<size_t>(c)], reference[static_cast<size_t>(r * sc.n_cols + c)])) {
        finding("row " + std::to_string(r) + " densifies differently from the COO entries");
      }
    }
  }
  std::vector<int64_t> all(static_cast<size_t>(m->rows())), crow, col;
  for (int64_t r = 0; r < m->rows(); ++r) all[static_cast<size_t>(r)] = r;
  std::vector<float> values;
  m->gather_csr(all, &crow, &col, &values);
  if (crow != m->indptr() || static_cast<int64_t>(col.size()) != m->nnz()) finding("gather_csr of every row differs");
  try {
    m->gather_csr({m->rows()}, &crow, &col, &values);
    finding("gather_csr accepted a row past the end");
  } catch (const ImportError&) {
  }
  SparseMatrix::from_csr(m->indptr(), m->indices().to_int32(), m->data(), m->cols());  // a valid CSR round-trips
  return 0;
}
