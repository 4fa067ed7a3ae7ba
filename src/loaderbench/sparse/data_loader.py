"""``loaderbench sparse data-loader``: the seed's epochs benchmark over block specs x methods (and the peers).

Every (block spec, method, threads/workers) configuration runs ``epochs`` epochs (in a fresh process with
``isolate``, so that its peak memory is its own); one row per epoch is appended to ``sparse_epochs.parquet``:
samples/s, peak USS/PSS of the process and its workers, first-batch time, set-up time, the settings and the host.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.progress import Progress
from loaderbench.progress import task as progress_task
from loaderbench.results import read_track, write_track
from loaderbench.sparse import EPOCHS_TRACK
from loaderbench.sparse.blocks import BlockSpec
from loaderbench.sparse.datagen import SparseDataset
from loaderbench.sparse.measure import ALL_LOADERS, RunSpec, run_spec, run_spec_isolated
from loaderbench.sparse.methods import NATIVE_METHODS, LoaderSettings
from loaderbench.sparse.peers import EXTERNAL_PEERS, WORKER_PEERS, docs_settings


def expand_settings(specs: list[BlockSpec], methods: list[str], *, batch_size: int = 1024, shuffle: str = "block",
                    seed: int = 0, threads: list[int] | None = None, workers: list[int] | None = None,
                    prefetch: int | None = None) -> list[LoaderSettings]:
    """One ``LoaderSettings`` per block spec x method x (native threads | DataLoader workers); a peer whose
    documented configuration fixes its chunking (``DOCS_CHUNKING``) gets that once, whatever the block specs."""
    unknown = [m for m in methods if m not in ALL_LOADERS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)} (choose from {', '.join(ALL_LOADERS)})")
    out: list[LoaderSettings] = []
    for spec in specs:
        for method in methods:
            common: dict[str, Any] = {"method": method, "chunk_size": spec.chunk_size,
                                      "chunks_per_block": spec.chunks_per_block, "batch_size": batch_size,
                                      "shuffle": shuffle, "seed": seed}
            if method in NATIVE_METHODS:
                out += [LoaderSettings(**common, num_threads=t, prefetch=prefetch) for t in (threads or [1])]
            elif method in WORKER_PEERS:
                out += [docs_settings(LoaderSettings(**common, num_workers=w)) for w in (workers or [0])]
            else:
                out.append(docs_settings(LoaderSettings(**common)))
    return list(dict.fromkeys(out))  # the documented configurations once, not once per block spec


def run_data_loader(
    dataset: SparseDataset,
    settings: list[LoaderSettings],
    *,
    epochs: int = 3,
    max_batches: int = 0,
    include_first_batch: bool = False,
    gc_freq: int = 10,
    isolate: bool = True,
    progress: Progress | None = None,
    echo: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run every configuration; returns one row per epoch (or one ``unavailable``/``error`` row)."""
    progress = progress or Progress(quiet=True)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    for s in settings:  # a chunk larger than the data is one clear error before any work
        s.spec.check_fits(dataset.n_obs, f"the data ({dataset.name})")
    paths = {k: str(v) for k, v in dataset.paths.items()}
    extra = {"n_obs": dataset.n_obs, "n_vars": dataset.n_vars, "nnz": dataset.nnz}
    rows: list[dict[str, Any]] = []
    with progress_task(progress, "sparse data-loader", len(settings), "configurations") as done:
        for index, s in enumerate(settings, 1):
            label = describe(s)
            progress(f"data-loader [{index}/{len(settings)}] {label}")
            spec = RunSpec(paths=paths, settings=s, dataset=dataset.name, epochs=epochs, max_batches=max_batches,
                           include_first_batch=include_first_batch, gc_freq=gc_freq, extra=extra,
                           shape=(dataset.n_obs, dataset.n_vars))
            # a peer measured in its own interpreter gets a fresh process whatever ``isolate`` says
            result = run_spec_isolated(spec) if isolate or s.method in EXTERNAL_PEERS else run_spec(spec)
            for row in result:
                if row["status"] == "ok":
                    echo(f"{label} epoch {row['repeat']}: {row['samples_per_s']:,.0f} samples/s, "
                         f"peak PSS {row['peak_pss_mb']:,.0f} MiB, first batch {row['first_batch_ms']:,.0f} ms")
                else:
                    echo(f"{label}: {row['status']} ({row['reason']})")
            rows += result
            done.advance()
    return pd.DataFrame(rows)


def describe(s: LoaderSettings) -> str:
    """``native x2 threads, 16x1024, batch 1024, block`` and the like."""
    if s.method in NATIVE_METHODS:
        how = f"{s.method} x{s.num_threads} thread{'s' if s.num_threads > 1 else ''}"
    elif s.method in WORKER_PEERS:
        how = f"{s.method} ({s.num_workers} workers)"
    else:
        how = s.method
    return f"{how}, {s.spec} ({s.spec.block_size} rows/block), batch {s.batch_size}, {s.shuffle}"


def append_epochs(out_dir: str | Path, df: pd.DataFrame) -> Path:
    """Append rows to ``out_dir/sparse_epochs.parquet`` (atomically; earlier runs are kept)."""
    existing = read_track(out_dir, EPOCHS_TRACK)
    frames = [f for f in (existing, df) if f is not None and not f.empty]
    combined = pd.concat(frames, ignore_index=True) if frames else df
    return write_track(out_dir, EPOCHS_TRACK, combined)


def per_config(df: pd.DataFrame) -> pd.DataFrame:
    """Medians over epochs per configuration (the points of the speed-vs-memory plot); ``warm`` drops epoch 0
    when a configuration has more than one epoch."""
    keys = [c for c in ("dataset", "loader", "block_spec", "block_size", "chunk_size", "chunks_per_block",
                        "batch_size", "shuffle", "num_threads", "num_workers", "status") if c in df.columns]
    out = []
    for key, group in df.groupby(keys, dropna=False, sort=False):
        warm = group[group["repeat"] > 0] if len(group) > 1 else group
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        for metric in ("samples_per_s", "peak_uss_mb", "peak_pss_mb", "first_batch_ms", "setup_s"):
            if metric in group:
                values = (warm[metric] if metric == "samples_per_s" else group[metric]).dropna()
                if values.empty:  # an unavailable or failed configuration has no figures
                    row[metric] = float("nan")
                else:
                    row[metric] = float(values.max() if metric.startswith("peak") else values.median())
        row["epochs"] = len(group) if group["status"].iloc[0] == "ok" else 0
        row["reason"] = str(group["reason"].iloc[0]) if "reason" in group else ""
        if "user_code_lines" in group:
            row["user_code_lines"] = group["user_code_lines"].iloc[0]
        out.append(row)
    return mark_fastest(pd.DataFrame(out))


def mark_fastest(table: pd.DataFrame) -> pd.DataFrame:
    """``fastest``: True on the configuration with the highest samples/s of each dataset, among those that ran."""
    table = table.assign(fastest=False)
    if table.empty or "samples_per_s" not in table:
        return table
    ran = table[(table["status"] == "ok") & table["samples_per_s"].notna()]
    by = ran.groupby("dataset", sort=False) if "dataset" in ran else [(None, ran)]
    for _, part in by:
        if not part.empty:
            table.loc[part["samples_per_s"].idxmax(), "fastest"] = True
    return table
