"""A seeded cell x gene counts matrix with the structure of single-cell RNA-seq, stored the ways the loaders read it.

The model (per cell, a multinomial draw of UMIs over genes):

- gene popularity is Zipf-like (weight of the gene of rank r ~ 1 / r**s), the ranks shuffled over gene ids;
- the number of distinct genes a cell expresses is log-normal (default mean 2,000 of 20,000, sigma 0.5); the cell's
  library size (UMI draws) is chosen so that the expected number of distinct genes matches it;
- a count is how often a gene was drawn (small integers, stored as float32); a few cells are empty.

Files (``data/sparse-<config hash>/``): ``cells.parquet`` (SOMA-like COO, sorted by cell, row groups of
``row_group_size`` entries, shape in the key-value metadata), ``cells.h5ad`` (AnnData, CSR ``X``),
``cells.zarr`` (AnnData Zarr v3 laid out as annbatch's ``write_sharded`` writes it: ``X/data`` and ``X/indices``
in 32,768-entry chunks inside sharded, Blosc-lz4 compressed arrays) and ``cells.soma`` (a TileDB-SOMA
``SparseNDArray``) when ``tiledbsoma`` is installed. A format that cannot be written is listed with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loaderbench import interrupts
from loaderbench.formats import atomic_output, one_line
from loaderbench.progress import Progress
from loaderbench.sparse.sources import (
    DATA,
    DIM0,
    DIM1,
    SHAPE_KEY,
    CooParquet,
    CsrStream,
    H5adCSR,
    SparseInputError,
    rows_for_range,
)

FORMATS = ("parquet", "h5ad", "zarr", "soma")
FILE_NAMES = {"parquet": "cells.parquet", "h5ad": "cells.h5ad", "zarr": "cells.zarr", "soma": "cells.soma"}
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
#: annbatch ``write_sharded`` defaults for sparse arrays (entries per chunk, entries per shard)
ZARR_CHUNK = 32_768
ZARR_SHARD = 134_217_728
_COO_SCHEMA = pa.schema([(DIM0, pa.int64()), (DIM1, pa.int64()), (DATA, pa.float32())])


@dataclass(frozen=True)
class SparseDataConfig:
    """What matrix to generate; every field is part of the cache key."""

    n_cells: int = 20_000
    n_genes: int = 20_000
    mean_genes: float = 2_000.0  # mean distinct genes (non-zeros) per cell
    sigma: float = 0.5  # log-normal sigma of the non-zeros per cell
    zipf_exponent: float = 0.9  # gene popularity skew
    empty_fraction: float = 0.001  # cells with no counts at all
    seed: int = 0
    row_group_size: int = 1 << 20  # Parquet entries per row group
    cells_per_step: int = 256  # generation granularity (part of the random stream)

    def validate(self) -> SparseDataConfig:
        for name in ("n_cells", "n_genes", "row_group_size", "cells_per_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"sparse data: {name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.mean_genes <= self.n_genes:
            raise ValueError(f"sparse data: mean_genes must be in (0, n_genes={self.n_genes}], got {self.mean_genes}")
        if self.sigma < 0 or self.zipf_exponent < 0 or not 0 <= self.empty_fraction < 1:
            raise ValueError("sparse data: sigma and zipf_exponent must be >= 0 and empty_fraction in [0, 1)")
        return self

    def key(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


#: quick: ~40 M non-zeros, generated and written in well under a minute; full: >= 1 M cells (~2 G non-zeros, tens of
#: GB on disk, tens of minutes; the in-memory loaders need a machine with more RAM than that).
PRESETS = {
    "quick": SparseDataConfig(),
    "full": SparseDataConfig(n_cells=1_000_000, row_group_size=1 << 22),
}


@dataclass
class SparseDataset:
    """One matrix on disk in one or more formats."""

    name: str
    root: Path
    n_obs: int
    n_vars: int
    nnz: int
    paths: dict[str, Path]
    skipped: dict[str, str] = field(default_factory=dict)
    source: str = "generated"
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was inferred or converted from a user's file

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "n_obs": self.n_obs, "n_vars": self.n_vars,
                "nnz": self.nnz, "paths": {k: str(v) for k, v in self.paths.items()}, "skipped": self.skipped,
                "notes": self.notes}


# ----------------------------------------------------------------------------------------------- the model


def gene_weights(cfg: SparseDataConfig) -> np.ndarray:
    """Zipf-like popularity per gene id (sums to 1): rank r weighs 1 / r**s, ranks shuffled over the ids."""
    rng = np.random.default_rng([cfg.seed, 0xC0FFEE])
    ranks = rng.permutation(cfg.n_genes) + 1
    weights = 1.0 / ranks.astype(np.float64) ** cfg.zipf_exponent
    return weights / weights.sum()


def alias_tables(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias tables: draw ``i`` uniform, keep it with probability ``prob[i]``, else take ``alias[i]``."""
    n = len(weights)
    scaled = weights * n
    prob = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int32)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return prob, alias


