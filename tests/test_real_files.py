"""Real files, as a new user brings them: images and cell data that ship inside PyPI wheels.

scikit-image's ``data/`` folder (``camera.png``: grey uint8, ``astronaut.png``: RGB) and scanpy's bundled
``pbmc68k_reduced.h5ad`` (written by anndata < 0.7: no encoding attributes, a dense ``X`` and a CSR ``raw.X`` whose
genes are out of order in every cell) are taken from the wheels, downloaded once with ``pip download --no-deps``
into ``data/wheels/`` (git-ignored) and read with ``zipfile``: nothing is installed. OME-Arrow files are written by
``ome_arrow`` itself. Every figure is checked pixel- or row-exact against the packages' own readers (PIL and
``ome_arrow.to_numpy`` for images, ``anndata.read_h5ad`` for cells). Without network the module is skipped, saying so.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from loaderbench import example_data
from loaderbench.cli import main

WHEELS = Path(__file__).resolve().parents[1] / "data" / "wheels"
TILE = 128  # camera.png and astronaut.png are 512 x 512: 16 real tiles each


def _wheel(package: str) -> Path:
    """The cached wheel of ``package`` (downloaded when missing); the module is skipped without network."""
    try:
        return example_data.wheel(package, WHEELS)
    except example_data.ExampleDataUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The raw files out of the wheels: camera.png, astronaut.png, pbmc68k_reduced.h5ad (and krumsiek11.h5ad when
    the wheel has it)."""
    folder = tmp_path_factory.mktemp("real")
    for package in example_data.WHEEL_PATTERNS:
        _wheel(package)
    files: dict[str, Path] = {}
    for name, (package, suffix) in example_data.FILES.items():
        path = example_data.extract(name, WHEELS, folder)
        if path is None and name in ("camera", "astronaut", "pbmc68k"):
            pytest.fail(f"{_wheel(package).name} has no {suffix}")
        if path is not None:
            files[name] = path
    return files


