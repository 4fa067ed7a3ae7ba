"""Sparse block readers: every stored form's read(rows) against the scipy matrix, unit maps, counters, errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from loaderbench.sparse.block_readers import (
    OUTPUT_SCHEMA,
    CooParquetBlockReader,
    H5adBlockReader,
    SomaBlockReader,
    SparseBlockReader,
    ZarrBlockReader,
    concat_ranges,
    open_block_reader,
    units_from_entries,
)
from loaderbench.sparse.datagen import SparseDataConfig, ensure_sparse_dataset
from loaderbench.sparse.sources import SHAPE_KEY, CooParquet, SparseInputError

TINY = SparseDataConfig(n_cells=300, n_genes=200, mean_genes=20.0, empty_fraction=0.05, row_group_size=1000,
                        cells_per_step=64, seed=3)
ZARR_CHUNK = 256  # small chunks, so that the tiny Zarr store has many units


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return ensure_sparse_dataset(TINY, tmp_path_factory.mktemp("sparse-blocks"))


@pytest.fixture(scope="module")
def csr(tiny) -> sp.csr_matrix:
    return CooParquet(tiny.paths["parquet"]).to_scipy_csr()


def _write_zarr(path: Path, matrix: sp.csr_matrix, chunk: int = ZARR_CHUNK) -> Path:
    """An AnnData-style Zarr v3 CSR ``X`` with small chunks (the layout ``ZarrBlockReader`` reads)."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    x = root.create_group("X")
    x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": list(matrix.shape)})
    for name, values in (("data", matrix.data.astype(np.float32)), ("indices", matrix.indices.astype(np.int32))):
        array = x.create_array(name, shape=values.shape, dtype=values.dtype, chunks=(chunk,))
        array[:] = values
    x.create_array("indptr", data=matrix.indptr.astype(np.int64))
    return path


def _write_h5ad(path: Path, matrix: sp.csr_matrix, chunks: int | None = None) -> Path:
    import h5py

    with h5py.File(path, "w") as handle:
        x = handle.create_group("X")
        x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                        "shape": np.array(matrix.shape, dtype=np.int64)})
        options = {"chunks": (chunks,)} if chunks else {}
        x.create_dataset("data", data=matrix.data.astype(np.float32), **options)
        x.create_dataset("indices", data=matrix.indices.astype(np.int32), **options)
        x.create_dataset("indptr", data=matrix.indptr.astype(np.int64))
    return path


@pytest.fixture(scope="module")
def stores(tiny, csr, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path, dict]]:
    """name -> (form, path, reader options) for every reader under test."""
    extra = tmp_path_factory.mktemp("sparse-block-stores")
    found = {
        "parquet": ("parquet", tiny.paths["parquet"], {}),
        "parquet-1thread": ("parquet", tiny.paths["parquet"], {"use_threads": False}),
        "h5ad": ("h5ad", tiny.paths["h5ad"], {"unit_entries": 1000}),
        "h5ad-no-coalescing": ("h5ad", tiny.paths["h5ad"], {"coalesce_entries": 0}),
        "h5ad-coalesce-all": ("h5ad", tiny.paths["h5ad"], {"coalesce_entries": 10**9}),
        "h5ad-chunked": ("h5ad", _write_h5ad(extra / "chunked.h5ad", csr, chunks=333), {}),
        "zarr-generated": ("zarr", tiny.paths["zarr"], {}),
        "zarr": ("zarr", _write_zarr(extra / "small.zarr", csr), {"coalesce_chunks": 1}),
        "zarr-no-coalescing": ("zarr", extra / "small.zarr", {"coalesce_chunks": 0}),
    }
    if "soma" in tiny.paths:
        found["soma"] = ("soma", tiny.paths["soma"], {})
    return found


READER_NAMES = ["parquet", "parquet-1thread", "h5ad", "h5ad-no-coalescing", "h5ad-coalesce-all", "h5ad-chunked",
                "zarr-generated", "zarr", "zarr-no-coalescing", "soma"]


@pytest.fixture(params=READER_NAMES)
def reader(request, stores) -> SparseBlockReader:
    if request.param not in stores:
        pytest.skip("tiledbsoma is not installed: no cells.soma")
    form, path, options = stores[request.param]
    with open_block_reader(form, path, **options) as opened:
        yield opened


