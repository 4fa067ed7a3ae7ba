"""The sparse benchmark's peers: every one yields dense float32 batches equal to the matrix rows, every cell exactly
once per epoch; one that cannot run is a row with its reason; annbatch in its own Python >= 3.12 interpreter."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from loaderbench.sparse.datagen import SparseDataConfig, ensure_sparse_dataset
from loaderbench.sparse.measure import RunSpec, build_loader, run_external_peer, run_spec
from loaderbench.sparse.methods import LoaderSettings
from loaderbench.sparse.peers import (
    DOCS_CHUNKING,
    EXTERNAL_PEERS,
    PEER_CLASSES,
    PeerUnavailable,
    docs_settings,
)
from loaderbench.sparse.peers import annbatch as annbatch_peer
from loaderbench.sparse.sources import CooParquet

TINY = SparseDataConfig(n_cells=300, n_genes=200, mean_genes=20.0, empty_fraction=0.05, row_group_size=1000,
                        cells_per_step=64, seed=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return ensure_sparse_dataset(TINY, tmp_path_factory.mktemp("sparse-peers"))


@pytest.fixture(scope="module")
def csr(tiny):
    return CooParquet(tiny.paths["parquet"]).to_scipy_csr()


def _paths(tiny) -> dict[str, str]:
    return {k: str(v) for k, v in tiny.paths.items()}


def _annbatch_python() -> str:
    try:
        return annbatch_peer.annbatch_python()
    except PeerUnavailable as exc:
        pytest.skip(f"annbatch: {exc}")


def _check_epoch(batches, ids, csr) -> None:
    """Dense float32 [B, genes] rows equal to the matrix rows of their cell ids; every cell exactly once."""
    assert sorted(ids.tolist()) == list(range(csr.shape[0]))
    np.testing.assert_array_equal(batches, csr[ids].toarray())


def _epoch_in_process(loader, epoch: int, csr) -> np.ndarray:
    parts, ids = [], []
    for batch, batch_ids in loader.epoch(epoch, with_indices=True):
        assert batch.dtype == __import__("torch").float32 and batch.layout.__str__() == "torch.strided"
        assert batch.dim() == 2 and batch.shape == (len(batch_ids), csr.shape[1])
        parts.append(batch.numpy().copy())
        ids.append(np.asarray(batch_ids, dtype=np.int64))
    order = np.concatenate(ids)
    _check_epoch(np.concatenate(parts), order, csr)
    return order


def _skip_unless_importable(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (scripts/setup_sparse_peers.sh)")


@pytest.mark.parametrize(("method", "workers"), [("tiledbsoma_ml", 0), ("tiledbsoma_ml_docs", 0),
                                                 ("cellxgene_census", 0)])
def test_soma_peers_yield_every_cell_once_as_its_matrix_row(tiny, csr, method: str, workers: int) -> None:
    _skip_unless_importable("tiledbsoma", "tiledbsoma_ml" if method.startswith("tiledbsoma_ml") else "cellxgene_census")
    settings = docs_settings(LoaderSettings(method=method, chunk_size=16, chunks_per_block=4, batch_size=48,
                                            num_workers=workers, seed=2))
    try:
        loader = build_loader(tiny.paths, settings)
    except PeerUnavailable as exc:  # e.g. cellxgene-census without experimental.ml: the reason must say so
        assert method == "cellxgene_census" and "cellxgene" in str(exc)
        pytest.skip(str(exc))
    first = _epoch_in_process(loader, 0, csr)
    second = _epoch_in_process(loader, 1, csr)
    assert not np.array_equal(first, np.arange(csr.shape[0]))  # shuffled
    if method == "cellxgene_census":  # tiledbsoma-ml 0.1.0 repeats one order: its seed ignores set_epoch's epoch
        assert not np.array_equal(first, second)
    assert len(loader) == -(-csr.shape[0] // 48)


def test_tiledbsoma_ml_docs_settings_are_the_library_defaults() -> None:
    _skip_unless_importable("tiledbsoma_ml")
    from tiledbsoma_ml.dataset import DEFAULT_IO_BATCH_SIZE, DEFAULT_SHUFFLE_CHUNK_SIZE

    chunk, chunks = DOCS_CHUNKING["tiledbsoma_ml_docs"]
    assert (chunk, chunk * chunks) == (DEFAULT_SHUFFLE_CHUNK_SIZE, DEFAULT_IO_BATCH_SIZE)


def test_an_unavailable_peer_is_a_row_with_its_reason(tiny, monkeypatch) -> None:
    class Missing:
        def __init__(self, *args: object) -> None:
            raise PeerUnavailable("examplelib is not installed")

    monkeypatch.setitem(PEER_CLASSES, "tiledbsoma_ml", Missing)
    rows = run_spec(RunSpec(paths=_paths(tiny), settings=LoaderSettings("tiledbsoma_ml", 16, 4), epochs=2))
    assert len(rows) == 1 and rows[0]["status"] == "unavailable"
    assert rows[0]["reason"] == "examplelib is not installed" and np.isnan(rows[0]["samples_per_s"])


def test_annbatch_without_an_interpreter_says_why(tiny, monkeypatch) -> None:
    monkeypatch.setenv(annbatch_peer.PYTHON_ENV, "/nonexistent/python3.12")
    rows = run_external_peer(RunSpec(paths=_paths(tiny), settings=LoaderSettings("annbatch", 16, 4), epochs=1))
    assert rows[0]["status"] == "unavailable" and "/nonexistent/python3.12" in rows[0]["reason"]
    monkeypatch.delenv(annbatch_peer.PYTHON_ENV)
    monkeypatch.setattr(annbatch_peer, "VENV_NAME", ".venv-that-does-not-exist")
    monkeypatch.setattr(annbatch_peer, "find_python312", lambda: None)
    rows = run_external_peer(RunSpec(paths=_paths(tiny), settings=LoaderSettings("annbatch", 16, 4), epochs=1))
    assert rows[0]["reason"] == "no Python >= 3.12 interpreter (annbatch requires it)"


def test_annbatch_in_this_interpreter_points_to_its_own(tiny) -> None:
    if importlib.util.find_spec("annbatch") is not None:
        pytest.skip("annbatch is importable here: the in-process path is exercised by the runner tests")
    with pytest.raises(PeerUnavailable, match="own interpreter"):
        build_loader(tiny.paths, LoaderSettings("annbatch", 16, 4))


@pytest.mark.parametrize("method", sorted(EXTERNAL_PEERS))
def test_annbatch_runner_yields_every_cell_once_as_its_matrix_row(tiny, csr, tmp_path: Path, method: str) -> None:
    python = _annbatch_python()
    settings = docs_settings(LoaderSettings(method=method, chunk_size=16, chunks_per_block=4, batch_size=32, seed=1))
    if method != "annbatch":  # the documented 32 x 256 chunking is larger than 300 cells: keep the layout, shrink it
        settings = dataclasses.replace(settings, chunk_size=16, chunks_per_block=4)
    prepared = annbatch_peer.prepare(_paths(tiny), settings, python)
    assert prepared["ok"], prepared
    dump = tmp_path / "batches.npz"
    answer = annbatch_peer.run_runner(annbatch_peer.build_request(_paths(tiny), settings, epochs=2,
                                                                  include_first_batch=True, dump=str(dump)),
                                      300, python)
    assert answer["ok"], answer
    assert [e["samples"] for e in answer["epochs"]] == [csr.shape[0]] * 2
    assert all(e["peak_pss_mb"] > 10 and e["samples_per_s"] > 0 for e in answer["epochs"])
    assert answer["versions"]["annbatch"] == "0.3.1" and answer["n_batches"] == -(-csr.shape[0] // 32)
    with np.load(dump) as saved:
        assert saved["x0"].dtype == np.float32 and saved["x0"].shape == csr.shape
        assert saved["sizes0"][:-1].tolist() == [32] * (len(saved["sizes0"]) - 1)
        _check_epoch(saved["x0"], saved["ids0"], csr)
        _check_epoch(saved["x1"], saved["ids1"], csr)
        assert not np.array_equal(saved["ids0"], saved["ids1"])
        assert not np.array_equal(saved["ids0"], np.arange(csr.shape[0]))


def test_annbatch_rows_have_the_measure_columns(tiny, csr) -> None:
    _annbatch_python()
    spec = RunSpec(paths=_paths(tiny), settings=LoaderSettings("annbatch", 16, 4, batch_size=64), epochs=2,
                   dataset="tiny", extra={"n_obs": csr.shape[0]})
    rows = run_external_peer(spec)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows[0]["reason"]
    native = run_spec(dataclasses.replace(spec, settings=LoaderSettings("native", 16, 4, batch_size=64)))
    assert set(native[0]) <= set(rows[0])
    assert rows[0]["format"] == "zarr" and rows[0]["loader"] == "annbatch" and rows[0]["samples"] == 300 - 64
    assert rows[0]["peer_version"] == "0.3.1"


def test_a_peer_forcing_spawn_keeps_it_on_its_own_loader_not_the_process() -> None:
    """The SOMA libraries' ``experiment_dataloader`` force the global start method to spawn when workers are asked for;
    the peer's DataLoader keeps spawn, the process gets its start method back (forked workers elsewhere still fork)."""
    import torch.multiprocessing as tmp
    from torch.utils.data import DataLoader

    from loaderbench.sparse.peers._common import dataloader_keeping_start_method

    def forcing_spawn(dataset: list[int], num_workers: int) -> DataLoader:
        tmp.set_start_method("spawn", force=True)
        return DataLoader(dataset, num_workers=num_workers)

    before = tmp.get_start_method()
    loader = dataloader_keeping_start_method(forcing_spawn, [1, 2, 3], num_workers=2)
    assert tmp.get_start_method() == before
    assert loader.multiprocessing_context is not None and loader.multiprocessing_context.get_start_method() == "spawn"
    in_process = dataloader_keeping_start_method(forcing_spawn, [1, 2, 3], num_workers=0)
    assert tmp.get_start_method() == before and in_process.multiprocessing_context is None