def _png(path: Path) -> np.ndarray:
    """A PNG as PIL reads it, ``(C, H, W)``."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(path.read_bytes())))
    return pixels[np.newaxis] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)


def _tiles(image: np.ndarray) -> list[np.ndarray]:
    return [image[:, y : y + TILE, x : x + TILE] for y in range(0, image.shape[1], TILE)
            for x in range(0, image.shape[2], TILE)]


def _ome(image: np.ndarray, image_id: str, dtype: str | None = None) -> pa.StructScalar:
    import ome_arrow

    c, h, w = image.shape
    return ome_arrow.from_numpy(image.reshape(1, c, 1, h, w), image_id=image_id, dtype_meta=dtype or str(image.dtype))


def _image_table(images: list[np.ndarray], column: str = "image", dtypes: list[str] | None = None) -> pa.Table:
    """Images as ome_arrow builds them, one per row, in a column named as ``to_ome_parquet`` names it; no row_id."""
    scalars = [_ome(im, f"tile-{i}", dtypes[i] if dtypes else None) for i, im in enumerate(images)]
    return pa.table({column: pa.concat_arrays([pa.repeat(s, 1) for s in scalars])})


@pytest.fixture(scope="module")
def images(real: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """OME-Arrow Parquet files of the real images: ``camera`` (ome_arrow.to_ome_parquet, one row), ``tiles`` (16
    camera tiles), ``rgb`` (16 astronaut tiles), ``mixed`` (8 tiles declared uint8, 8 the same widened to uint16),
    ``two`` (two image columns)."""
    import ome_arrow

    folder = tmp_path_factory.mktemp("ome")
    camera, astronaut = _png(real["camera"]), _png(real["astronaut"])
    out = {name: folder / f"{name}.parquet" for name in ("camera", "tiles", "rgb", "mixed", "two")}
    ome_arrow.to_ome_parquet(_ome(camera, "camera"), str(out["camera"]))
    tiles = _tiles(camera)
    pq.write_table(_image_table(tiles), out["tiles"])
    pq.write_table(_image_table(_tiles(astronaut)), out["rgb"])
    wide = [t.astype(np.uint16) * 257 for t in tiles[8:]]
    pq.write_table(_image_table(tiles[:8] + wide, dtypes=["uint8"] * 8 + ["uint16"] * 8), out["mixed"])
    table = _image_table(tiles)
    pq.write_table(table.append_column("mask", table.column("image")), out["two"])
    return out


# ----------------------------------------------------------------------------------------------- images


def test_ome_parquet_of_ome_arrow_is_read_as_written(real, images, capsys) -> None:
    import ome_arrow

    table = pq.read_table(images["camera"])
    assert table.column_names == ["image"]  # what ome_arrow.to_ome_parquet writes: no ome_image, no row_id
    camera = _png(real["camera"])
    theirs = ome_arrow.to_numpy(table.column("image")[0])  # (T, C, Z, Y, X)
    np.testing.assert_array_equal(theirs.reshape(camera.shape), camera)
    assert main(["inspect", str(images["camera"])]) == 0
    shown = capsys.readouterr().out
    assert "image column:  image" in shown and "(C,H,W) 1x512x512  x1 rows" in shown and "declared uint8" in shown


@pytest.mark.parametrize("kind", ["camera", "tiles", "rgb"])
def test_native_image_loader_is_pixel_exact(real, images, kind: str) -> None:
    from loaderbench.loaders.native import NativeImageLoader

    source = _png(real["astronaut" if kind == "rgb" else "camera"])
    expected = [source] if kind == "camera" else _tiles(source)
    view = NativeImageLoader(images[kind], dtype=None)  # the one OME-Arrow column, found by itself
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(view[i].numpy().astype(np.uint8), want)  # stored widened to uint16
    loader = NativeImageLoader(images[kind], column="image", batch_size=5, shuffle=True, seed=1, num_threads=2)
    seen = []
    for batch, rows in loader.iter_with_indices():
        for k, row in enumerate(rows):
            assert torch.equal(batch[k], torch.from_numpy(np.array(expected[row])).float().div(255))
        seen += rows
    assert sorted(seen) == list(range(len(expected)))


def test_two_image_columns_need_column(images) -> None:
    from loaderbench.formats import FormatError
    from loaderbench.loaders.native import NativeImageLoader

    with pytest.raises(FormatError, match=r"two\.parquet: 2 OME-Arrow image columns \(image, mask\).*--column"):
        NativeImageLoader(images["two"])
    assert len(NativeImageLoader(images["two"], column="mask", batch_size=4)) == 4


def test_mixed_uint8_uint16_rows_scale_by_their_own_type(real, images) -> None:
    from loaderbench.datagen import open_input
    from loaderbench.loaders.native import NativeImageLoader

    assert open_input(str(images["mixed"])).dtype == "uint8+uint16"
    tiles = _tiles(_png(real["camera"]))
    batch = next(iter(NativeImageLoader(images["mixed"], batch_size=16)))
    for row, tile in enumerate(tiles):  # the widened copies are the same picture at 16 bits
        np.testing.assert_allclose(batch[row].numpy(), tile / 255.0, rtol=0, atol=1e-6)


def _toml(path: Path) -> Path:
    path.write_text("[getitem]\nrepeats = 1\nsamples = 8\nwarmup = 1\ntransforms = ['none']\n"
                    "[conversion]\nrepeats = 1\nsamples = 8\nwarmup = 1\nbatch_size = 4\n")
    return path


@pytest.mark.parametrize("kind", ["tiles", "mixed", "two"])
def test_run_input_on_real_images(images, tmp_path, capsys, kind: str) -> None:
    out = tmp_path / "results"
    argv = ["run", "--input", str(images[kind]), "--tracks", "getitem", "conversion", "--config",
            str(_toml(tmp_path / "small.toml")), "--out", str(out), "--quiet"]
    if kind == "two":
        assert main(argv) == 2
        assert "2 OME-Arrow image columns (image, mask)" in capsys.readouterr().err
        argv += ["--column", "mask"]
    assert main(argv) == 0, capsys.readouterr().err
    for track in ("getitem", "conversion"):
        rows = pd.read_parquet(out / f"{track}.parquet")
        assert set(rows["loader"]) >= {"preloaded", "native"}, track
        assert set(rows["n_images"]) == {16} and set(rows["image_size"]) == {f"{TILE}x{TILE}"}
        assert set(rows["dtype"]) == {"uint8+uint16" if kind == "mixed" else "uint8"}


# ----------------------------------------------------------------------------------------------- cells


def _anndata(path: Path, raw: bool = False):
    import anndata as ad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = ad.read_h5ad(path)
    return (adata.raw.X if raw else adata.X).tocsr()


@pytest.fixture(scope="module")
def pbmc(real, tmp_path_factory: pytest.TempPathFactory):
    """pbmc68k_reduced's raw.X opened as ``sparse --input ... --matrix raw.X`` opens it (every format)."""
    from loaderbench.sparse.datagen import open_sparse_input

    return open_sparse_input(real["pbmc68k"], tmp_path_factory.mktemp("cells"), matrix="raw.X")


def test_pbmc68k_is_read_through_anndata(real, pbmc) -> None:
    from loaderbench.sparse.sources import CooParquet, H5adCSR, SparseInputError

    with pytest.raises(SparseInputError, match=r"X must be a CSR .* dense 700 x 765 array; .* --matrix raw\.X"):
        H5adCSR(real["pbmc68k"])
    expected = _anndata(real["pbmc68k"], raw=True)
    assert not expected.has_sorted_indices  # the file lists genes out of order: what the writers must cope with
    assert (pbmc.n_obs, pbmc.n_vars, pbmc.nnz) == (*expected.shape, expected.nnz)
    assert "anndata < 0.7" in pbmc.notes[0] and "700 of 700 cells list their genes out of order" in pbmc.notes[1]
    assert abs(CooParquet(pbmc.paths["parquet"]).to_scipy_csr() - expected).sum() == 0
    assert abs(_anndata(pbmc.paths["h5ad"]) - expected).sum() == 0  # the copy the .h5ad peers read
    if "soma" in pbmc.paths:
        import tiledbsoma

        with tiledbsoma.SparseNDArray.open(str(pbmc.paths["soma"])) as array:
            assert abs(array.read().coos().concat().to_scipy().tocsr() - expected).sum() == 0
    else:
        assert pbmc.skipped["soma"]