def _check_read(reader: SparseBlockReader, csr: sp.csr_matrix, rows) -> pa.Table:
    """``reader.read(rows)`` is exactly ``csr[rows]``: schema, sort order, no duplicates, every value."""
    rows = np.asarray(rows, dtype=np.int64)
    table = reader.read(rows)
    assert table.schema == OUTPUT_SCHEMA
    local, genes, values = (table.column(i).to_numpy() for i in range(3))
    np.testing.assert_array_equal(np.lexsort((genes, local)), np.arange(len(local)))  # sorted by row, then gene
    assert local.size == 0 or (local.min() >= 0 and local.max() < len(rows))
    keys = local * csr.shape[1] + genes
    assert np.unique(keys).size == keys.size  # no entry twice
    dense = np.zeros((len(rows), csr.shape[1]), dtype=np.float32)
    dense[local, genes] = values
    np.testing.assert_array_equal(dense, csr[rows].toarray())
    assert table.num_rows == csr[rows].nnz  # no explicit zeros added
    return table


def _check_read_rows(reader: SparseBlockReader, csr: sp.csr_matrix, rows: np.ndarray) -> None:
    """``reader.read_rows(rows)`` is ``csr[rows]`` as one Arrow row per cell: its genes and values as lists."""
    table = reader.read_rows(rows)
    assert table.column_names == ["genes", "values"] and table.num_rows == len(rows)
    genes, values = (table.column(name).combine_chunks() for name in ("genes", "values"))
    np.testing.assert_array_equal(genes.offsets.to_numpy(), values.offsets.to_numpy())
    np.testing.assert_array_equal(np.diff(genes.offsets.to_numpy()), np.diff(csr[rows].indptr))
    cells = np.repeat(np.arange(len(rows)), np.diff(genes.offsets.to_numpy()))
    dense = np.zeros((len(rows), csr.shape[1]), dtype=np.float32)
    dense[cells, genes.flatten().to_numpy()] = values.flatten().to_numpy()
    np.testing.assert_array_equal(dense, csr[rows].toarray())


def test_shape_and_units_are_consistent(reader, csr) -> None:
    assert reader.shape == csr.shape
    starts = reader.unit_starts
    assert starts.dtype == np.int64 and starts[0] == 0 and starts[-1] < reader.num_rows
    assert np.all(np.diff(starts) > 0)
    assert reader.unit_name
    covered = [reader.unit_range(k) for k in range(reader.num_units)]
    assert covered[0][0] == 0 and covered[-1][1] == reader.num_rows
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))
    np.testing.assert_array_equal(reader.unit_of(starts), np.arange(reader.num_units))
    with pytest.raises(IndexError):
        reader.unit_range(reader.num_units)


def test_random_subsets_single_cells_and_everything(reader, csr) -> None:
    rng = np.random.default_rng(11)
    n = csr.shape[0]
    for size in (2, 7, 40, 150, 299):
        for _ in range(3):
            _check_read(reader, csr, np.sort(rng.choice(n, size, replace=False)))
    for cell in range(n):
        _check_read(reader, csr, [cell])
    _check_read(reader, csr, np.arange(n))
    assert reader.counters.reads == 15 + n + 1


def test_read_rows_gives_the_same_cells_as_csr_rows(reader, csr) -> None:
    rng = np.random.default_rng(12)
    n = csr.shape[0]
    for size in (1, 7, 150):
        _check_read_rows(reader, csr, np.sort(rng.choice(n, size, replace=False)))
    _check_read_rows(reader, csr, np.arange(n))
    empty = np.flatnonzero(np.diff(csr.indptr) == 0)
    _check_read_rows(reader, csr, empty)  # cells without entries: empty lists, one row each
    none = reader.read_rows(np.array([], dtype=np.int64))
    assert none.num_rows == 0 and none.column_names == ["genes", "values"]
    with pytest.raises(ValueError):
        reader.read_rows(np.array([3, 2]))


def test_empty_cells_have_no_entries(reader, csr) -> None:
    empty = np.flatnonzero(np.diff(csr.indptr) == 0)
    assert empty.size >= 3
    assert reader.read(empty).num_rows == 0
    assert reader.read(empty[:1]).num_rows == 0
    full = np.flatnonzero(np.diff(csr.indptr) > 0)
    mixed = np.sort(np.concatenate((empty, full[::5])))
    table = _check_read(reader, csr, mixed)
    positions = np.flatnonzero(np.isin(mixed, empty))
    assert not np.isin(table.column(0).to_numpy(), positions).any()
    empty_table = reader.read(np.array([], dtype=np.int64))
    assert empty_table.schema == OUTPUT_SCHEMA and empty_table.num_rows == 0


