"""One loader configuration measured over epochs, in this process or in a fresh one (``python -m
loaderbench.sparse.measure SPEC.json`` prints the rows as JSON), so that its peak memory is its own.

Timing (the seed's ``benchmark``, without its bugs): ``perf_counter_ns`` around the iteration itself; the first batch
(which carries start-up: worker processes, the first block read) is timed separately and, unless
``include_first_batch``, left out of the rate; ``gc.collect()`` every ``gc_freq`` batches counts in the epoch's time as
it did in the seed; samples/s is the number of rows actually yielded over that time. Memory: peak USS and PSS of the
process and its children (DataLoader workers) during each epoch, and during set-up.
"""

from __future__ import annotations

import gc
import json
import math
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loaderbench import interrupts
from loaderbench.formats import one_line
from loaderbench.memory import PeakMemorySampler
from loaderbench.sparse.methods import (
    METHODS,
    NATIVE_METHODS,
    SEED_METHODS,
    LoaderSettings,
    NativeMethodLoader,
    SeedMethodLoader,
    StreamingMethodLoader,
)
from loaderbench.sparse.peers import EXTERNAL_PEERS, PEER_CLASSES, PEERS, PeerUnavailable, peer_columns
from loaderbench.sparse.sources import CooParquet, load_native_matrix
from loaderbench.sparse.user_code import user_code_lines
from loaderbench.stats import per_second

#: the file each loader reads (the ``format`` column)
SOURCE_FORMAT = {"np.array": "parquet", "scipy.csr": "parquet", "native": "parquet", "native_streaming": "parquet",
                 "torch": "h5ad", "scdataset": "h5ad", "annbatch": "zarr"}
ALL_LOADERS = (*METHODS, *PEERS)


@dataclass
class RunSpec:
    """What one measurement needs: the files, the loader settings and the epoch loop's options."""

    paths: dict[str, str]
    settings: LoaderSettings
    dataset: str = ""
    epochs: int = 3
    max_batches: int = 0  # 0: the whole epoch
    include_first_batch: bool = False
    gc_freq: int = 10  # gc.collect() every this many batches (0: never)
    extra: dict[str, Any] = field(default_factory=dict)  # copied into every row
    shape: tuple[int, int] | None = None  # (cells, genes) as the dataset was opened (a COO file may not say)

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "settings": self.settings.to_dict()})

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        values = json.loads(text)
        values["settings"] = LoaderSettings(**values["settings"])
        return cls(**values)


def build_loader(paths: dict[str, Path], settings: LoaderSettings, shape: tuple[int, int] | None = None) -> Any:
    """The loader ``settings.method`` names, on the files in ``paths``; ``shape`` (cells, genes) as the dataset was
    opened (``--n-cells``/``--n-genes``, or inferred once), else read again from the COO file."""
    method = settings.method
    n_obs, n_vars = shape if shape is not None else (None, None)
    if method in SEED_METHODS:
        return SeedMethodLoader(CooParquet(paths["parquet"], n_obs, n_vars, check_genes=False), settings)
    if method == "native":
        if n_obs is not None:
            settings.check(n_obs)  # before the matrix is built, when the shape is known
        return NativeMethodLoader(load_native_matrix(paths["parquet"], n_obs, n_vars), settings)
    if method == "native_streaming":
        coo = CooParquet(paths["parquet"], n_obs, n_vars, check_genes=False)
        return StreamingMethodLoader(paths["parquet"], coo.n_obs, settings)
    if method in PEER_CLASSES:
        return PEER_CLASSES[method](paths, settings)
    raise ValueError(f"unknown method {method!r} (choose from {', '.join(ALL_LOADERS)})")


def _base_row(spec: RunSpec) -> dict[str, Any]:
    from loaderbench.loaders.native import DEFAULT_PREFETCH  # noqa: PLC0415 - the compiled core, only when measuring

    s = spec.settings
    return {
        "dataset": spec.dataset,
        "format": SOURCE_FORMAT.get(s.method, ""),
        "loader": s.method,
        "block_spec": str(s.spec),
        "block_size": s.spec.block_size,
        "chunk_size": s.chunk_size,
        "chunks_per_block": s.chunks_per_block,
        "batch_size": s.batch_size,
        "shuffle": s.shuffle,
        "num_threads": s.num_threads if s.method in NATIVE_METHODS else 0,
        "prefetch": (DEFAULT_PREFETCH if s.prefetch is None else s.prefetch) if s.method in NATIVE_METHODS else 0,
        "num_workers": s.num_workers if s.method in ("torch", "scdataset") else 0,
        "seed": s.seed,
        "max_batches": spec.max_batches,
        "include_first_batch": spec.include_first_batch,
        "gc_freq": spec.gc_freq,
        "host": socket.gethostname(),
        "user_code_lines": user_code_lines(s.method),
        **peer_columns(s),  # the file and worker count of the peers this module does not list
        **spec.extra,
    }