def distinct_curve(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(expected distinct genes, draws)`` on a grid of library sizes: sum over genes of 1 - (1 - w)**draws."""
    grid = np.unique(np.geomspace(1, 200 * len(weights), 600).astype(np.int64))
    log_miss = np.log1p(-weights)
    distinct = np.array([np.sum(-np.expm1(draws * log_miss)) for draws in grid])
    return distinct, grid


def draws_for_genes(curve: tuple[np.ndarray, np.ndarray], genes: np.ndarray) -> np.ndarray:
    """Library sizes (draws) whose expected number of distinct genes is ``genes``."""
    distinct, grid = curve
    return np.rint(np.interp(genes, distinct, grid)).astype(np.int64)


def generate_cells(cfg: SparseDataConfig) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(cell, gene, count)`` arrays, cell-major and gene-sorted within a cell, ``cells_per_step`` cells at a time."""
    cfg.validate()
    weights = gene_weights(cfg)
    prob, alias = alias_tables(weights)
    curve = distinct_curve(weights)
    n_genes = cfg.n_genes
    mu = np.log(cfg.mean_genes) - cfg.sigma**2 / 2
    for step, first in enumerate(range(0, cfg.n_cells, cfg.cells_per_step)):
        rng = np.random.default_rng([cfg.seed, 1, step])
        n = min(cfg.cells_per_step, cfg.n_cells - first)
        genes = np.clip(rng.lognormal(mu, cfg.sigma, n), 1, 0.95 * n_genes)
        draws = draws_for_genes(curve, genes)
        draws[rng.random(n) < cfg.empty_fraction] = 0
        total = int(draws.sum())
        pick = rng.integers(0, n_genes, total, dtype=np.int32)
        keep = rng.random(total) < prob[pick]
        gene = np.where(keep, pick, alias[pick]).astype(np.int64)
        key = np.repeat(np.arange(n, dtype=np.int64) * n_genes, draws) + gene
        counts = np.bincount(key, minlength=n * n_genes)
        nonzero = np.flatnonzero(counts)
        yield (nonzero // n_genes + first, nonzero % n_genes, counts[nonzero].astype(np.float32))


# ----------------------------------------------------------------------------------------------- writers


def write_coo_parquet(
    pieces: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path, n_obs: int, n_vars: int,
    row_group_size: int,
) -> int:
    """SOMA-like COO Parquet from cell-major ``(cell, gene, value)`` pieces; row groups of exactly
    ``row_group_size`` entries (the last shorter). Returns the number of entries."""
    schema = _COO_SCHEMA.with_metadata({SHAPE_KEY: json.dumps({"n_obs": n_obs, "n_vars": n_vars}).encode()})
    pending: list[pa.Table] = []
    pending_rows = written = 0
    with atomic_output(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for cells, genes, values in pieces:
            pending.append(pa.table([pa.array(cells, pa.int64()), pa.array(genes, pa.int64()),
                                     pa.array(values, pa.float32())], schema=schema))
            pending_rows += len(cells)
            if pending_rows >= row_group_size:
                table = pa.concat_tables(pending)
                full = pending_rows - pending_rows % row_group_size
                writer.write_table(table.slice(0, full), row_group_size=row_group_size)
                rest = table.slice(full)
                pending, pending_rows = [rest], rest.num_rows
                written += full
        if pending_rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=row_group_size)
            written += pending_rows
    return written


def stream_to_coo(stream: CsrStream) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(cell, gene, value)`` pieces of a ``CsrStream``."""
    at = 0
    for indices, data in stream.pieces():
        yield rows_for_range(stream.indptr, at, at + len(indices)), indices.astype(np.int64), data
        at += len(indices)


def _names(prefix: str, n: int) -> np.ndarray:
    return np.char.add(prefix, np.arange(n).astype(str)).astype(object)


def write_h5ad(stream: CsrStream, path: Path) -> None:
    """An AnnData ``.h5ad`` with CSR ``X`` (float32 data, int32 indices, int64 indptr), written with h5py in
    anndata's on-disk encoding, streamed so that the matrix never has to fit in memory."""
    import h5py  # noqa: PLC0415

    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        x = handle.create_group("X")
        x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                        "shape": np.array([stream.n_obs, stream.n_vars], dtype=np.int64)})
        data = x.create_dataset("data", shape=(stream.nnz,), dtype=np.float32)
        indices = x.create_dataset("indices", shape=(stream.nnz,), dtype=np.int32)
        x.create_dataset("indptr", data=stream.indptr.astype(np.int64))
        at = 0
        for idx, values in stream.pieces():
            indices[at : at + len(idx)] = idx
            data[at : at + len(idx)] = values
            at += len(idx)
        for name, prefix, n in (("obs", "cell_", stream.n_obs), ("var", "gene_", stream.n_vars)):
            frame = handle.create_group(name)
            frame.attrs.update({"encoding-type": "dataframe", "encoding-version": "0.2.0", "_index": "_index",
                                "column-order": np.array([], dtype=np.float64)})
            frame.create_dataset("_index", data=_names(prefix, n), dtype=h5py.string_dtype())
            frame["_index"].attrs.update({"encoding-type": "string-array", "encoding-version": "0.2.0"})
        for name in ("uns", "obsm", "varm", "obsp", "varp", "layers"):
            handle.create_group(name).attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})