def test_whole_units_and_unit_boundaries(reader, csr) -> None:
    for unit in range(reader.num_units):
        start, stop = reader.unit_range(unit)
        _check_read(reader, csr, np.arange(start, stop))
    for boundary in reader.unit_starts[1:].tolist():
        lo, hi = max(0, boundary - 3), min(csr.shape[0], boundary + 3)
        _check_read(reader, csr, np.arange(lo, hi))
        _check_read(reader, csr, [boundary - 1, boundary])
    gaps = np.arange(0, csr.shape[0], 37)  # runs of one cell, far apart, crossing every unit
    _check_read(reader, csr, gaps)


def test_concurrent_reads_are_each_right(reader, csr) -> None:
    rng = np.random.default_rng(5)
    requests = [np.sort(rng.choice(csr.shape[0], 50, replace=False)) for _ in range(8)]
    failures: list[BaseException] = []

    def work(rows: np.ndarray) -> None:
        try:
            _check_read(reader, csr, rows)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(rows,)) for rows in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]


@pytest.mark.parametrize(
    "rows", [[3, 2], [4, 4], [-1, 3], [0, 300], [10**12], [[1, 2], [3, 4]], [0.5, 1.5], np.array([2, 1], np.uint8)]
)
def test_bad_rows_are_a_value_error(reader, rows) -> None:
    with pytest.raises(ValueError, match=r"rows must|out of range") as caught:
        reader.read(rows)
    assert not isinstance(caught.value, SparseInputError)


def test_a_closed_reader_says_so(stores) -> None:
    form, path, options = stores["parquet"]
    reader = open_block_reader(form, path, **options)
    reader.close()
    reader.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        reader.read([0])


# ----------------------------------------------------------------------------------------------- units and costs


def test_parquet_units_are_the_row_groups_mapped_to_cells(tiny, csr) -> None:
    with CooParquetBlockReader(tiny.paths["parquet"]) as reader:
        assert reader.unit_name == "row group"
        meta = pq.ParquetFile(tiny.paths["parquet"]).metadata
        assert meta.num_row_groups > 4
        # datagen writes row groups of exactly row_group_size entries: unit k = the cells beginning in group k
        np.testing.assert_array_equal(reader.unit_starts, units_from_entries(csr.indptr, TINY.row_group_size))
        for unit in range(reader.num_units):
            start, stop = reader.unit_range(unit)
            first_entry = csr.indptr[start:stop][np.diff(csr.indptr)[start:stop] > 0]
            groups = np.searchsorted(reader.row_group_offsets, first_entry, side="right") - 1
            assert len(set(groups.tolist())) <= 1  # every cell of a unit begins in the same row group


def test_h5ad_units_follow_chunks_or_fixed_ranges(stores, csr) -> None:
    with H5adBlockReader(stores["h5ad"][1], unit_entries=1000) as reader:
        assert reader.unit_name == "entry range"
        np.testing.assert_array_equal(reader.unit_starts, units_from_entries(csr.indptr, 1000))
    with H5adBlockReader(stores["h5ad-chunked"][1]) as reader:
        assert reader.unit_name == "HDF5 chunk" and reader.unit_entries == 333
        np.testing.assert_array_equal(reader.unit_starts, units_from_entries(csr.indptr, 333))
    with ZarrBlockReader(stores["zarr"][1]) as reader:
        assert reader.unit_entries == ZARR_CHUNK
        np.testing.assert_array_equal(reader.unit_starts, units_from_entries(csr.indptr, ZARR_CHUNK))


def test_units_from_entries_by_hand() -> None:
    indptr = np.array([0, 5, 10, 10, 15, 15, 40, 41])  # cell 5 spans units 1 and 2 (of 10 entries each)
    np.testing.assert_array_equal(units_from_entries(indptr, 10), [0, 2, 6])
    np.testing.assert_array_equal(units_from_entries(np.array([0, 0, 0]), 10), [0])
    assert units_from_entries(np.array([0]), 10).size == 0


