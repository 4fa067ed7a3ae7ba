// A cell x gene count matrix in CSR, built once from SOMA-like Arrow COO (soma_dim_0, soma_dim_1, soma_data) or
// from CSR arrays, and the row source that densifies its rows into float32 batches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loaderbench/arrow_owners.h"
#include "loaderbench/row_source.h"

namespace loaderbench {

struct CooColumns {
  std::string row = "soma_dim_0";
  std::string col = "soma_dim_1";
  std::string value = "soma_data";
};

/// Most cells a matrix may have unless the caller raises it: CSR keeps one int64 per cell, so a corrupt cell id
/// must not make it allocate gigabytes before anything fails (2^28 cells = a 2 GiB row index).
inline constexpr int64_t kDefaultMaxCells = int64_t{1} << 28;

/// A CSR matrix's gene (column) indices: 2 bytes each when every index fits (n_genes <= 65,536, as in most
/// cell x gene matrices), else 4. The indices are 40 % of the matrix in memory and of what densifying reads.
class GeneIndices {
 public:
  static constexpr int64_t kNarrowLimit = int64_t{1} << 16;  // n_genes up to this fit in uint16

  explicit GeneIndices(bool narrow = false) : narrow_(narrow) {}
  bool narrow() const { return narrow_; }
  size_t size() const { return narrow_ ? u16_.size() : i32_.size(); }
  size_t capacity() const { return narrow_ ? u16_.capacity() : i32_.capacity(); }
  void reserve(size_t n) { narrow_ ? u16_.reserve(n) : i32_.reserve(n); }
  void resize(size_t n) { narrow_ ? u16_.resize(n) : i32_.resize(n); }
  /// `c` must lie in [0, kNarrowLimit) when narrow (the builders check the gene range first).
  void push_back(int32_t c) { narrow_ ? u16_.push_back(static_cast<uint16_t>(c)) : i32_.push_back(c); }
  int32_t operator[](size_t k) const { return narrow_ ? int32_t{u16_[k]} : i32_[k]; }
  void set(size_t k, int32_t c) { narrow_ ? void(u16_[k] = static_cast<uint16_t>(c)) : void(i32_[k] = c); }
  /// Calls `f` with the stored vector (`std::vector<uint16_t>` or `std::vector<int32_t>`), for typed inner loops.
  template <class F>
  decltype(auto) visit(F&& f) const {
    return narrow_ ? f(u16_) : f(i32_);
  }
  std::vector<int32_t> to_int32() const;
  /// Stores the indices in 2 bytes each if every one is below kNarrowLimit (a copy; the wide array is freed).
  void narrow_if_possible();

 private:
  bool narrow_;
  std::vector<uint16_t> u16_;
  std::vector<int32_t> i32_;
};

class SparseMatrix {
 public:
  /// Consumes a COO stream (any integer index columns, float32/float64 values, no nulls). Rows need not be
  /// sorted (sorted input is converted in one pass). `n_rows`/`n_cols` of 0 mean "max index + 1"; given, an
  /// index outside them is an error. Duplicate entries are summed, as scipy does. `nnz_hint` (e.g. the Parquet
  /// row count), if > 0, is reserved up front: without it the arrays grow by doubling and peak at ~3x their size.
  /// A cell index (or `n_rows`) at or above `max_cells` is refused before the row index grows to it.
  static std::shared_ptr<SparseMatrix> from_coo_stream(StreamOwner stream, const CooColumns& columns, int64_t n_rows,
                                                       int64_t n_cols, int64_t nnz_hint = 0,
                                                       int64_t max_cells = kDefaultMaxCells);
  /// Consumes a block of `n_rows` cells as CSR rows: one Arrow row per cell, with list columns `genes` (integers
  /// in [0, n_cols)) and `values` (numbers) of equal lengths; a row's genes may come in any order (sorted here,
  /// duplicates summed). 8 bytes an entry in Arrow instead of COO's 16-20, and no row index to expand.
  static std::shared_ptr<SparseMatrix> from_list_rows(StreamOwner stream, int64_t n_rows, int64_t n_cols);
  /// Copies and validates CSR arrays (indptr monotonic from 0, indices in [0, n_cols)). Gene indices are kept in
  /// 2 bytes each when n_cols <= GeneIndices::kNarrowLimit (also for COO input; there, when unknown, once the
  /// largest index is).
  static std::shared_ptr<SparseMatrix> from_csr(std::vector<int64_t> indptr, std::vector<int32_t> indices,
                                                std::vector<float> data, int64_t n_cols);

  int64_t rows() const { return static_cast<int64_t>(indptr_.size()) - 1; }
  int64_t cols() const { return n_cols_; }
  int64_t nnz() const { return static_cast<int64_t>(indices_.size()); }
  const std::vector<int64_t>& indptr() const { return indptr_; }
  const GeneIndices& indices() const { return indices_; }
  const std::vector<float>& data() const { return data_; }
  /// Bytes the matrix holds: indptr, gene indices (2 or 4 each) and values.
  int64_t bytes() const {
    return static_cast<int64_t>(indptr_.size() * sizeof(int64_t) + data_.size() * sizeof(float)) +
           nnz() * (indices_.narrow() ? 2 : 4);
  }

  /// Writes row `row` densely (n_cols floats) to `out`.
  void densify_row(int64_t row, float* out) const;
  /// The rows `rows` as a CSR batch: crow (B+1), col and values.
  void gather_csr(const std::vector<int64_t>& rows, std::vector<int64_t>* crow, std::vector<int64_t>* col,
                  std::vector<float>* values) const;

 private:
  SparseMatrix() = default;
  void sum_duplicates();
  std::vector<int64_t> indptr_{0};
  GeneIndices indices_;
  std::vector<float> data_;
  int64_t n_cols_ = 0;
};

/// Rows of a SparseMatrix densified to float32 [n_cols] samples.
class DenseRows final : public RowSource {
 public:
  explicit DenseRows(std::shared_ptr<const SparseMatrix> matrix) : matrix_(std::move(matrix)) {}
  int64_t size() const override { return matrix_->rows(); }
  std::vector<int64_t> sample_shape() const override { return {matrix_->cols()}; }
  OutputType element_type() const override { return OutputType::kFloat32; }
  void write_row(int64_t row, int64_t epoch, uint8_t* out, std::vector<uint8_t>& scratch) const override;

 private:
  std::shared_ptr<const SparseMatrix> matrix_;
};

}  // namespace loaderbench
