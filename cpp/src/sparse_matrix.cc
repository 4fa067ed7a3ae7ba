#include "loaderbench/sparse_matrix.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "loaderbench/arrow_view.h"
#include "loaderbench/ome_importer.h"

namespace loaderbench {
namespace {

double value_at(const ArrayView& v, int64_t i) {
  const int64_t k = i;  // primitive_data applies the array's offset
  if (v.type() == ArrowType::kFloat32) return reinterpret_cast<const float*>(v.primitive_data())[k];
  if (v.type() == ArrowType::kFloat64) return reinterpret_cast<const double*>(v.primitive_data())[k];
  return static_cast<double>(v.integer(i));
}

const ArrayView& column(const ArrayView& batch, const std::string& name, bool numeric_value) {
  const ArrayView* c = batch.child(name);
  if (c == nullptr) throw ImportError("no column '" + name + "' in the COO table");
  const bool ok = numeric_value ? (c->type() == ArrowType::kFloat32 || c->type() == ArrowType::kFloat64 ||
                                   is_integer(c->type()))
                                : is_integer(c->type());
  if (!ok) throw ImportError("column '" + name + "' has type " + type_name(c->type()) + ", expected " +
                             (numeric_value ? "a number" : "an integer"));
  // Only the batch's own rows: a struct's child may be longer than the struct (and null beyond it).
  if (batch.length() > 0 && c->any_null(batch.child_row(0), batch.child_row(batch.length()))) {
    for (int64_t i = 0; i < batch.length(); ++i) {
      if (c->is_null(batch.child_row(i))) {
        throw ImportError("column '" + name + "' has a null at row " + std::to_string(i));
      }
    }
  }
  return *c;
}

/// Calls `add(row, col, value)` for the entries [first, first + n) of the columns through typed pointers, when they
/// have the types readers produce (int32/int64 indices, float32/float64 values): the generic accessors switch on
/// the type for every element, which made building CSR cost ~40 ns an entry. Returns false (nothing called) for
/// other types.
template <class F>
void with_index(const ArrayView& v, const F& f) {
  if (v.type() == ArrowType::kInt64) f(reinterpret_cast<const int64_t*>(v.primitive_data()));
  if (v.type() == ArrowType::kInt32) f(reinterpret_cast<const int32_t*>(v.primitive_data()));
}
template <class F>
void with_value(const ArrayView& v, const F& f) {
  if (v.type() == ArrowType::kFloat32) f(reinterpret_cast<const float*>(v.primitive_data()));
  if (v.type() == ArrowType::kFloat64) f(reinterpret_cast<const double*>(v.primitive_data()));
}

template <class Add>
bool for_each_typed(const ArrayView& rows, const ArrayView& cols, const ArrayView& vals, int64_t first, int64_t n,
                    const Add& add) {
  bool done = false;
  with_index(rows, [&](const auto* r) {
    with_index(cols, [&](const auto* c) {
      with_value(vals, [&](const auto* v) {
        for (int64_t k = first; k < first + n; ++k) add(int64_t{r[k]}, int64_t{c[k]}, static_cast<float>(v[k]));
        done = true;
      });
    });
  });
  return done;
}

/// A list column of a block of cells (one list per cell), checked: list type, no nulls among the batch's rows, and
/// items that are integers (genes) or numbers (values).
const ArrayView& list_column(const ArrayView& batch, const std::string& name, bool numeric_items) {
  const ArrayView* c = batch.child(name);
  if (c == nullptr) throw ImportError("no list column '" + name + "' in the block of cells");
  if (c->type() != ArrowType::kList && c->type() != ArrowType::kLargeList) {
    throw ImportError("column '" + name + "' has type " + type_name(c->type()) + ", expected a list per cell");
  }
  const ArrowType item = c->child(0).type();
  const bool ok = is_integer(item) || (numeric_items && (item == ArrowType::kFloat32 || item == ArrowType::kFloat64));
  if (!ok) {
    throw ImportError("column '" + name + "' holds " + type_name(item) + ", expected " +
                      (numeric_items ? "numbers" : "integers"));
  }
  if (batch.length() > 0 && c->any_null(batch.child_row(0), batch.child_row(batch.length()))) {
    throw ImportError("column '" + name + "' has a null list (every cell needs one, empty if it has no entries)");
  }
  if (batch.length() > 0) {  // only the items the batch's lists reach: a sliced list may have others
    const int64_t first = c->list_range(batch.child_row(0)).first;
    const int64_t last = c->list_range(batch.child_row(batch.length() - 1)).second;
    if (c->child(0).any_null(first, last)) throw ImportError("column '" + name + "' has a null item");
  }
  return *c;
}

}  // namespace

std::vector<int32_t> GeneIndices::to_int32() const {
  return visit([](const auto& cols) { return std::vector<int32_t>(cols.begin(), cols.end()); });
}

void GeneIndices::narrow_if_possible() {
  if (narrow_ || std::any_of(i32_.begin(), i32_.end(), [](int32_t c) { return c >= kNarrowLimit; })) return;
  u16_.assign(i32_.begin(), i32_.end());  // every value checked to fit just above
  i32_ = {};
  narrow_ = true;
}

std::shared_ptr<SparseMatrix> SparseMatrix::from_coo_stream(StreamOwner stream, const CooColumns& columns,
                                                            int64_t n_rows, int64_t n_cols, int64_t nnz_hint,
                                                            int64_t max_cells) {
  if (n_rows < 0 || n_cols < 0 || nnz_hint < 0) throw ImportError("n_rows, n_cols and nnz_hint must be >= 0");
  if (max_cells <= 0) throw ImportError("max_cells must be > 0");
  if (n_rows > max_cells) {
    throw ImportError("n_cells=" + std::to_string(n_rows) + " exceeds max_cells=" + std::to_string(max_cells) +
                      " (pass a larger max_cells to allow it)");
  }
  if (n_cols > std::numeric_limits<int32_t>::max()) {
    throw ImportError("n_genes=" + std::to_string(n_cols) + " exceeds 2^31 - 1 (gene indices are stored as int32)");
  }
  std::shared_ptr<SparseMatrix> m(new SparseMatrix());
  m->indices_ = GeneIndices(n_cols > 0 && n_cols <= GeneIndices::kNarrowLimit);
  m->indices_.reserve(static_cast<size_t>(nnz_hint));
  m->data_.reserve(static_cast<size_t>(nnz_hint));
  if (n_rows > 0) m->indptr_.reserve(static_cast<size_t>(n_rows) + 1);
  std::vector<int64_t> row_of;  // filled only once the input turns out unsorted
  bool sorted = true;
  int64_t current_row = 0, max_col = -1, max_row = -1;
  SchemaOwner schema;
  consume_stream(stream, schema, [&](ArrayOwner&& owned) {
    const ArrayView batch = ArrayView::make(schema.get(), owned.get(), "coo");
    const ArrayView& rows = column(batch, columns.row, false);
    const ArrayView& cols = column(batch, columns.col, false);
    const ArrayView& vals = column(batch, columns.value, true);
    const auto add = [&](int64_t r, int64_t c, float value) {
      if (r < 0 || (n_rows > 0 && r >= n_rows)) {
        throw ImportError("cell index " + std::to_string(r) + " out of range (n_cells=" + std::to_string(n_rows) + ")");
      }
      if (r >= max_cells) {
        throw ImportError("cell index " + std::to_string(r) + " would need a row index of " + std::to_string(r + 1) +
                          " cells, above max_cells=" + std::to_string(max_cells) +
                          " (a corrupt id? else pass n_cells or a larger max_cells)");
      }
      if (c < 0 || (n_cols > 0 && c >= n_cols) || c > std::numeric_limits<int32_t>::max()) {
        throw ImportError("gene index " + std::to_string(c) + " out of range (n_genes=" + std::to_string(n_cols) + ")");
      }
      max_col = std::max(max_col, c);
      max_row = std::max(max_row, r);
      if (sorted && r < current_row) {
        sorted = false;  // rebuild the row of every entry so far from indptr, then keep rows explicitly
        row_of.reserve(m->indices_.size() * 2);
        for (int64_t rr = 0; rr + 1 < static_cast<int64_t>(m->indptr_.size()); ++rr) {
          row_of.insert(row_of.end(), static_cast<size_t>(m->indptr_[rr + 1] - m->indptr_[rr]), rr);
        }
        row_of.insert(row_of.end(), m->indices_.size() - row_of.size(), current_row);
      }
      if (sorted) {
        while (current_row < r) {
          m->indptr_.push_back(static_cast<int64_t>(m->indices_.size()));
          ++current_row;
        }
      } else {
        row_of.push_back(r);
      }
      m->indices_.push_back(static_cast<int32_t>(c));
      m->data_.push_back(value);
    };
    // A stream of unknown length (no nnz_hint) grows by whole batches, not by doubling within one.
    const size_t needed = m->indices_.size() + static_cast<size_t>(batch.length());
    if (needed > m->indices_.capacity()) {
      const size_t grown = std::max(needed, m->indices_.capacity() + m->indices_.capacity() / 2);
      m->indices_.reserve(grown);
      m->data_.reserve(grown);
    }
    if (batch.length() == 0 || for_each_typed(rows, cols, vals, batch.child_row(0), batch.length(), add)) return;
    for (int64_t i = 0; i < batch.length(); ++i) {  // other index or value types: one typed read per element
      const int64_t k = batch.child_row(i);
      add(rows.integer(k), cols.integer(k), static_cast<float>(value_at(vals, k)));
    }
  });
  const int64_t total_rows = n_rows > 0 ? n_rows : max_row + 1;
  m->n_cols_ = n_cols > 0 ? n_cols : max_col + 1;
  if (sorted) {
    // indptr holds the starts of rows 0..current_row; close current_row and any trailing empty rows.
    while (static_cast<int64_t>(m->indptr_.size()) < total_rows + 1) {
      m->indptr_.push_back(static_cast<int64_t>(m->indices_.size()));
    }
  } else {
    // Stable counting sort by row.
    std::vector<int64_t> indptr(static_cast<size_t>(total_rows) + 1, 0);
    for (int64_t r : row_of) ++indptr[static_cast<size_t>(r) + 1];
    for (size_t r = 0; r < static_cast<size_t>(total_rows); ++r) indptr[r + 1] += indptr[r];
    std::vector<int64_t> next(indptr.begin(), indptr.end() - 1);
    GeneIndices indices(m->indices_.narrow());
    indices.resize(m->indices_.size());
    std::vector<float> data(m->data_.size());
    for (size_t k = 0; k < row_of.size(); ++k) {
      const auto slot = static_cast<size_t>(next[static_cast<size_t>(row_of[k])]++);
      indices.set(slot, m->indices_[k]);
      data[slot] = m->data_[k];
    }
    m->indptr_ = std::move(indptr);
    m->indices_ = std::move(indices);
    m->data_ = std::move(data);
  }
  if (total_rows <= 0) throw ImportError("the COO table has no entries and no n_cells was given");
  m->sum_duplicates();
  m->indices_.narrow_if_possible();  // where n_cols did not decide it, the largest index does
  return m;
}

std::shared_ptr<SparseMatrix> SparseMatrix::from_list_rows(StreamOwner stream, int64_t n_rows, int64_t n_cols) {
  if (n_rows < 0) throw ImportError("n_rows must be >= 0");
  if (n_cols <= 0 || n_cols > std::numeric_limits<int32_t>::max()) {
    throw ImportError("n_genes=" + std::to_string(n_cols) + " must lie in [1, 2^31 - 1] (gene indices are int32)");
  }
  std::shared_ptr<SparseMatrix> m(new SparseMatrix());
  m->indices_ = GeneIndices(n_cols <= GeneIndices::kNarrowLimit);
  m->n_cols_ = n_cols;
  m->indptr_.reserve(static_cast<size_t>(n_rows) + 1);
  SchemaOwner schema;
  consume_stream(stream, schema, [&](ArrayOwner&& owned) {
    const ArrayView batch = ArrayView::make(schema.get(), owned.get(), "cells");
    if (batch.length() == 0) return;
    const ArrayView& genes = list_column(batch, "genes", false);
    const ArrayView& values = list_column(batch, "values", true);
    if (static_cast<int64_t>(m->indptr_.size()) - 1 + batch.length() > n_rows) {
      throw ImportError("the block has more than the " + std::to_string(n_rows) + " cells asked for");
    }
    const int64_t first = genes.list_range(batch.child_row(0)).first;
    const int64_t last = genes.list_range(batch.child_row(batch.length() - 1)).second;
    m->indices_.reserve(m->indices_.size() + static_cast<size_t>(last - first));
    m->data_.reserve(m->data_.size() + static_cast<size_t>(last - first));
    // Rows through typed item pointers where the types are the common ones, else the generic accessors.
    const auto append = [&](const auto& gene_at, const auto& value_at_item) {
      for (int64_t i = 0; i < batch.length(); ++i) {
        const int64_t k = batch.child_row(i);
        const auto [gb, ge] = genes.list_range(k);
        const auto [vb, ve] = values.list_range(k);
        if (ge - gb != ve - vb) {
          throw ImportError("cell " + std::to_string(m->rows()) + " of the block has " + std::to_string(ge - gb) +
                            " genes but " + std::to_string(ve - vb) + " values");
        }
        for (int64_t j = 0; j < ge - gb; ++j) {
          const int64_t c = gene_at(gb + j);
          if (c < 0 || c >= n_cols) {
            throw ImportError("cell " + std::to_string(m->rows()) + " of the block: gene index " + std::to_string(c) +
                              " out of range (n_genes=" + std::to_string(n_cols) + ")");
          }
          m->indices_.push_back(static_cast<int32_t>(c));
          m->data_.push_back(static_cast<float>(value_at_item(vb + j)));
        }
        m->indptr_.push_back(static_cast<int64_t>(m->indices_.size()));
      }
    };
    const ArrayView& gene_items = genes.child(0);
    const ArrayView& value_items = values.child(0);
    bool done = false;
    with_index(gene_items, [&](const auto* g) {
      with_value(value_items, [&](const auto* v) {
        append([g](int64_t j) { return int64_t{g[j]}; }, [v](int64_t j) { return v[j]; });
        done = true;
      });
    });
    if (!done) {
      append([&](int64_t j) { return gene_items.integer(j); }, [&](int64_t j) { return value_at(value_items, j); });
    }
  });
  if (m->rows() != n_rows) {
    throw ImportError("the block has " + std::to_string(m->rows()) + " cells, expected " + std::to_string(n_rows));
  }
  m->sum_duplicates();  // a row's genes in any order, duplicates summed, as for COO input
  return m;
}

std::shared_ptr<SparseMatrix> SparseMatrix::from_csr(std::vector<int64_t> indptr, std::vector<int32_t> indices,
                                                     std::vector<float> data, int64_t n_cols) {
  if (indptr.empty() || indptr.front() != 0) throw ImportError("indptr must start with 0");
  if (n_cols < 0 || n_cols > std::numeric_limits<int32_t>::max()) {
    throw ImportError("n_genes=" + std::to_string(n_cols) + " must lie in [0, 2^31 - 1] (gene indices are int32)");
  }
  if (indices.size() != data.size()) throw ImportError("indices and data differ in length");
  if (indptr.back() != static_cast<int64_t>(indices.size())) throw ImportError("indptr does not end at nnz");
  for (size_t r = 1; r < indptr.size(); ++r) {
    if (indptr[r] < indptr[r - 1]) throw ImportError("indptr decreases at row " + std::to_string(r - 1));
  }
  for (int32_t c : indices) {
    if (c < 0 || c >= n_cols) {
      throw ImportError("gene index " + std::to_string(c) + " out of range (n_genes=" + std::to_string(n_cols) + ")");
    }
  }
  std::shared_ptr<SparseMatrix> m(new SparseMatrix());
  m->indptr_ = std::move(indptr);
  m->indices_ = GeneIndices(n_cols <= GeneIndices::kNarrowLimit);
  m->indices_.reserve(indices.size());
  for (int32_t c : indices) m->indices_.push_back(c);
  indices = {};  // the caller's copy: freed before the matrix is used
  m->data_ = std::move(data);
  m->n_cols_ = n_cols;
  return m;
}

void SparseMatrix::sum_duplicates() {
  // Duplicates only matter for COO input; sort each row's columns and merge equal ones.
  std::vector<std::pair<int32_t, float>> row;
  int64_t write = 0;
  std::vector<int64_t> indptr(indptr_.size(), 0);
  for (int64_t r = 0; r + 1 < static_cast<int64_t>(indptr_.size()); ++r) {
    const int64_t begin = indptr_[r], end = indptr_[r + 1];
    bool ordered = true;
    for (int64_t k = begin + 1; k < end && ordered; ++k) {
      ordered = indices_[static_cast<size_t>(k - 1)] < indices_[static_cast<size_t>(k)];
    }
    if (ordered && write == begin) {
      write = end;  // nothing merged so far: the row is already in place
    } else if (ordered) {
      for (int64_t k = begin; k < end; ++k, ++write) {
        indices_.set(static_cast<size_t>(write), indices_[static_cast<size_t>(k)]);
        data_[write] = data_[k];
      }
    } else {
      row.clear();
      for (int64_t k = begin; k < end; ++k) row.emplace_back(indices_[static_cast<size_t>(k)], data_[k]);
      std::stable_sort(row.begin(), row.end(), [](auto& a, auto& b) { return a.first < b.first; });
      for (size_t k = 0; k < row.size(); ++k) {
        if (k > 0 && row[k].first == row[k - 1].first) {
          data_[write - 1] += row[k].second;
        } else {
          indices_.set(static_cast<size_t>(write), row[k].first);
          data_[write] = row[k].second;
          ++write;
        }
      }
    }
    indptr[r + 1] = write;
  }
  indptr_ = std::move(indptr);
  indices_.resize(static_cast<size_t>(write));
  data_.resize(static_cast<size_t>(write));
}

void SparseMatrix::densify_row(int64_t row, float* out) const {
  std::memset(out, 0, static_cast<size_t>(n_cols_) * sizeof(float));
  const int64_t begin = indptr_[row], end = indptr_[row + 1];
  const float* values = data_.data();
  indices_.visit([&](const auto& cols) {
    for (int64_t k = begin; k < end; ++k) out[cols[static_cast<size_t>(k)]] = values[k];
  });
}

void SparseMatrix::gather_csr(const std::vector<int64_t>& rows, std::vector<int64_t>* crow, std::vector<int64_t>* col,
                              std::vector<float>* values) const {
  crow->assign(1, 0);
  col->clear();
  values->clear();
  for (int64_t r : rows) {
    if (r < 0 || r >= this->rows()) throw ImportError("row " + std::to_string(r) + " out of range");
    const int64_t begin = indptr_[r], end = indptr_[r + 1];
    indices_.visit([&](const auto& cols) { col->insert(col->end(), cols.begin() + begin, cols.begin() + end); });
    values->insert(values->end(), data_.begin() + begin, data_.begin() + end);
    crow->push_back(static_cast<int64_t>(col->size()));
  }
}

void DenseRows::write_row(int64_t row, int64_t /*epoch*/, uint8_t* out, std::vector<uint8_t>& /*scratch*/) const {
  matrix_->densify_row(row, reinterpret_cast<float*>(out));
}

}  // namespace loaderbench