def write_annbatch_zarr(stream: CsrStream, path: Path) -> None:
    """An AnnData Zarr v3 store laid out as annbatch's ``write_sharded`` writes one: ``X/data`` and ``X/indices``
    in chunks of 32,768 entries inside shards of up to 134,217,728 entries, Blosc lz4 (level 3, byte shuffle);
    metadata consolidated. Shards are written whole, streaming, so the matrix never has to fit in memory."""
    import anndata as ad  # noqa: PLC0415 - anndata writes obs/var in its own encoding
    import pandas as pd  # noqa: PLC0415
    import zarr  # noqa: PLC0415
    from zarr.codecs import BloscCodec, BloscShuffle  # noqa: PLC0415

    compressors = (BloscCodec(cname="lz4", clevel=3, shuffle=BloscShuffle.shuffle),)
    nnz = stream.nnz
    shard = ZARR_SHARD if nnz >= ZARR_SHARD else max(ZARR_CHUNK, -(-nnz // ZARR_CHUNK) * ZARR_CHUNK)
    with atomic_output(path) as tmp:
        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        x = root.create_group("X")
        x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                        "shape": [stream.n_obs, stream.n_vars]})
        arrays = {
            name: x.create_array(name, shape=(nnz,), dtype=dtype, chunks=(ZARR_CHUNK,), shards=(shard,),
                                 compressors=compressors)
            for name, dtype in (("data", np.float32), ("indices", np.int32))
        }
        x.create_array("indptr", data=stream.indptr.astype(np.int64))
        buffers: dict[str, list[np.ndarray]] = {"data": [], "indices": []}
        at = buffered = 0

        def flush(final: bool) -> None:
            nonlocal at, buffered
            if not buffered:
                return
            take = buffered if final else buffered - buffered % shard
            for name in ("data", "indices"):
                joined = np.concatenate(buffers[name])
                arrays[name][at : at + take] = joined[:take]
                buffers[name] = [joined[take:]]
            at += take
            buffered -= take

        for idx, values in stream.pieces():
            buffers["indices"].append(idx)
            buffers["data"].append(values)
            buffered += len(idx)
            if buffered >= shard:
                flush(final=False)
        flush(final=True)
        # The layout is annbatch's, chosen on purpose: zarr's notices about future defaults (auto-sharding,
        # consolidated metadata not yet in the v3 spec) are not the user's to act on.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*autosharding.*")
            warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
            with ad.settings.override(zarr_write_format=3):
                for name, prefix, n in (("obs", "cell_", stream.n_obs), ("var", "gene_", stream.n_vars)):
                    ad.io.write_elem(root, name, pd.DataFrame(index=pd.Index(_names(prefix, n), dtype=object)))
            zarr.consolidate_metadata(tmp)


