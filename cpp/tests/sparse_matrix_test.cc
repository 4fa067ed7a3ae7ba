#include "loaderbench/sparse_matrix.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "arrow_test_builder.h"
#include "loaderbench/arrow_view.h"
#include "loaderbench/batch_loader.h"

namespace loaderbench {
namespace {

using testing::FakeStream;

testing::NodePtr coo(const std::vector<int64_t>& r, const std::vector<int64_t>& c, const std::vector<float>& v) {
  return testing::structure("", {testing::primitive("l", "soma_dim_0", r), testing::primitive("l", "soma_dim_1", c),
                                 testing::primitive("f", "soma_data", v)},
                            static_cast<int64_t>(r.size()));
}

std::vector<float> dense(const SparseMatrix& m) {
  std::vector<float> out(static_cast<size_t>(m.rows() * m.cols()));
  for (int64_t r = 0; r < m.rows(); ++r) m.densify_row(r, out.data() + r * m.cols());
  return out;
}

TEST(SparseMatrix, BuildsCsrFromSortedCooAcrossBatches) {
  // 4 cells x 3 genes; cell 1 is empty, cell 3 is only in the second batch.
  auto m = SparseMatrix::from_coo_stream(
      FakeStream::make({coo({0, 0, 2}, {0, 2, 1}, {1, 2, 3}), coo({2, 3}, {2, 0}, {4, 5})}), {}, 0, 3);
  EXPECT_EQ(m->rows(), 4);
  EXPECT_EQ(m->nnz(), 5);
  EXPECT_EQ(m->indptr(), (std::vector<int64_t>{0, 2, 2, 4, 5}));
  EXPECT_EQ(dense(*m), (std::vector<float>{1, 0, 2, 0, 0, 0, 0, 3, 4, 5, 0, 0}));
}

TEST(SparseMatrix, NnzHintReservesWithoutChangingTheResult) {
  // A right, a short and a too-large hint give the same matrix; the right one leaves no spare capacity.
  for (int64_t hint : {5, 2, 100}) {
    auto m = SparseMatrix::from_coo_stream(
        FakeStream::make({coo({0, 0, 2}, {0, 2, 1}, {1, 2, 3}), coo({2, 3}, {2, 0}, {4, 5})}), {}, 4, 3, hint);
    EXPECT_EQ(m->indptr(), (std::vector<int64_t>{0, 2, 2, 4, 5}));
    EXPECT_EQ(dense(*m), (std::vector<float>{1, 0, 2, 0, 0, 0, 0, 3, 4, 5, 0, 0}));
    if (hint == 5) EXPECT_EQ(m->indices().capacity(), 5u);
  }
  EXPECT_THROW(SparseMatrix::from_coo_stream(FakeStream::make({coo({0}, {0}, {1})}), {}, 0, 3, -1), ImportError);
}

// int32/int64 indices with float32/float64 values take typed loops; any other integer type the per-element path.
// Every combination must build the same matrix, and an offset batch (a slice) must start at its own first entry.
TEST(SparseMatrix, EveryIndexAndValueTypeBuildsTheSameMatrix) {
  const std::vector<float> want{1, 0, 2, 0, 0, 0, 0, 3, 4, 5, 0, 0};
  const auto build = [](testing::NodePtr batch) {
    return dense(*SparseMatrix::from_coo_stream(FakeStream::make({std::move(batch)}), {}, 4, 3));
  };
  const auto table = [](auto rows, auto cols, auto vals, const std::string& rf, const std::string& cf,
                        const std::string& vf) {
    return testing::structure("",
                              {testing::primitive(rf, "soma_dim_0", rows), testing::primitive(cf, "soma_dim_1", cols),
                               testing::primitive(vf, "soma_data", vals)},
                              static_cast<int64_t>(rows.size()));
  };
  const std::vector<int64_t> r64{0, 0, 2, 2, 3}, c64{0, 2, 1, 2, 0};
  const std::vector<int32_t> r32{0, 0, 2, 2, 3}, c32{0, 2, 1, 2, 0};
  const std::vector<int16_t> r16{0, 0, 2, 2, 3};
  const std::vector<uint32_t> cu32{0, 2, 1, 2, 0};
  const std::vector<float> f32{1, 2, 3, 4, 5};
  const std::vector<double> f64{1, 2, 3, 4, 5};
  const std::vector<int32_t> i32{1, 2, 3, 4, 5};
  EXPECT_EQ(build(table(r64, c64, f32, "l", "l", "f")), want);
  EXPECT_EQ(build(table(r32, c32, f64, "i", "i", "g")), want);
  EXPECT_EQ(build(table(r64, c32, f64, "l", "i", "g")), want);
  EXPECT_EQ(build(table(r16, cu32, i32, "s", "I", "i")), want);  // the generic path
  EXPECT_EQ(build(table(r32, c64, i32, "i", "l", "i")), want);    // typed indices, integer values: generic
  // A sliced batch: the struct starts one entry in, and its gene column one more (a padding entry before each).
  for (const bool typed : {true, false}) {
    auto sliced = typed ? table(std::vector<int64_t>{9, 0, 0, 2, 2, 3}, std::vector<int64_t>{9, 9, 0, 2, 1, 2, 0},
                                std::vector<float>{9, 1, 2, 3, 4, 5}, "l", "l", "f")
                        : table(std::vector<int16_t>{9, 0, 0, 2, 2, 3}, std::vector<int16_t>{9, 9, 0, 2, 1, 2, 0},
                                std::vector<int16_t>{9, 1, 2, 3, 4, 5}, "s", "s", "s");
    sliced->offset = 1;
    sliced->length = 5;
    testing::find(sliced, "soma_dim_1")->offset = 1;
    EXPECT_EQ(build(sliced), want) << (typed ? "typed" : "generic");
  }
}

// A block of cells as CSR rows: one list of genes and one of values per cell.
template <class G, class V>
testing::NodePtr list_rows(const std::vector<G>& genes, const std::vector<V>& values, const std::vector<int32_t>& at,
                           const std::string& gf, const std::string& vf) {
  return testing::structure("", {testing::list("genes", testing::primitive(gf, "item", genes), at),
                                 testing::list("values", testing::primitive(vf, "item", values), at)},
                            static_cast<int64_t>(at.size()) - 1);
}

TEST(SparseMatrix, BuildsFromListRowsSortingGenesAndSummingDuplicates) {
  // 3 cells x 4 genes: cell 1 has no entries; cell 2 lists gene 3 before gene 0, and gene 3 twice.
  const std::vector<int32_t> at{0, 2, 2, 5};
  const std::vector<float> want{1, 0, 2, 0, 0, 0, 0, 0, 5, 0, 0, 7};
  for (int batches : {1, 2}) {
    std::vector<testing::NodePtr> stream;
    if (batches == 1) {
      stream.push_back(
          list_rows(std::vector<int32_t>{0, 2, 3, 0, 3}, std::vector<float>{1, 2, 3, 5, 4}, at, "i", "f"));
    } else {  // the same cells split after cell 1; int64 genes and float64 values
      stream.push_back(list_rows(std::vector<int64_t>{0, 2}, std::vector<double>{1, 2}, {0, 2, 2}, "l", "g"));
      stream.push_back(list_rows(std::vector<int64_t>{3, 0, 3}, std::vector<double>{3, 5, 4}, {0, 3}, "l", "g"));
    }
    auto m = SparseMatrix::from_list_rows(FakeStream::make(std::move(stream)), 3, 4);
    EXPECT_EQ(m->indptr(), (std::vector<int64_t>{0, 2, 2, 4}));
    EXPECT_EQ(m->indices().to_int32(), (std::vector<int32_t>{0, 2, 0, 3}));
    EXPECT_TRUE(m->indices().narrow());
    EXPECT_EQ(dense(*m), want) << batches << " batch(es)";
  }
  // Other integer types go through the generic accessors.
  auto generic = SparseMatrix::from_list_rows(
      FakeStream::make({list_rows(std::vector<int16_t>{0, 2, 3, 0, 3}, std::vector<int32_t>{1, 2, 3, 5, 4}, at, "s",
                                  "i")}),
      3, 4);
  EXPECT_EQ(dense(*generic), want);
  auto wide = SparseMatrix::from_list_rows(
      FakeStream::make({list_rows(std::vector<int32_t>{70000}, std::vector<float>{1}, {0, 1}, "i", "f")}), 1, 70001);
  EXPECT_FALSE(wide->indices().narrow());
  EXPECT_EQ(wide->indices().to_int32(), (std::vector<int32_t>{70000}));
}

TEST(SparseMatrix, ListRowsThatDoNotDescribeTheBlockAreRefused) {
  const auto fails = [](testing::NodePtr batch, int64_t rows, const std::string& message) {
    try {
      SparseMatrix::from_list_rows(FakeStream::make({std::move(batch)}), rows, 4);
      ADD_FAILURE() << "no error; expected: " << message;
    } catch (const ImportError& error) {
      EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << error.what();
    }
  };
  const std::vector<float> two{1, 2};
  fails(list_rows(std::vector<int32_t>{0, 4}, two, {0, 2}, "i", "f"), 1, "gene index 4 out of range (n_genes=4)");
  fails(list_rows(std::vector<int32_t>{0, -1}, two, {0, 2}, "i", "f"), 1, "gene index -1 out of range");
  fails(list_rows(std::vector<int32_t>{0, 1}, two, {0, 2}, "i", "f"), 2, "the block has 1 cells, expected 2");
  fails(list_rows(std::vector<int32_t>{0, 1}, two, {0, 1, 2}, "i", "f"), 1, "more than the 1 cells asked for");
  const std::vector<int32_t> gene_items{0, 1};
  const std::vector<float> value_items{1};
  auto uneven = testing::structure("", {testing::list("genes", testing::primitive("i", "item", gene_items), {0, 2}),
                                        testing::list("values", testing::primitive("f", "item", value_items), {0, 1})},
                                   1);
  fails(uneven, 1, "cell 0 of the block has 2 genes but 1 values");
  auto nulls = list_rows(std::vector<int32_t>{0, 1}, two, {0, 1, 2}, "i", "f");
  testing::set_nulls(*testing::find(nulls, "genes"), {1});
  fails(nulls, 2, "column 'genes' has a null list");
  fails(list_rows(std::vector<float>{0, 1}, two, {0, 2}, "f", "f"), 1,
        "column 'genes' holds float32, expected integers");
  auto coo_block = coo({0}, {1}, {1});
  fails(coo_block, 1, "no list column 'genes'");
  EXPECT_THROW(SparseMatrix::from_list_rows(FakeStream::make({coo_block}), 1, 0), ImportError);
}

TEST(SparseMatrix, SortsUnsortedCooAndSumsDuplicates) {
  auto m = SparseMatrix::from_coo_stream(FakeStream::make({coo({2, 0, 2, 0, 0}, {1, 2, 1, 0, 2}, {3, 2, 4, 1, 10})}),
                                         {}, 5, 0);
  EXPECT_EQ(m->rows(), 5);  // trailing empty rows from n_cells
  EXPECT_EQ(m->cols(), 3);
  EXPECT_EQ(dense(*m), (std::vector<float>{1, 0, 12, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(SparseMatrix, RejectsIndicesOutOfRangeAndBadColumns) {
  EXPECT_THROW(SparseMatrix::from_coo_stream(FakeStream::make({coo({0}, {3}, {1})}), {}, 0, 3), ImportError);
  EXPECT_THROW(SparseMatrix::from_coo_stream(FakeStream::make({coo({-1}, {0}, {1})}), {}, 0, 3), ImportError);
  EXPECT_THROW(SparseMatrix::from_coo_stream(FakeStream::make({coo({5}, {0}, {1})}), {}, 2, 3), ImportError);
  CooColumns other;
  other.value = "counts";
  EXPECT_THROW(SparseMatrix::from_coo_stream(FakeStream::make({coo({0}, {0}, {1})}), other, 0, 3), ImportError);
  EXPECT_THROW(SparseMatrix::from_csr({0, 2, 1}, {0, 1}, {1, 1}, 3), ImportError);
  EXPECT_THROW(SparseMatrix::from_csr({0, 1}, {7}, {1}, 3), ImportError);
}

// Found by the fuzzer: nulls were scanned over a column's whole child array, not the batch's rows.
TEST(SparseMatrix, ChecksNullsInTheBatchsRowsOnly) {
  auto batch = coo({0, 1, 1}, {0, 1, 2}, {1, 2, 3});
  batch->length = 2;  // the children hold a third entry beyond the batch ...
  testing::set_nulls(*testing::find(batch, "soma_data"), {2});  // ... which is null: not part of the table
  auto m = SparseMatrix::from_coo_stream(FakeStream::make({batch}), {}, 0, 3);
  EXPECT_EQ(m->nnz(), 2);
  batch = coo({0, 1}, {0, 1}, {1, 2});
  testing::set_nulls(*testing::find(batch, "soma_data"), {1});
  EXPECT_THROW(SparseMatrix::from_coo_stream(FakeStream::make({batch}), {}, 0, 3), ImportError);
}

TEST(SparseMatrix, GathersCsrBatches) {
  auto m = SparseMatrix::from_csr({0, 2, 2, 3}, {0, 2, 1}, {1, 2, 3}, 3);
  std::vector<int64_t> crow, col;
  std::vector<float> values;
  m->gather_csr({2, 1, 0}, &crow, &col, &values);
  EXPECT_EQ(crow, (std::vector<int64_t>{0, 1, 1, 3}));
  EXPECT_EQ(col, (std::vector<int64_t>{1, 0, 2}));
  EXPECT_EQ(values, (std::vector<float>{3, 1, 2}));
}

// Gene indices take 2 bytes where every one fits (n_genes <= 65,536) and 4 otherwise; both give the same rows.
TEST(SparseMatrix, StoresGeneIndicesNarrowExactlyWhenTheyFit) {
  const int64_t limit = GeneIndices::kNarrowLimit;
  const std::vector<int64_t> rows{0, 0, 1, 1};
  for (int64_t n_genes : {limit - 1, limit, limit + 1}) {
    const int64_t last = n_genes - 1;
    auto m = SparseMatrix::from_coo_stream(FakeStream::make({coo(rows, {last, 3, 0, last}, {1, 2, 3, 4})}), {}, 2,
                                           n_genes);
    EXPECT_EQ(m->indices().narrow(), n_genes <= limit) << n_genes;
    EXPECT_EQ(m->bytes(), 3 * 8 + 4 * 4 + 4 * (n_genes <= limit ? 2 : 4));
    EXPECT_EQ(m->indices().to_int32(), (std::vector<int32_t>{3, static_cast<int32_t>(last), 0,
                                                               static_cast<int32_t>(last)}));
    std::vector<float> row(static_cast<size_t>(n_genes));
    m->densify_row(0, row.data());
    EXPECT_EQ(row[3], 2.0f);
    EXPECT_EQ(row[static_cast<size_t>(last)], 1.0f);
    std::vector<int64_t> crow, col;
    std::vector<float> values;
    m->gather_csr({1}, &crow, &col, &values);
    EXPECT_EQ(col, (std::vector<int64_t>{0, last}));
    auto csr = SparseMatrix::from_csr({0, 1, 2}, {0, static_cast<int32_t>(last)}, {1, 2}, n_genes);
    EXPECT_EQ(csr->indices().narrow(), n_genes <= limit);
    EXPECT_EQ(csr->indices().to_int32(), (std::vector<int32_t>{0, static_cast<int32_t>(last)}));
  }
  // n_genes not given: the largest index decides, after duplicates are summed and rows sorted.
  auto small = SparseMatrix::from_coo_stream(FakeStream::make({coo({1, 0, 1}, {7, 2, 7}, {1, 2, 3})}), {}, 0, 0);
  EXPECT_TRUE(small->indices().narrow());
  EXPECT_EQ(small->indices().to_int32(), (std::vector<int32_t>{2, 7}));
  EXPECT_EQ(dense(*small), (std::vector<float>{0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}));
  auto wide = SparseMatrix::from_coo_stream(FakeStream::make({coo({1, 0}, {limit, 2}, {1, 2})}), {}, 0, 0);
  EXPECT_FALSE(wide->indices().narrow());
  EXPECT_EQ(wide->cols(), limit + 1);
  EXPECT_EQ(wide->indices().to_int32(), (std::vector<int32_t>{2, static_cast<int32_t>(limit)}));
}

TEST(DenseRows, BlockShuffledBatchesCoverEveryCellOnce) {
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  std::vector<float> data;
  for (int r = 0; r < 37; ++r) {
    if (r % 5 != 0) {  // every fifth cell empty
      indices.push_back(r % 4);
      data.push_back(static_cast<float>(r));
    }
    indptr.push_back(static_cast<int64_t>(indices.size()));
  }
  auto rows = std::make_shared<DenseRows>(SparseMatrix::from_csr(indptr, indices, data, 4));
  for (int threads : {1, 3}) {
    LoaderOptions o;
    o.batch_size = 8;
    o.num_threads = threads;
    o.sampler.kind = SamplerKind::kBlockShuffle;
    o.sampler.block_size = 4;
    o.sampler.buffer_blocks = 3;
    EpochIterator it(rows, BufferPool::create(8 * 4 * 4, 4), o, 0);
    std::multiset<int64_t> seen;
    Batch b;
    while (it.next(&b)) {
      const auto* v = reinterpret_cast<const float*>(b.buffer->bytes.get());
      for (size_t i = 0; i < b.indices.size(); ++i) {
        const int64_t r = b.indices[i];
        seen.insert(r);
        for (int c = 0; c < 4; ++c) {
          const float expected = (r % 5 != 0 && c == r % 4) ? static_cast<float>(r) : 0.0f;
          EXPECT_EQ(v[i * 4 + c], expected);
        }
      }
    }
    EXPECT_EQ(seen.size(), 37u);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 37u);
  }
}

}  // namespace
}  // namespace loaderbench