_METRICS = ("samples_per_s", "elapsed_s", "first_batch_ms", "setup_s", "peak_uss_mb", "peak_pss_mb",
            "setup_peak_uss_mb", "setup_peak_pss_mb")


def failed_rows(spec: RunSpec, status: str, reason: str) -> list[dict[str, Any]]:
    """One row saying why a configuration has no figures (``status`` ``unavailable`` or ``error``)."""
    row = {**_base_row(spec), "repeat": 0, "samples": 0, "batches": 0, "status": status, "reason": reason}
    row.update(dict.fromkeys(_METRICS, math.nan))
    return [row]


def run_spec(spec: RunSpec) -> list[dict[str, Any]]:
    """Measure one configuration in this process: one row per epoch (or one ``unavailable``/``error`` row)."""
    paths = {k: Path(v) for k, v in spec.paths.items()}
    try:
        with PeakMemorySampler() as setup_memory:
            start = time.perf_counter_ns()
            loader = build_loader(paths, spec.settings, tuple(spec.shape) if spec.shape else None)
            setup_ns = time.perf_counter_ns() - start
    except PeerUnavailable as exc:
        return failed_rows(spec, "unavailable", str(exc))
    except ImportError as exc:
        return failed_rows(spec, "unavailable", one_line(exc))
    rows = []
    try:
        for epoch in range(spec.epochs):
            gc.collect()
            rows.append({**_base_row(spec), **_epoch(loader, spec, epoch), "setup_s": setup_ns / 1e9,
                         "setup_peak_uss_mb": setup_memory.peak_mb, "setup_peak_pss_mb": setup_memory.peak_pss_mb,
                         "status": "ok", "reason": ""})
    except (ValueError, RuntimeError, OSError) as exc:
        return rows + failed_rows(spec, "error", one_line(exc))
    finally:
        del loader
        gc.collect()
    return rows


def _epoch(loader: Any, spec: RunSpec, epoch: int) -> dict[str, Any]:
    samples = batches = 0
    with PeakMemorySampler() as memory:
        batches_iter = loader.epoch(epoch)
        start = time.perf_counter_ns()
        first = next(batches_iter, None)
        first_ns = time.perf_counter_ns()
        if first is not None:
            batches = 1
            if spec.include_first_batch:
                samples += first[0].shape[0]
            del first
            for batch, _ in batches_iter:
                samples += batch.shape[0]
                batches += 1
                del batch
                if spec.gc_freq and batches % spec.gc_freq == 0:
                    gc.collect()
                if spec.max_batches and batches >= spec.max_batches:
                    break
        end = time.perf_counter_ns()
        close = getattr(batches_iter, "close", None)
        if close is not None:
            close()
    elapsed = end - (start if spec.include_first_batch else first_ns)
    return {
        "repeat": epoch,
        "samples": samples,
        "batches": batches,
        "samples_per_s": per_second(samples, elapsed),
        "elapsed_s": elapsed / 1e9,
        "first_batch_ms": (first_ns - start) / 1e6,
        "peak_uss_mb": memory.peak_mb,
        "peak_pss_mb": memory.peak_pss_mb,
    }


def run_external_peer(spec: RunSpec, timeout_s: float = 3600) -> list[dict[str, Any]]:
    """Measure a ``RunSpec`` whose method is in ``EXTERNAL_PEERS`` (annbatch: its own interpreter), with the columns
    ``run_spec`` gives."""
    return EXTERNAL_PEERS[spec.settings.method](spec, failed_rows(spec, "ok", "")[0], timeout_s)


def run_spec_isolated(spec: RunSpec, timeout_s: float = 3600) -> list[dict[str, Any]]:
    """``run_spec`` in a fresh Python process (its memory is then its own); an ``error`` row if it fails. A peer
    measured in its own interpreter (``EXTERNAL_PEERS``) goes there instead."""
    if spec.settings.method in EXTERNAL_PEERS:
        return run_external_peer(spec, timeout_s)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run([sys.executable, "-m", "loaderbench.sparse.measure", spec.to_json()],
                              capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return failed_rows(spec, "error", f"timed out after {timeout_s:.0f}s")
    interrupts.raise_if_interrupted()  # the child died of the same Ctrl-C: not a failed measurement
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return failed_rows(spec, "error", f"measurement process failed (exit {done.returncode}): {tail[0]}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = Path(args[0][1:]).read_text() if args and args[0].startswith("@") else args[0]
    print(json.dumps(run_spec(RunSpec.from_json(text)), default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