def global_order(cells: np.ndarray, genes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cell-major entries with the genes of each cell increasing, sorted only where they are not (a CSR matrix may
    list a cell's genes in any order: scanpy's ``pbmc68k_reduced`` ``raw.X`` does in every cell)."""
    if len(cells) > 1 and np.any((cells[1:] == cells[:-1]) & (genes[1:] < genes[:-1])):
        order = np.lexsort((genes, cells))
        return cells[order], genes[order], values[order]
    return cells, genes, values


def write_soma(stream: CsrStream, path: Path) -> None:
    """A TileDB-SOMA ``SparseNDArray`` (float32, cells x genes). Tiles span all genes of 16 cells, so cell-major
    entries with each cell's genes in order are TileDB's global order and are written as they are
    (``sort_coords=False``); each write's genes are put in order within their cells first (``global_order``)."""
    import tiledbsoma  # noqa: PLC0415

    create = {"tiledb": {"create": {
        "capacity": 1 << 16, "cell_order": "row-major", "tile_order": "row-major", "allows_duplicates": True,
        "dims": {"soma_dim_0": {"tile": 16}, "soma_dim_1": {"tile": max(1, stream.n_vars)}},
    }}}
    options = tiledbsoma.TileDBWriteOptions(sort_coords=False)
    shape = (stream.n_obs, stream.n_vars)
    with atomic_output(path) as tmp:
        with tiledbsoma.SparseNDArray.create(str(tmp), type=pa.float32(), shape=shape, platform_config=create) as array:
            for piece in stream_to_coo(stream):
                cells, genes, values = global_order(*piece)
                table = pa.table([pa.array(cells), pa.array(genes), pa.array(values, pa.float32())],
                                 names=["soma_dim_0", "soma_dim_1", "soma_data"])
                array.write(table, platform_config=options)


WRITERS: dict[str, Callable[[CsrStream, Path], None]] = {
    "h5ad": write_h5ad, "zarr": write_annbatch_zarr, "soma": write_soma,
}
_NEEDS = {"h5ad": "h5py", "zarr": "anndata", "soma": "tiledbsoma"}


# ----------------------------------------------------------------------------------------------- datasets


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and manifest.get("manifest_version") == MANIFEST_VERSION else {}


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    with atomic_output(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps({**manifest, "manifest_version": MANIFEST_VERSION}, indent=2, sort_keys=True) + "\n")


def _missing_module(name: str) -> str | None:
    import importlib.util  # noqa: PLC0415

    return None if importlib.util.find_spec(name) else f"{name} is not installed (pip install --no-deps {name})"


def _add_formats(dataset: SparseDataset, stream: Callable[[], CsrStream], formats: list[str],
                 progress: Progress) -> None:
    """Write every missing format from ``stream``; a format that fails is recorded in ``skipped``."""
    for name in formats:
        if name == "parquet" or name in dataset.paths:
            continue
        target = dataset.root / FILE_NAMES[name]
        if target.exists():
            dataset.paths[name] = target
            continue
        reason = _missing_module(_NEEDS[name])
        if reason:
            dataset.skipped[name] = reason
            continue
        progress(f"sparse data: writing {target.name}")
        start = time.perf_counter()
        try:
            WRITERS[name](stream(), target)
        except Exception as exc:  # noqa: BLE001 - one failed format is reported, the others still run
            interrupts.raise_if_interrupted()  # Ctrl-C reported as a library's own error is not a failed format
            dataset.skipped[name] = one_line(exc)
            continue
        dataset.seconds[name] = round(time.perf_counter() - start, 3)
        dataset.paths[name] = target
        dataset.skipped.pop(name, None)


def ensure_sparse_dataset(cfg: SparseDataConfig, data_dir: str | Path, formats: list[str] | None = None,
                          progress: Progress | None = None) -> SparseDataset:
    """The generated matrix in ``data_dir/sparse-<key>/``, generating or completing it when needed (cached)."""
    progress = progress or Progress(quiet=True)
    cfg.validate()
    formats = list(formats or FORMATS)
    root = Path(data_dir) / f"sparse-{cfg.key()}"
    root.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(root)
    parquet = root / FILE_NAMES["parquet"]
    seconds: dict[str, float] = dict(manifest.get("seconds", {}))
    if not parquet.exists() or manifest.get("config") != dataclasses.asdict(cfg):
        progress(f"sparse data: generating {cfg.n_cells} cells x {cfg.n_genes} genes (seed {cfg.seed}) -> {root}")
        start = time.perf_counter()
        write_coo_parquet(generate_cells(cfg), parquet, cfg.n_cells, cfg.n_genes, cfg.row_group_size)
        seconds = {"parquet": round(time.perf_counter() - start, 3)}
        for name in FORMATS[1:]:  # stale conversions of an older matrix
            from loaderbench.formats import remove_path  # noqa: PLC0415

            remove_path(root / FILE_NAMES[name])
        manifest = {}
    coo = CooParquet(parquet, check_genes=False)
    dataset = SparseDataset(name=f"generated {cfg.n_cells}x{cfg.n_genes}", root=root, n_obs=coo.n_obs,
                            n_vars=coo.n_vars, nnz=coo.nnz, paths={"parquet": parquet},
                            skipped=dict(manifest.get("skipped", {})), seconds=seconds)
    _add_formats(dataset, coo.stream, formats, progress)
    _write_manifest(root, {"config": dataclasses.asdict(cfg), "n_obs": dataset.n_obs, "n_vars": dataset.n_vars,
                           "nnz": dataset.nnz, "formats": sorted(dataset.paths), "skipped": dataset.skipped,
                           "seconds": dataset.seconds})
    progress(f"sparse data: {dataset.n_obs} cells, {dataset.n_vars} genes, {dataset.nnz} non-zeros "
             f"({dataset.nnz / max(1, dataset.n_obs):.0f} per cell); formats {', '.join(sorted(dataset.paths))}")
    return dataset


def _input_key(path: Path, *settings: Any) -> str:
    stat = path.stat()
    blob = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, *settings]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def open_sparse_input(path: str | Path, data_dir: str | Path, formats: list[str] | None = None,
                      progress: Progress | None = None, n_genes: int | None = None, n_cells: int | None = None,
                      matrix: str = "X") -> SparseDataset:
    """The user's own ``.h5ad`` (a CSR matrix: ``X``, or ``matrix`` = ``raw.X`` / ``layers/NAME``) or SOMA-like COO
    ``.parquet`` (shape from ``n_cells``/``n_genes``, its metadata, or the largest indices), validated, with the
    other formats converted into ``data_dir/sparse-input-<key>/`` (cached by path, size, modification time and
    these settings). ``notes`` says what was inferred or converted."""
    progress = progress or Progress(quiet=True)
    source = Path(path)
    if not source.exists():
        raise SparseInputError(f"{source}: no such file")
    suffix = source.suffix.lower()
    if suffix not in (".h5ad", ".parquet", ".pq"):
        raise SparseInputError(f"{source}: expected an .h5ad (AnnData, CSR X) or a SOMA-like COO .parquet file")
    formats = list(formats or FORMATS)
    notes: list[str] = []
    progress(f"sparse input: checking {source}")
    if suffix == ".h5ad":
        if n_cells is not None or n_genes is not None:
            raise SparseInputError(f"{source}: --n-cells/--n-genes apply to a COO .parquet; an .h5ad has its shape")
        h5ad = H5adCSR(source, matrix)
        root = Path(data_dir) / f"sparse-input-{_input_key(source, h5ad.matrix)}"
        root.mkdir(parents=True, exist_ok=True)
        if h5ad.reader == "anndata":
            notes.append(f"{h5ad.matrix} read with anndata.read_h5ad (backed): the file has no encoding-type "
                         "attributes (written by anndata < 0.7)")
        unsorted = h5ad.check_order()
        if unsorted:
            notes.append(f"{unsorted:,} of {h5ad.n_obs:,} cells list their genes out of order; sorted within each "
                         "cell where a writer needs it (TileDB-SOMA)")
        paths = {"h5ad": source}
        if h5ad.reader != "h5py" or h5ad.matrix != "X":
            # The h5ad readers (torch, scDataset) read X in anndata's current encoding: give them a copy.
            copy = root / FILE_NAMES["h5ad"]
            if not copy.exists():
                progress(f"sparse input: writing {h5ad.matrix} as X of {copy}")
                write_h5ad(h5ad.stream(), copy)
            paths["h5ad"] = copy
            notes.append(f"{h5ad.matrix} copied as X of {copy} for the .h5ad readers")
        parquet = root / FILE_NAMES["parquet"]
        if not parquet.exists():
            progress(f"sparse input: converting to {parquet}")
            write_coo_parquet(stream_to_coo(h5ad.stream()), parquet, h5ad.n_obs, h5ad.n_vars, 1 << 20)
        paths["parquet"] = parquet
        stream: Callable[[], CsrStream] = h5ad.stream
        shape = (h5ad.n_obs, h5ad.n_vars, h5ad.nnz)
    else:
        if matrix != "X":
            raise SparseInputError(f"{source}: --matrix applies to an .h5ad; a COO .parquet holds one matrix")
        coo = CooParquet(source, n_obs=n_cells, n_vars=n_genes)
        root = Path(data_dir) / f"sparse-input-{_input_key(source, coo.n_obs, coo.n_vars)}"
        root.mkdir(parents=True, exist_ok=True)
        if coo.shape_note():
            notes.append(coo.shape_note())
        paths = {"parquet": source}
        stream = coo.stream
        shape = (coo.n_obs, coo.n_vars, coo.nnz)
    dataset = SparseDataset(name=str(source), root=root, n_obs=shape[0], n_vars=shape[1], nnz=shape[2],
                            paths=paths, source="input", notes=notes)
    _add_formats(dataset, stream, formats, progress)
    return dataset


def prepare_sparse_dataset(preset: str, data_dir: str | Path, input_path: str | None = None,
                           formats: list[str] | None = None, progress: Progress | None = None,
                           n_genes: int | None = None, config: SparseDataConfig | None = None,
                           n_cells: int | None = None, matrix: str = "X") -> SparseDataset:
    """The user's input when given, else the preset's (or ``config``'s) generated matrix."""
    if input_path:
        return open_sparse_input(input_path, data_dir, formats, progress, n_genes, n_cells, matrix)
    if n_cells is not None or n_genes is not None or matrix != "X":
        raise ValueError("--n-cells, --n-genes and --matrix describe an --input file; give one with --input")
    if config is None:
        if preset not in PRESETS:
            raise ValueError(f"unknown sparse preset {preset!r} (choose from {', '.join(PRESETS)})")
        config = PRESETS[preset]
    return ensure_sparse_dataset(config, data_dir, formats, progress)


__all__ = [
    "FORMATS", "PRESETS", "SparseDataConfig", "SparseDataset", "SparseInputError", "ensure_sparse_dataset",
    "generate_cells", "open_sparse_input", "prepare_sparse_dataset", "write_coo_parquet",
]
