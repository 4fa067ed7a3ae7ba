// Python face of the sparse cell x gene matrix: CSR built once from Arrow COO or scipy CSR arrays, densified
// batches through the shared threaded loader (RowSource), or CSR batches.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <vector>

#include "arrow_capsule.h"
#include "loaderbench/sparse_matrix.h"

namespace nb = nanobind;

namespace loaderbench::bindings {
namespace {

template <typename T>
using Vector1D = nb::ndarray<const T, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

template <typename T>
std::vector<T> to_vector(const Vector1D<T>& a) {
  return std::vector<T>(a.data(), a.data() + a.shape(0));
}

/// A 1-D torch tensor that owns `values` (moved into the capsule).
template <typename T>
nb::object owned_tensor(std::vector<T>&& values) {
  auto* held = new std::vector<T>(std::move(values));
  nb::capsule owner(held, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  const size_t shape[1] = {held->size()};
  return nb::cast(nb::ndarray<nb::pytorch, T, nb::ndim<1>>(held->data(), 1, shape, owner));
}

}  // namespace

void bind_sparse(nb::module_& m) {
  m.attr("DEFAULT_MAX_CELLS") = kDefaultMaxCells;
  nb::class_<SparseMatrix>(m, "SparseMatrix")
      .def_static(
          "from_arrow",
          [](nb::handle source, const std::string& row, const std::string& col, const std::string& value,
             int64_t n_rows, int64_t n_cols, int64_t nnz_hint, int64_t max_cells) {
            StreamOwner stream = take_arrow_stream(source);
            CooColumns columns{row, col, value};
            nb::gil_scoped_release release;
            return SparseMatrix::from_coo_stream(std::move(stream), columns, n_rows, n_cols, nnz_hint, max_cells);
          },
          nb::arg("source"), nb::arg("row") = "soma_dim_0", nb::arg("col") = "soma_dim_1",
          nb::arg("value") = "soma_data", nb::arg("n_rows") = 0, nb::arg("n_cols") = 0, nb::arg("nnz_hint") = 0,
          nb::arg("max_cells") = kDefaultMaxCells,
          "Build CSR from a SOMA-like COO Arrow stream (cells need not be sorted; duplicates are summed). "
          "nnz_hint (the number of entries, if known) is reserved up front to avoid growth copies.")
      .def_static(
          "from_csr",
          [](Vector1D<int64_t> indptr, Vector1D<int32_t> indices, Vector1D<float> data, int64_t n_cols) {
            return SparseMatrix::from_csr(to_vector(indptr), to_vector(indices), to_vector(data), n_cols);
          },
          nb::arg("indptr"), nb::arg("indices"), nb::arg("data"), nb::arg("n_cols"),
          "Copy and validate CSR arrays (int64 indptr, int32 indices, float32 data).")
      .def_prop_ro("shape", [](const SparseMatrix& s) { return nb::make_tuple(s.rows(), s.cols()); })
      .def_prop_ro("nnz", &SparseMatrix::nnz)
      .def("csr_arrays",
           [](const SparseMatrix& s) {
             return nb::make_tuple(owned_tensor(std::vector<int64_t>(s.indptr())),
                                   owned_tensor(s.indices().to_int32()),
                                   owned_tensor(std::vector<float>(s.data())));
           },
           "Copies of (indptr, indices, data) as tensors.")
      .def("gather_csr",
           [](const SparseMatrix& s, const std::vector<int64_t>& rows) {
             std::vector<int64_t> crow, col;
             std::vector<float> values;
             {
               nb::gil_scoped_release release;
               s.gather_csr(rows, &crow, &col, &values);
             }
             return nb::make_tuple(owned_tensor(std::move(crow)), owned_tensor(std::move(col)),
                                   owned_tensor(std::move(values)));
           },
           nb::arg("rows"), "The rows as a CSR batch: (crow_indices, col_indices, values) tensors.")
      .def(
          "dense_rows",
          [](std::shared_ptr<const SparseMatrix> s) {
            return std::shared_ptr<const RowSource>(std::make_shared<DenseRows>(std::move(s)));
          },
          "Rows densified to float32 [n_genes] samples, for the threaded loader.");
}

}  // namespace loaderbench::bindings
