"""The sparse cell x gene benchmark: data, block specs, every method's batches against scipy, peers, commands."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from loaderbench.sparse.blocks import BlockSpec, BlockSpecError, block_groups, parse_block_spec, parse_block_specs
from loaderbench.sparse.datagen import SparseDataConfig, ensure_sparse_dataset, open_sparse_input
from loaderbench.sparse.measure import RunSpec, build_loader, run_spec, run_spec_isolated
from loaderbench.sparse.methods import LoaderSettings
from loaderbench.sparse.sources import SHAPE_KEY, CooParquet, H5adCSR, SparseInputError

TINY = SparseDataConfig(n_cells=300, n_genes=200, mean_genes=20.0, empty_fraction=0.05, row_group_size=1000,
                        cells_per_step=64, seed=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return ensure_sparse_dataset(TINY, tmp_path_factory.mktemp("sparse-data"))


@pytest.fixture(scope="module")
def csr(tiny):
    return CooParquet(tiny.paths["parquet"]).to_scipy_csr()


def _paths(tiny) -> dict[str, Path]:
    return dict(tiny.paths)


# ----------------------------------------------------------------------------------------------- data


def test_generated_matrix_has_the_structure_asked_for(tiny, csr) -> None:
    per_cell = np.diff(csr.indptr)
    assert csr.shape == (300, 200)
    assert 14 < per_cell[per_cell > 0].mean() < 26  # log-normal around 20 distinct genes per cell
    assert (per_cell == 0).sum() >= 3  # a few empty cells
    assert csr.dtype == np.float32 and np.all(csr.data == np.round(csr.data)) and csr.data.min() >= 1
    popularity = np.bincount(csr.indices, minlength=200)
    assert popularity.max() > 5 * np.median(popularity)  # skewed gene popularity
    meta = pq.ParquetFile(tiny.paths["parquet"]).metadata
    assert meta.num_row_groups == -(-csr.nnz // TINY.row_group_size)
    assert all(meta.row_group(i).num_rows == TINY.row_group_size for i in range(meta.num_row_groups - 1))
    table = pq.read_table(tiny.paths["parquet"])
    assert table.schema.field("soma_dim_0").type == pa.int64() and table.schema.field("soma_data").type == pa.float32()
    assert np.all(np.diff(table.column("soma_dim_0").to_numpy()) >= 0)


def test_generation_is_seeded_and_cached(tiny, tmp_path) -> None:
    again = ensure_sparse_dataset(TINY, tiny.root.parent)
    assert again.root == tiny.root and again.nnz == tiny.nnz
    other = ensure_sparse_dataset(SparseDataConfig(**{**TINY.__dict__, "seed": 4}), tmp_path, formats=["parquet"])
    assert other.root.name != tiny.root.name


def test_every_format_holds_the_same_matrix(tiny, csr) -> None:
    assert abs(H5adCSR(tiny.paths["h5ad"]).to_scipy_csr() - csr).sum() == 0
    anndata = pytest.importorskip("anndata")
    assert abs(anndata.read_h5ad(tiny.paths["h5ad"]).X - csr).sum() == 0
    zarr_x = anndata.read_zarr(tiny.paths["zarr"]).X
    assert abs(zarr_x - csr).sum() == 0
    if "soma" in tiny.paths:
        import tiledbsoma

        with tiledbsoma.SparseNDArray.open(str(tiny.paths["soma"])) as array:
            assert array.read().tables().concat().num_rows == csr.nnz
    else:
        assert tiny.skipped["soma"]


# ----------------------------------------------------------------------------------------------- block specs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8192 / [1, 512]", [(8192 // k, k) for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)]),
        ("8192/[4,1]", [(2048, 4), (4096, 2), (8192, 1)]),
        ("16x1024", [(1024, 16)]),
        ("1024", [(1024, 1)]),
        ("65536 / 64", [(1024, 64)]),
    ],
)
def test_block_spec_grammar(text: str, expected: list[tuple[int, int]]) -> None:
    assert [(s.chunk_size, s.chunks_per_block) for s in parse_block_spec(text)] == expected


@pytest.mark.parametrize("text", ["", "abc", "8192 / 3", "0", "8x0", "x12", "8192 / [0, 4]", "8192 / [1 4]", "1.5"])
def test_bad_block_specs_fail_clearly(text: str) -> None:
    with pytest.raises(BlockSpecError, match="invalid block spec"):
        parse_block_spec(text)


def test_block_specs_combine_without_duplicates() -> None:
    specs = parse_block_specs(["64 / [1, 2]", "2x32", "64"])
    assert specs == [BlockSpec(64, 1), BlockSpec(32, 2)]
    assert BlockSpec(32, 2).block_size == 64 and str(BlockSpec(32, 2)) == "2x32"


@pytest.mark.parametrize("spec", ["7", "3x5", "64 / 8", "301"])
@pytest.mark.parametrize("shuffle", ["none", "block", "random"])
def test_block_groups_visit_every_row_once(spec: str, shuffle: str) -> None:
    (block,) = parse_block_spec(spec)
    if block.chunk_size > 300:
        with pytest.raises(BlockSpecError, match="larger than"):
            list(block_groups(300, block, shuffle))
        return
    groups = list(block_groups(300, block, shuffle, seed=1, epoch=2))
    order = np.concatenate(groups)
    assert sorted(order.tolist()) == list(range(300))
    assert all(len(g) <= block.block_size for g in groups)
    if shuffle == "block":  # a group holds whole chunks
        for group in groups:
            assert len(set((group // block.chunk_size).tolist())) <= block.chunks_per_block
    if shuffle != "none":
        assert not np.array_equal(order, np.arange(300))
        assert not np.array_equal(order, np.concatenate(list(block_groups(300, block, shuffle, seed=1, epoch=3))))


# ----------------------------------------------------------------------------------------------- batches


def _check_epoch(loader, csr, epoch: int = 0) -> np.ndarray:
    seen = []
    for batch, ids in loader.epoch(epoch, with_indices=True):
        assert batch.dtype.is_floating_point and batch.shape == (len(ids), csr.shape[1])
        np.testing.assert_array_equal(batch.numpy(), csr[ids].toarray())
        seen.append(np.asarray(ids).copy())
    return np.concatenate(seen)


@pytest.mark.parametrize("method", ["np.array", "scipy.csr", "native", "native_streaming"])
@pytest.mark.parametrize("shuffle", ["none", "block", "random"])
def test_every_batch_equals_the_csr_rows(tiny, csr, method: str, shuffle: str) -> None:
    if method == "native_streaming" and shuffle == "random":
        with pytest.raises(ValueError, match="reads blocks"):
            build_loader(_paths(tiny), LoaderSettings(method=method, chunk_size=16, chunks_per_block=4,
                                                      shuffle=shuffle))
        return
    settings = LoaderSettings(method=method, chunk_size=16, chunks_per_block=4, batch_size=48, shuffle=shuffle,
                              seed=5, num_threads=2)
    loader = build_loader(_paths(tiny), settings)
    order = _check_epoch(loader, csr, epoch=1)
    assert sorted(order.tolist()) == list(range(csr.shape[0]))
    if shuffle != "none":
        assert not np.array_equal(order, np.arange(csr.shape[0]))


def test_empty_cells_come_out_as_zeros(tiny, csr) -> None:
    empty = np.flatnonzero(np.diff(csr.indptr) == 0)
    assert empty.size
    for method in ("np.array", "scipy.csr", "native", "native_streaming"):
        loader = build_loader(_paths(tiny), LoaderSettings(method=method, chunk_size=10, chunks_per_block=3,
                                                           batch_size=64))
        for batch, ids in loader.epoch(0, with_indices=True):
            rows = np.isin(ids, empty)
            assert not batch.numpy()[rows].any()


@pytest.mark.parametrize("spec", ["1", "8x16", "32 / 2", "300"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("world_size", [1, 2])
def test_native_visits_every_cell_exactly_once(tiny, csr, spec: str, threads: int, world_size: int) -> None:
    (block,) = parse_block_spec(spec)
    seen = []
    for rank in range(world_size):
        settings = LoaderSettings(method="native", chunk_size=block.chunk_size, chunks_per_block=block.chunks_per_block,
                                  batch_size=40, seed=9, num_threads=threads, rank=rank, world_size=world_size)
        loader = build_loader(_paths(tiny), settings)
        seen.append(_check_epoch(loader, csr, epoch=0))
    assert sorted(np.concatenate(seen).tolist()) == list(range(csr.shape[0]))
    if world_size == 2:
        assert not set(seen[0].tolist()) & set(seen[1].tolist())


@pytest.mark.parametrize("spec", ["1", "5x7", "64"])
@pytest.mark.parametrize("method", ["np.array", "scipy.csr"])
def test_seed_methods_visit_every_cell_exactly_once(tiny, csr, spec: str, method: str) -> None:
    (block,) = parse_block_spec(spec)
    settings = LoaderSettings(method=method, chunk_size=block.chunk_size, chunks_per_block=block.chunks_per_block,
                              batch_size=33)
    order = _check_epoch(build_loader(_paths(tiny), settings), csr, epoch=3)
    assert sorted(order.tolist()) == list(range(csr.shape[0]))


def test_same_seed_same_order_whatever_the_threads(tiny) -> None:
    orders = []
    for threads in (1, 2):
        settings = LoaderSettings(method="native", chunk_size=8, chunks_per_block=4, batch_size=50, num_threads=threads)
        orders.append(np.concatenate([ids for _, ids in build_loader(_paths(tiny), settings).epoch(1, True)]))
    np.testing.assert_array_equal(*orders)


def test_chunk_larger_than_the_data_is_one_clear_error(tiny) -> None:
    settings = LoaderSettings(method="np.array", chunk_size=301, chunks_per_block=1)
    for method in ("np.array", "native", "torch"):
        with pytest.raises(BlockSpecError, match="chunk size 301 is larger than"):
            build_loader(_paths(tiny), LoaderSettings(**{**settings.to_dict(), "method": method}))
    from loaderbench.sparse.data_loader import run_data_loader

    with pytest.raises(BlockSpecError, match="larger than the data"):
        run_data_loader(tiny, [settings], epochs=1, isolate=False, echo=lambda _: None)
    from loaderbench.sparse.read_chunks import run_read_chunks

    with pytest.raises(BlockSpecError, match="larger than the data"):
        run_read_chunks(tiny, [1000], [0], echo=lambda _: None)


# ----------------------------------------------------------------------------------------------- peers


def test_torch_peer_batches_equal_the_csr_rows(tiny, csr) -> None:
    for workers in (0, 2):
        settings = LoaderSettings(method="torch", chunk_size=16, chunks_per_block=4, batch_size=48, num_workers=workers)
        order = _check_epoch(build_loader(_paths(tiny), settings), csr, epoch=0)
        assert sorted(order.tolist()) == list(range(csr.shape[0]))


@pytest.mark.parametrize(("peer", "workers"), [("scdataset", 0), ("scdataset", 2), ("annbatch", 0)])
def test_peers_run_or_report_why_not(tiny, csr, peer: str, workers: int) -> None:
    settings = LoaderSettings(method=peer, chunk_size=16, chunks_per_block=4, batch_size=32, num_workers=workers)
    rows = run_spec(RunSpec(paths={k: str(v) for k, v in tiny.paths.items()}, settings=settings, epochs=2,
                            include_first_batch=True))
    if rows[0]["status"] != "ok":
        assert rows[0]["status"] == "unavailable" and rows[0]["reason"]
        return
    assert [r["samples"] for r in rows] == [csr.shape[0]] * 2
    total = 0.0
    for batch, _ in build_loader(_paths(tiny), settings).epoch(0):
        assert batch.dtype.is_floating_point and batch.layout.__str__() == "torch.strided"
        total += float(batch.sum())
    assert total == pytest.approx(float(csr.sum()))


def test_isolated_measurement_reports_memory(tiny) -> None:
    settings = LoaderSettings(method="native", chunk_size=16, chunks_per_block=4, batch_size=64, num_threads=2)
    rows = run_spec_isolated(RunSpec(paths={k: str(v) for k, v in tiny.paths.items()}, settings=settings, epochs=2))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(r["peak_pss_mb"] > 10 and r["samples_per_s"] > 0 for r in rows)
    assert rows[0]["samples"] == 300 - 64  # the first batch is timed apart


# ----------------------------------------------------------------------------------------------- user input


def _write_coo(path: Path, cells: list[int], genes: list[int], shape: tuple[int, int] | None = None) -> Path:
    table = pa.table({"soma_dim_0": pa.array(cells, pa.int64()), "soma_dim_1": pa.array(genes, pa.int64()),
                      "soma_data": pa.array([1.0] * len(cells), pa.float32())})
    if shape:
        table = table.replace_schema_metadata({SHAPE_KEY: json.dumps({"n_obs": shape[0], "n_vars": shape[1]})})
    pq.write_table(table, path)
    return path


def test_user_parquet_gene_out_of_range_is_a_clear_error(tmp_path) -> None:
    bad = _write_coo(tmp_path / "bad.parquet", [0, 1, 2], [3, 60, 1], shape=(3, 50))
    with pytest.raises(SparseInputError, match=r"bad\.parquet: soma_dim_1 \(gene index\) 60 is outside \[0, 50\)"):
        open_sparse_input(bad, tmp_path / "data")
    plain = _write_coo(tmp_path / "plain.parquet", [0, 1], [3, 60])
    with pytest.raises(SparseInputError, match="plain.parquet.*60 is outside"):
        CooParquet(plain, n_vars=50)
    negative = _write_coo(tmp_path / "neg.parquet", [0, 1], [3, -1])
    with pytest.raises(SparseInputError, match="neg.parquet.*-1 is outside"):
        CooParquet(negative)


def test_user_parquet_layout_errors_name_the_file(tmp_path) -> None:
    unsorted = _write_coo(tmp_path / "unsorted.parquet", [2, 0, 1], [1, 1, 1])
    with pytest.raises(SparseInputError, match="unsorted.parquet: rows must be sorted"):
        CooParquet(unsorted)
    pq.write_table(pa.table({"cell": [0], "gene": [1], "value": [1.0]}), tmp_path / "cols.parquet")
    with pytest.raises(SparseInputError, match="cols.parquet: missing column"):
        CooParquet(tmp_path / "cols.parquet")
    with pytest.raises(SparseInputError, match="expected an .h5ad"):
        open_sparse_input(_write_coo(tmp_path / "x.csv", [0], [0]), tmp_path)


def test_user_files_are_used_as_given(tiny, csr, tmp_path) -> None:
    from_h5ad = open_sparse_input(tiny.paths["h5ad"], tmp_path, formats=["parquet", "h5ad"])
    assert from_h5ad.paths["h5ad"] == tiny.paths["h5ad"]
    assert abs(CooParquet(from_h5ad.paths["parquet"]).to_scipy_csr() - csr).sum() == 0
    trailing = _write_coo(tmp_path / "own.parquet", [0, 0, 3], [1, 7, 2], shape=(6, 9))
    own = open_sparse_input(trailing, tmp_path, formats=["parquet", "h5ad"])
    assert (own.n_obs, own.n_vars, own.nnz) == (6, 9, 3)
    dense = H5adCSR(own.paths["h5ad"]).to_scipy_csr().toarray()
    assert dense.shape == (6, 9) and dense[0, 7] == 1 and dense[5].sum() == 0


# ----------------------------------------------------------------------------------------------- commands


def _cli(argv: list[str]) -> int:
    from loaderbench.sparse.cli import register

    parser = argparse.ArgumentParser(prog="loaderbench")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_commands_write_their_parquet_files(tiny, tmp_path, capsys) -> None:
    out = tmp_path / "results"
    source = ["--input", str(tiny.paths["parquet"]), "--data-dir", str(tmp_path / "data"), "--out", str(out),
              "--quiet"]
    assert _cli(["sparse", "read-chunks", *source, "-c", "100", "--repeats", "1"]) == 0
    chunks = pd.read_parquet(out / "sparse_read_chunks.parquet")
    ok = chunks[chunks["status"] == "ok"]
    assert set(ok["shuffle"]) == {"none", "intra-chunk", "global"}
    assert set(ok["reader"]) == {"read_table", "read_blockwise_table", "read_blockwise_scipy_coo",
                                 "read_blockwise_scipy_csr"}
    assert ok["entries"].nunique() == 1 and (ok["elapsed_s"] > 0).all()
    assert "read_blockwise_scipy_csr elapsed:" in capsys.readouterr().out
    for _ in range(2):  # appends
        assert _cli(["sparse", "data-loader", *source, "-b", "2x25", "-B", "32", "-E", "2", "--in-process",
                     "--threads", "2", "--workers", "0", "-m", "np.array,scipy.csr,native,torch,annbatch"]) == 0
    epochs = pd.read_parquet(out / "sparse_epochs.parquet")
    assert len(epochs) == 2 * (4 * 2 + 1)
    ok = epochs[epochs["status"] == "ok"]
    assert set(ok["loader"]) == {"np.array", "scipy.csr", "native", "torch"}
    assert (ok["samples_per_s"] > 0).all() and (ok["peak_uss_mb"] > 0).all() and ok["host"].all()
    assert (out / "plots" / "sparse_speed_vs_memory.png").stat().st_size > 1000
    from loaderbench.sparse.report import sparse_sections

    sections = sparse_sections(out)
    assert [title for title, _ in sections][0].startswith("Sparse cell x gene")
    assert "data:image/png;base64," in sections[0][1] and len(sections) == 2
    html = (out / "report.html").read_text()  # the commands re-render the shared report with their sections
    assert "Sparse cell x gene loading" in html and "Sparse: reading chunks" in html
    assert "No track results" not in html
    from loaderbench.report.terminal import summary_table

    terminal = summary_table(out)
    assert "Sparse data loader [sparse]" in terminal and terminal.count("* fastest") == 1
    from loaderbench.sparse.data_loader import per_config

    table = per_config(epochs)
    ran = table[table["status"] == "ok"]
    assert table["fastest"].sum() == 1 and table.loc[table["fastest"], "samples_per_s"].iloc[0] == \
        ran["samples_per_s"].max()
    assert (table["user_code_lines"] > 0).all()  # annbatch's too, whether or not it ran here
    assert "★ fastest" in sections[0][1] and "user code lines" in sections[0][1]
    annbatch = epochs[epochs["loader"] == "annbatch"].iloc[0]
    if annbatch["status"] != "ok":  # the reason is shown, escaped
        assert "annbatch" in sections[0][1] and ">=" not in sections[0][1].replace("&gt;=", "")


def test_peers_flag_runs_the_native_loaders_beside_every_peer(tiny, tmp_path, monkeypatch) -> None:
    from loaderbench.sparse import data_loader
    from loaderbench.sparse.peers import PEERS

    asked: list[str] = []

    def record(dataset, settings, **kwargs):
        asked.extend(s.method for s in settings)
        return pd.DataFrame()

    monkeypatch.setattr(data_loader, "run_data_loader", record)
    monkeypatch.setattr(data_loader, "append_epochs", lambda out, df: tmp_path / "none.parquet")
    common = ["--input", str(tiny.paths["parquet"]), "--data-dir", str(tmp_path), "--out", str(tmp_path), "--quiet",
              "-b", "2x25", "--threads", "1", "--workers", "0"]
    assert _cli(["sparse", "data-loader", *common, "--peers"]) == 0
    assert list(dict.fromkeys(asked)) == ["native", "native_streaming", *PEERS]
    with pytest.raises(SystemExit, match="give --peers or -m/--method, not both"):
        _cli(["sparse", "data-loader", *common, "--peers", "-m", "native"])


def test_user_code_lines_are_counted_for_every_loader() -> None:
    from loaderbench.sparse.measure import ALL_LOADERS
    from loaderbench.sparse.user_code import user_code_lines

    counts = {method: user_code_lines(method) for method in ALL_LOADERS}
    assert all(isinstance(n, int) and n > 0 for n in counts.values()), counts
    # the docs' collection is written by the user too; the seed's whole method is the seed's code
    assert counts["annbatch_collection"] > counts["annbatch"]
    assert counts["np.array"] == counts["scipy.csr"] > counts["native"]


def test_command_errors_are_exceptions_with_one_message(tiny, tmp_path) -> None:
    common = ["--input", str(tiny.paths["parquet"]), "--data-dir", str(tmp_path), "--out", str(tmp_path), "--quiet"]
    with pytest.raises(BlockSpecError, match="invalid block spec '12 / 5'"):
        _cli(["sparse", "data-loader", *common, "-b", "12 / 5"])
    with pytest.raises(BlockSpecError, match="chunk size 4096 is larger than the data"):
        _cli(["sparse", "data-loader", *common, "-b", "4096", "-m", "native"])
    with pytest.raises(ValueError, match="unknown method"):
        _cli(["sparse", "data-loader", *common, "-b", "8", "-m", "nope"])
    with pytest.raises(SparseInputError, match="missing.h5ad: no such file"):
        _cli(["sparse", "generate", "--input", str(tmp_path / "missing.h5ad"), "--data-dir", str(tmp_path)])


def test_run_tracks_sparse_writes_its_results_and_report_sections(tiny, tmp_path, monkeypatch, capsys) -> None:
    """`loaderbench run --tracks sparse`: no image data, both sparse parquet files, the report sections."""
    from loaderbench.sparse import track

    monkeypatch.setattr(track, "prepare_sparse_dataset", lambda *args, **kwargs: tiny)
    monkeypatch.setitem(track.TRACK_BLOCK_SPECS, "quick", ["2x25"])
    out, data = tmp_path / "results", tmp_path / "data"
    from loaderbench.cli import main

    assert main(["run", "--tracks", "sparse", "--out", str(out), "--data-dir", str(data), "--quiet"]) == 0
    assert not data.exists()  # the image formats were not generated
    epochs = pd.read_parquet(out / "sparse.parquet")
    assert {"native", "np.array", "scipy.csr"} <= set(epochs.loc[epochs["status"] == "ok", "loader"])
    assert (out / "sparse_read_chunks.parquet").is_file()
    html = (out / "report.html").read_text()
    assert "Sparse cell x gene loading" in html and "Sparse: reading chunks" in html
    assert "Sparse data loader [sparse]" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ files as users bring them


def _soma_export(path: Path, csr, statistics: bool = True) -> Path:
    """COO Parquet as a TileDB-SOMA export writes it: the three columns, no shape metadata."""
    coo = csr.tocoo()
    table = pa.table({"soma_dim_0": pa.array(coo.row.astype(np.int64)),
                      "soma_dim_1": pa.array(coo.col.astype(np.int64)),
                      "soma_data": pa.array(coo.data.astype(np.float32))})
    pq.write_table(table, path, row_group_size=500, write_statistics=statistics)
    return path


@pytest.mark.parametrize("statistics", [True, False])
def test_coo_without_shape_metadata_gets_its_shape_inferred(csr, tmp_path, statistics: bool) -> None:
    path = _soma_export(tmp_path / "export.parquet", csr[:, :150], statistics)
    coo = CooParquet(path, check_genes=False)
    highest = int(csr[:, :150].tocoo().col.max())
    assert coo.shape == (int(csr[:, :150].tocoo().row.max()) + 1, highest + 1)
    how = "the footer statistics" if statistics else "a pass over soma_dim_1 (the footer has no statistics)"
    assert coo.shape_from == {"n_obs": "max soma_dim_0 + 1", "n_vars": f"max soma_dim_1 + 1, from {how}"}
    dataset = open_sparse_input(path, tmp_path / "data", formats=["parquet"])
    assert dataset.notes == [f"no shape metadata: 300 cells (max soma_dim_0 + 1), {highest + 1} genes (max soma_dim_1 "
                             "+ 1, from a pass over soma_dim_1); pass --n-cells/--n-genes if the matrix is larger "
                             "(empty trailing cells or unused last genes)"]  # the input check reads every gene
    assert "160 genes (from --n-genes)" in open_sparse_input(path, tmp_path / "data", n_genes=160).notes[0]
    given = open_sparse_input(path, tmp_path / "data", formats=["parquet"], n_genes=160, n_cells=300)
    assert (given.n_obs, given.n_vars, given.notes) == (300, 160, [])
    for method in ("np.array", "scipy.csr", "native"):
        settings = LoaderSettings(method=method, chunk_size=10, chunks_per_block=2, batch_size=50, shuffle="none")
        loader = build_loader(given.paths, settings, (given.n_obs, given.n_vars))
        batches = [batch for batch, _ in loader.epoch(0)]
        dense = torch.cat(batches).numpy()
        assert dense.shape == (300, 160), method
        np.testing.assert_array_equal(dense[:, :150], csr[:, :150].toarray())


def test_commands_run_on_a_coo_export_without_shape(csr, tmp_path, capsys) -> None:
    path = _soma_export(tmp_path / "export.parquet", csr)
    common = ["--input", str(path), "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--quiet"]
    assert _cli(["sparse", "data-loader", *common, "-b", "2x25", "-B", "32", "-E", "1", "--threads", "1",
                 "--workers", "0", "-m", "np.array,scipy.csr,native,torch"]) == 0  # in fresh processes
    epochs = pd.read_parquet(tmp_path / "out" / "sparse_epochs.parquet")
    assert list(epochs["status"]) == ["ok"] * 4 and set(epochs["n_vars"]) == {csr.tocoo().col.max() + 1}
    assert _cli(["sparse", "read-chunks", *common, "-c", "100", "--repeats", "1"]) == 0
    chunks = pd.read_parquet(tmp_path / "out" / "sparse_read_chunks.parquet")
    assert set(chunks["status"]) == {"ok"} and chunks["entries"].nunique() == 1
    assert "no shape metadata: 300 cells" in capsys.readouterr().out


def _legacy_h5ad(path: Path, csr, name: str = "X") -> Path:
    """An .h5ad as anndata < 0.7 wrote it: no encoding attributes, CSR as ``h5sparse_format``, frames as records."""
    import h5py

    with h5py.File(path, "w") as handle:
        x = handle.create_group(name)
        x.attrs["h5sparse_format"] = "csr"
        x.attrs["h5sparse_shape"] = np.array(csr.shape)
        for key in ("data", "indices", "indptr"):
            x.create_dataset(key, data=getattr(csr, key))
        for frame, n in (("obs", csr.shape[0]), ("var", csr.shape[1])):
            handle.create_dataset(frame, data=np.array([(f"{frame}{i}".encode(),) for i in range(n)],
                                                       dtype=[("index", "S12")]))
        if name != "X":
            handle.create_dataset("X", data=np.zeros(csr.shape, np.float32))
            handle.create_dataset("raw.var", data=handle["var"][...])
        handle.create_group("uns")
    return path


def test_legacy_h5ad_is_read_through_anndata(csr, tmp_path) -> None:
    import anndata as ad

    path = _legacy_h5ad(tmp_path / "old.h5ad", csr)
    matrix = H5adCSR(path)
    assert matrix.reader == "anndata" and abs(matrix.to_scipy_csr() - csr).sum() == 0
    dataset = open_sparse_input(path, tmp_path / "data", formats=["parquet", "h5ad"])
    assert "written by anndata < 0.7" in dataset.notes[0]
    copy = dataset.paths["h5ad"]
    assert copy != path and abs(ad.read_h5ad(copy).X - csr).sum() == 0  # the peers read the copy's X
    assert abs(CooParquet(dataset.paths["parquet"]).to_scipy_csr() - csr).sum() == 0


def test_h5ad_matrix_is_chosen_and_a_dense_x_names_the_alternative(csr, tmp_path) -> None:
    path = _legacy_h5ad(tmp_path / "raw.h5ad", csr, name="raw.X")
    with pytest.raises(SparseInputError, match=r"raw\.h5ad: X must be a CSR .* found a dense 300 x 200 array; this "
                                               r"file has a CSR matrix in raw\.X: pass --matrix raw\.X"):
        H5adCSR(path)
    assert abs(H5adCSR(path, "raw.X").to_scipy_csr() - csr).sum() == 0
    assert abs(H5adCSR(path, "raw").to_scipy_csr() - csr).sum() == 0
    with pytest.raises(SparseInputError, match="--matrix 'obsm': name X, raw.X or layers/NAME"):
        H5adCSR(path, "obsm")
    with pytest.raises(SparseInputError, match=r"no layers/counts matrix; this file has a CSR matrix in raw\.X"):
        H5adCSR(path, "layers/counts")


def _unsorted(csr):
    """``csr`` with every cell's gene indices reversed (what scanpy's pbmc68k_reduced raw.X looks like)."""
    reversed_ = csr.copy()
    for row in range(csr.shape[0]):
        a, b = csr.indptr[row], csr.indptr[row + 1]
        reversed_.indices[a:b] = csr.indices[a:b][::-1]
        reversed_.data[a:b] = csr.data[a:b][::-1]
    reversed_.has_sorted_indices = False
    return reversed_


def test_unsorted_genes_are_sorted_for_tiledbsoma(csr, tmp_path, capsys) -> None:
    pytest.importorskip("tiledbsoma")
    import tiledbsoma

    path = _legacy_h5ad(tmp_path / "unsorted.h5ad", _unsorted(csr))
    dataset = open_sparse_input(path, tmp_path / "data", formats=["parquet", "soma"])
    with_genes = int((np.diff(csr.indptr) > 1).sum())
    assert f"{with_genes:,} of 300 cells list their genes out of order" in dataset.notes[1]
    assert "soma" in dataset.paths, dataset.skipped
    with tiledbsoma.SparseNDArray.open(str(dataset.paths["soma"])) as array:
        got = array.read().coos().concat().to_scipy().tocsr()
    assert abs(got - csr).sum() == 0
    out = tmp_path / "out"
    assert _cli(["sparse", "read-chunks", "--input", str(path), "--data-dir", str(tmp_path / "data"), "--out",
                 str(out), "--quiet", "-c", "100", "--repeats", "1"]) == 0
    chunks = pd.read_parquet(out / "sparse_read_chunks.parquet")
    assert set(chunks["format"]) == {"parquet", "tiledbsoma"} and set(chunks["status"]) == {"ok"}


def test_duplicate_genes_in_a_cell_are_refused(csr, tmp_path) -> None:
    doubled = csr.copy()
    row = int(np.flatnonzero(np.diff(csr.indptr) > 1)[0])
    a = csr.indptr[row]
    doubled.indices[a + 1] = doubled.indices[a]
    path = _legacy_h5ad(tmp_path / "twice.h5ad", doubled)
    with pytest.raises(SparseInputError, match=rf"twice\.h5ad: X: cell {row} lists gene {csr.indices[a]} twice"):
        open_sparse_input(path, tmp_path / "data", formats=["parquet"])


def test_read_chunks_lists_a_backend_that_cannot_run(tiny, tmp_path) -> None:
    from loaderbench.sparse.read_chunks import run_read_chunks, summary_table

    without = dataclasses.replace(tiny, paths={"parquet": tiny.paths["parquet"]},
                                  skipped={"soma": "tiledbsoma is not installed"})
    df = run_read_chunks(without, [100], [0], echo=lambda _line: None)
    assert "tiledbsoma: not run (tiledbsoma is not installed)" in summary_table(df)