@pytest.mark.parametrize("method", ["native", "np.array", "scipy.csr", "torch"])
def test_every_sparse_loader_is_row_exact_on_pbmc68k(real, pbmc, method: str) -> None:
    from loaderbench.sparse.measure import build_loader
    from loaderbench.sparse.methods import LoaderSettings

    expected = _anndata(real["pbmc68k"], raw=True).toarray()
    settings = LoaderSettings(method=method, chunk_size=25, chunks_per_block=4, batch_size=64, seed=3)
    loader = build_loader(pbmc.paths, settings, (pbmc.n_obs, pbmc.n_vars))
    seen = []
    for batch, rows in loader.epoch(0, with_indices=True):
        np.testing.assert_array_equal(batch.numpy(), expected[rows])
        seen += list(rows)
    assert sorted(seen) == list(range(expected.shape[0]))


def test_native_sparse_loader_on_a_soma_export_of_pbmc68k(real, tmp_path) -> None:
    from loaderbench.loaders.native_sparse import NativeSparseLoader

    expected = _anndata(real["pbmc68k"], raw=True)
    coo = expected.tocoo()
    export = pa.table({"soma_dim_0": pa.array(coo.row.astype(np.int64)),
                       "soma_dim_1": pa.array(coo.col.astype(np.int64)),
                       "soma_data": pa.array(coo.data)}).sort_by("soma_dim_0")
    loader = NativeSparseLoader(export, batch_size=100, shuffle="none", n_cols=expected.shape[1])
    dense = torch.cat([batch for batch in loader]).numpy()
    np.testing.assert_array_equal(dense, expected.toarray())


@pytest.mark.parametrize("source", ["h5ad", "soma-export"])
def test_sparse_commands_on_pbmc68k(real, tmp_path, capsys, source: str) -> None:
    expected = _anndata(real["pbmc68k"], raw=True)
    if source == "h5ad":
        given = ["--input", str(real["pbmc68k"]), "--matrix", "raw.X"]
    else:  # SOMA-like COO as a TileDB-SOMA export writes it: no shape metadata
        coo = expected.tocoo()
        order = np.lexsort((coo.col, coo.row))
        path = tmp_path / "pbmc_export.parquet"
        pq.write_table(pa.table({"soma_dim_0": pa.array(coo.row[order].astype(np.int64)),
                                 "soma_dim_1": pa.array(coo.col[order].astype(np.int64)),
                                 "soma_data": pa.array(coo.data[order])}), path)
        given = ["--input", str(path)]
    common = [*given, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(["sparse", "read-chunks", *common, "-c", "350", "--repeats", "1"]) == 0
    chunks = pd.read_parquet(tmp_path / "out" / "sparse_read_chunks.parquet")
    assert set(chunks["status"]) == {"ok"} and set(chunks["entries"]) == {expected.nnz}
    assert set(chunks["format"]) == {"parquet", "tiledbsoma"}
    assert main(["sparse", "data-loader", *common, "-b", "4x50", "-B", "64", "-E", "1", "--threads", "1",
                 "--workers", "0", "-m", "native,np.array,scipy.csr,torch", "--in-process"]) == 0
    epochs = pd.read_parquet(tmp_path / "out" / "sparse_epochs.parquet")
    assert list(epochs["status"]) == ["ok"] * 4 and set(epochs["n_vars"]) == {expected.shape[1]}
    said = capsys.readouterr().out
    assert ("no shape metadata: 700 cells" in said) if source != "h5ad" else ("anndata < 0.7" in said)


def test_krumsiek11_when_the_wheel_has_it(real, tmp_path) -> None:
    """scanpy ships krumsiek11 as text in some versions; when an .h5ad of it is there, it is read like pbmc68k."""
    if "krumsiek11" not in real:
        pytest.skip("this scanpy wheel has no krumsiek11.h5ad (only pbmc68k_reduced.h5ad)")
    from loaderbench.sparse.sources import H5adCSR, SparseInputError

    try:
        matrix = H5adCSR(real["krumsiek11"])
    except SparseInputError as exc:  # a dense X is refused with the file's name and what to do
        assert "krumsiek11.h5ad" in str(exc)
        return
    assert abs(matrix.to_scipy_csr() - _anndata(real["krumsiek11"])).sum() == 0