def test_soma_units_are_its_tiles(stores, csr) -> None:
    if "soma" not in stores:
        pytest.skip("tiledbsoma is not installed")
    with SomaBlockReader(stores["soma"][1]) as reader:
        assert reader.unit_name == "space tile" and reader.unit_cells == 16  # datagen's tile extent
        np.testing.assert_array_equal(reader.unit_starts, np.arange(0, csr.shape[0], 16))
        reader.read([17])
        assert reader.counters.units == 1 and reader.counters.storage_calls == 1
        assert reader.counters.entries_read == np.diff(csr.indptr)[17]


def test_one_cell_reads_one_row_group_not_the_file(tiny, csr) -> None:
    with CooParquetBlockReader(tiny.paths["parquet"]) as reader:
        offsets = reader.row_group_offsets
        first = np.searchsorted(offsets, csr.indptr[:-1], side="right") - 1
        last = np.searchsorted(offsets, csr.indptr[1:] - 1, side="right") - 1
        counts = np.diff(csr.indptr)
        inside = int(np.flatnonzero((first == last) & (counts > 0))[len(counts) // 2])
        straddling = np.flatnonzero((first != last) & (counts > 0))
        reader.read([inside])
        group = int(first[inside])
        assert reader.counters.units == 1 and reader.counters.storage_calls == 1
        assert reader.counters.entries_read == offsets[group + 1] - offsets[group] < reader.nnz
        assert reader.counters.entries_returned == counts[inside]
        if straddling.size:
            reader.counters.reset()
            reader.read(straddling[:1])
            assert reader.counters.units == 2
        reader.counters.reset()
        start, stop = reader.unit_range(2)
        reader.read(np.arange(start, stop))
        assert reader.counters.units <= 2  # its row group, and the next when its last cell straddles
        reader.counters.reset()
        reader.read(np.arange(csr.shape[0]))
        assert reader.counters.units == pq.ParquetFile(tiny.paths["parquet"]).metadata.num_row_groups
        assert reader.counters.entries_read == reader.nnz


def test_csr_reads_only_the_asked_entries(stores, csr) -> None:
    counts = np.diff(csr.indptr)
    cell = int(np.flatnonzero(counts > 3)[10])
    with H5adBlockReader(stores["h5ad-no-coalescing"][1], coalesce_entries=0) as reader:
        reader.read([cell])
        assert reader.counters.storage_calls == 2 and reader.counters.entries_read == counts[cell]
        reader.counters.reset()
        reader.read(np.flatnonzero(counts == 0)[:2])
        assert reader.counters.storage_calls == 0 and reader.counters.entries_read == 0
        reader.counters.reset()
        rows = np.array([1, 2, 3, 50, 51, 200])  # three runs
        reader.read(rows)
        assert reader.counters.storage_calls == 2 * 3 and reader.counters.entries_read == counts[rows].sum()
    with H5adBlockReader(stores["h5ad"][1], coalesce_entries=10**9) as reader:
        reader.read(rows)  # one slice from cell 1 to cell 200
        assert reader.counters.storage_calls == 2
        assert reader.counters.entries_read == csr.indptr[201] - csr.indptr[1]
    a, b = np.flatnonzero(counts > 0)[[20, 22]]  # two cells with a non-empty one between them
    gap = int(csr.indptr[b] - csr.indptr[a + 1])
    assert gap > 0
    for coalesce, slices in ((gap, 1), (gap - 1, 2)):  # a gap of up to coalesce_entries is read through
        with H5adBlockReader(stores["h5ad"][1], coalesce_entries=coalesce) as reader:
            _check_read(reader, csr, [a, b])
            assert reader.counters.storage_calls == 2 * slices
    with ZarrBlockReader(stores["zarr"][1], coalesce_chunks=0) as reader:
        inside = [c for c in np.flatnonzero(counts > 0)
                  if csr.indptr[c] // ZARR_CHUNK == (csr.indptr[c + 1] - 1) // ZARR_CHUNK]
        reader.read([inside[5]])
        assert reader.counters.units == 1 and reader.counters.entries_read == counts[inside[5]]
        reader.counters.reset()
        same_chunk = [c for c in inside[6:] if csr.indptr[c] // ZARR_CHUNK == csr.indptr[inside[5]] // ZARR_CHUNK
                      and c > inside[5] + 1 and counts[inside[5] + 1 : c].sum() > 0]
        reader.read([inside[5], same_chunk[0]])  # two slices in one chunk: one unit
        assert reader.counters.storage_calls == 4 and reader.counters.units == 1
        reader.counters.reset()
        reader.read(np.arange(csr.shape[0]))
        assert reader.counters.units == -(-csr.nnz // ZARR_CHUNK)


def test_concat_ranges_is_the_loop() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        starts = rng.integers(0, 100, 20)
        stops = starts + rng.integers(-2, 6, 20)
        expected = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)] + [np.empty(0)])
        np.testing.assert_array_equal(concat_ranges(starts, stops), expected.astype(np.int64))
    assert concat_ranges(np.array([], np.int64), np.array([], np.int64)).size == 0


# ------------------------------------------------------------------------------------------- files as users have them


def _coo(path: Path, cells, genes, values=None, shape=None, **options) -> Path:
    values = [1.0] * len(cells) if values is None else values
    table = pa.table({"soma_dim_0": pa.array(cells, pa.int64()), "soma_dim_1": pa.array(genes, pa.int64()),
                      "soma_data": pa.array(values, pa.float64())})
    if shape:
        table = table.replace_schema_metadata({SHAPE_KEY: json.dumps({"n_obs": shape[0], "n_vars": shape[1]})})
    pq.write_table(table, path, **options)
    return path


@pytest.mark.parametrize("statistics", [True, False])
def test_parquet_export_without_shape_or_statistics(csr, tmp_path, statistics: bool) -> None:
    coo = csr[:, ::-1].tocsr().tocoo()  # each cell's genes in decreasing order in the file
    path = _coo(tmp_path / "export.parquet", coo.row, coo.col, coo.data, row_group_size=700,
                write_statistics=statistics)
    with CooParquetBlockReader(path) as reader:
        assert reader.shape == (int(coo.row.max()) + 1, int(coo.col.max()) + 1)
        assert bool(reader.notes) is not statistics
        flipped = csr[:, ::-1].tocsr()[:, : reader.num_cols]
        rows = np.sort(np.random.default_rng(0).choice(reader.num_rows, 60, replace=False))
        _check_read(reader, flipped, rows)
    with CooParquetBlockReader(path, n_obs=400, n_vars=250) as reader:
        assert reader.shape == (400, 250)
        assert reader.read(np.arange(300, 400)).num_rows == 0  # trailing empty cells


def test_h5ad_with_unsorted_genes_comes_out_sorted(csr, tmp_path) -> None:
    shuffled = csr.copy()
    for row in range(csr.shape[0]):  # a few cells are enough; a Python loop in the test is fine
        a, b = csr.indptr[row], csr.indptr[row + 1]
        shuffled.indices[a:b], shuffled.data[a:b] = csr.indices[a:b][::-1], csr.data[a:b][::-1]
    shuffled.has_sorted_indices = False
    with H5adBlockReader(_write_h5ad(tmp_path / "unsorted.h5ad", shuffled)) as reader:
        _check_read(reader, csr, np.arange(0, 300, 3))


def test_soma_experiment_is_read(csr, tmp_path) -> None:
    pytest.importorskip("tiledbsoma")
    import tiledbsoma.io

    anndata = pytest.importorskip("anndata")
    uri = tiledbsoma.io.from_anndata(str(tmp_path / "exp"), anndata.AnnData(csr), measurement_name="RNA")
    with SomaBlockReader(uri) as reader:
        assert reader.shape == csr.shape
        _check_read(reader, csr, np.sort(np.random.default_rng(1).choice(300, 77, replace=False)))
    with pytest.raises(SparseInputError, match=r"exp: no ms\['ATAC'\]"):
        SomaBlockReader(uri, measurement="ATAC")


# ----------------------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("form", ["parquet", "h5ad", "zarr", "soma"])
def test_missing_files_name_the_file(form, tmp_path) -> None:
    with pytest.raises(SparseInputError, match=r"nowhere\.x: no such"):
        open_block_reader(form, tmp_path / "nowhere.x")


def test_unknown_form() -> None:
    with pytest.raises(ValueError, match="no sparse block reader for 'csv'"):
        open_block_reader("csv", "x.csv")


def test_truncated_and_corrupt_files_name_the_file(tiny, tmp_path) -> None:
    blob = tiny.paths["parquet"].read_bytes()
    (tmp_path / "cut.parquet").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(SparseInputError, match=r"cut\.parquet: not a readable Parquet file"):
        CooParquetBlockReader(tmp_path / "cut.parquet")
    (tmp_path / "noise.h5ad").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(SparseInputError, match=r"noise\.h5ad: not a readable HDF5"):
        H5adBlockReader(tmp_path / "noise.h5ad")
    blob = tiny.paths["h5ad"].read_bytes()
    (tmp_path / "cut.h5ad").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(SparseInputError, match=r"cut\.h5ad"):
        with H5adBlockReader(tmp_path / "cut.h5ad") as reader:
            reader.read(np.arange(reader.num_rows))
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(SparseInputError, match=r"empty\.zarr: not a readable AnnData Zarr"):
        ZarrBlockReader(tmp_path / "empty.zarr")
    (tmp_path / "plain.soma").mkdir()
    with pytest.raises(SparseInputError, match=r"plain\.soma: not a readable TileDB-SOMA"):
        pytest.importorskip("tiledbsoma")
        SomaBlockReader(tmp_path / "plain.soma")


def test_a_damaged_parquet_page_fails_at_the_read_naming_the_file(tiny, tmp_path) -> None:
    blob = bytearray(tiny.paths["parquet"].read_bytes())
    meta = pq.ParquetFile(tiny.paths["parquet"]).metadata.row_group(1).column(2)
    start = meta.data_page_offset
    blob[start + 20 : start + 400] = bytes(380)  # zero out a page of soma_data in row group 1
    (tmp_path / "damaged.parquet").write_bytes(bytes(blob))
    with CooParquetBlockReader(tmp_path / "damaged.parquet") as reader:
        reader.read([0])  # row group 0 is fine
        with pytest.raises(SparseInputError, match=r"damaged\.parquet: row group 1"):
            reader.read(np.arange(reader.num_rows))


def test_parquet_layout_errors(tmp_path) -> None:
    with pytest.raises(SparseInputError, match=r"groups\.parquet: rows must be sorted"):
        CooParquetBlockReader(_coo(tmp_path / "groups.parquet", [5, 6, 0, 1], [0, 0, 0, 0], row_group_size=2))
    inside = _coo(tmp_path / "inside.parquet", [0, 2, 1, 3], [0, 0, 0, 0], row_group_size=4)
    with CooParquetBlockReader(inside) as reader, pytest.raises(SparseInputError, match="row group 0 is not"):
        reader.read([1])
    with pytest.raises(SparseInputError, match=r"big\.parquet: soma_dim_0 \(cell index\) 9 is outside \[0, 5\)"):
        CooParquetBlockReader(_coo(tmp_path / "big.parquet", [0, 9], [0, 0], shape=(5, 3)))
    gene = _coo(tmp_path / "gene.parquet", [0, 1], [0, 7], shape=(2, 3))
    with CooParquetBlockReader(gene) as reader, pytest.raises(SparseInputError, match=r"gene\.parquet: gene index 7"):
        reader.read([0, 1])
    pq.write_table(pa.table({"cell": [0], "gene": [1], "value": [1.0]}), tmp_path / "cols.parquet")
    with pytest.raises(SparseInputError, match=r"cols\.parquet: missing column"):
        CooParquetBlockReader(tmp_path / "cols.parquet")


def test_h5ad_layout_errors(csr, tmp_path) -> None:
    import h5py

    with h5py.File(tmp_path / "dense.h5ad", "w") as handle:
        handle.create_dataset("X", data=np.zeros((3, 2), np.float32))
    with pytest.raises(SparseInputError, match=r"dense\.h5ad: X must be a CSR sparse matrix, found a dense"):
        H5adBlockReader(tmp_path / "dense.h5ad")
    path = _write_h5ad(tmp_path / "bad_indptr.h5ad", csr)
    with h5py.File(path, "r+") as handle:
        handle["X/indptr"][5] = 10**6
    with pytest.raises(SparseInputError, match=r"bad_indptr\.h5ad: X/indptr is not a valid CSR index"):
        H5adBlockReader(path)
    with pytest.raises(SparseInputError, match=r"no layers/counts matrix"):
        H5adBlockReader(path, matrix="layers/counts")
