"""annbatch (scverse/Lamin) over the same cells, measured in its own Python >= 3.12 interpreter.

annbatch needs Python >= 3.12 and loaderbench's venv is older, so annbatch runs in the venv that
``scripts/setup_sparse_peers.sh`` makes (``.venv-annbatch``: annbatch 0.3.1 and the zarrs codec pipeline, no torch):
``annbatch_runner.py`` (a self-contained script) runs the epochs itself and prints its figures as one JSON line;
``run_annbatch`` turns them into the same rows every other loader gets. Three configurations:

- ``annbatch``: matched settings: ``Loader(chunk_size, preload_nchunks=chunks_per_block, batch_size, shuffle)`` over
  the sharded AnnData Zarr store that ``sparse generate`` writes (``cells.zarr``), zarrs codec pipeline;
- ``annbatch_collection``: its documentation's recommendation: a pre-shuffled ``DatasetCollection`` (written once
  beside ``cells.zarr`` by the ``prepare`` step), ``chunk_size=32, preload_nchunks=256``, zarrs codec pipeline;
- ``annbatch_collection_zarrpython``: the same with zarr-python's own codec pipeline.

Batches come back as scipy CSR and are densified to float32 ``[B, genes]`` in the runner (``preload_to_gpu=False``:
CPU only). The interpreter: ``LOADERBENCH_ANNBATCH_PYTHON``, else ``.venv-annbatch/bin/python`` in the working
directory or the source checkout.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loaderbench.sparse.methods import Batch, LoaderSettings
from loaderbench.sparse.peers._common import PeerUnavailable, dataset_path, dense_float32_tensor

RUNNER = Path(__file__).with_name("annbatch_runner.py")
VENV_NAME = ".venv-annbatch"
PYTHON_ENV = "LOADERBENCH_ANNBATCH_PYTHON"
#: method -> (layout, codec pipeline)
CONFIGS = {
    "annbatch": ("store", "zarrs"),
    "annbatch_collection": ("collection", "zarrs"),
    "annbatch_collection_zarrpython": ("collection", "default"),
}
#: annbatch's README: ``Loader(batch_size=4096, chunk_size=32, preload_nchunks=256)`` over a pre-shuffled collection
DOCS_CHUNKING = (32, 256)
COLLECTION_NAME = "cells.annbatch-collection.zarr"
PREPARE_TIMEOUT_S = 3600.0


def _python_at_least_312(python: str) -> bool:
    try:
        done = subprocess.run([python, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"],
                              capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_python312() -> str | None:
    """Any Python >= 3.12 on this machine (``python3.1x`` on ``PATH``, else under pyenv), or ``None``."""
    candidates = [shutil.which(f"python3.{minor}") for minor in range(20, 11, -1)]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.1[2-9]*/bin/python"), reverse=True)
    for python in candidates:
        if python and _python_at_least_312(python):
            return python
    return None


def annbatch_python() -> str:
    """The interpreter annbatch runs in, or ``PeerUnavailable`` with the reason there is none."""
    explicit = os.environ.get(PYTHON_ENV)
    if explicit:
        if not Path(explicit).exists():
            raise PeerUnavailable(f"{PYTHON_ENV}={explicit} does not exist")
        return explicit
    roots = [Path.cwd(), Path(__file__).resolve().parents[4]]  # the working directory, the source checkout
    for root in roots:
        python = root / VENV_NAME / "bin" / "python"
        if python.exists():
            return str(python)
    if find_python312() is None:
        raise PeerUnavailable("no Python >= 3.12 interpreter (annbatch requires it)")
    raise PeerUnavailable(f"annbatch's venv ({VENV_NAME}) is not set up: run scripts/setup_sparse_peers.sh")


def run_runner(request: dict[str, Any], timeout_s: float, python: str | None = None) -> dict[str, Any]:
    """Run ``annbatch_runner.py`` on ``request``; its JSON answer (``ok`` false with a reason if it failed)."""
    python = python or annbatch_python()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)  # loaderbench's paths are no business of the annbatch venv
    try:
        done = subprocess.run([python, "-P", str(RUNNER), json.dumps(request)], capture_output=True, text=True,
                              timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "status": "error", "reason": f"annbatch runner timed out after {timeout_s:.0f}s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "status": "error",
                "reason": f"annbatch runner failed (exit {done.returncode}): {tail[0]}"}
    return json.loads(lines[-1])


def collection_path(paths: dict[str, Any]) -> Path:
    """Where the pre-shuffled collection lives: beside the dataset's ``cells.zarr``."""
    return dataset_path(paths, "zarr", "annbatch").parent / COLLECTION_NAME


def build_request(paths: dict[str, Any], settings: LoaderSettings, **options: Any) -> dict[str, Any]:
    """The runner's ``measure`` request for ``settings`` (its ``method`` one of ``CONFIGS``)."""
    layout, codec = CONFIGS[settings.method]
    store = dataset_path(paths, "zarr", settings.method)
    return {"action": "measure", "layout": layout, "codec_pipeline": codec,
            "store": str(collection_path(paths) if layout == "collection" else store),
            "chunk_size": settings.chunk_size if settings.shuffle != "random" else 1,
            "preload_nchunks": settings.chunks_per_block, "batch_size": settings.batch_size,
            "shuffle": settings.shuffle != "none", "seed": settings.seed, "drop_last": settings.drop_last,
            **options}


def prepare(paths: dict[str, Any], settings: LoaderSettings, python: str | None = None) -> dict[str, Any]:
    """Write the pre-shuffled collection once when a ``collection`` configuration needs it (not timed)."""
    if CONFIGS[settings.method][0] != "collection":
        return {"ok": True, "seconds": 0.0}
    return run_runner({"action": "prepare", "source": str(dataset_path(paths, "zarr", settings.method)),
                       "collection": str(collection_path(paths)), "seed": settings.seed},
                      PREPARE_TIMEOUT_S, python)


_METRICS = ("samples_per_s", "elapsed_s", "first_batch_ms", "setup_s", "peak_uss_mb", "peak_pss_mb",
            "setup_peak_uss_mb", "setup_peak_pss_mb")


def run_annbatch(spec: Any, template: dict[str, Any], timeout_s: float = 3600) -> list[dict[str, Any]]:
    """Measure ``spec`` (a ``loaderbench.sparse.measure.RunSpec`` whose method is one of ``CONFIGS``) in annbatch's
    interpreter: one row per epoch, or one ``unavailable``/``error`` row, each starting from ``template`` (the row
    ``measure`` gives this configuration, so the columns are those of ``run_spec``)."""
    settings = spec.settings
    try:
        python = annbatch_python()
        prepared = prepare(spec.paths, settings, python)
        if not prepared.get("ok"):
            answer = prepared
        else:
            answer = run_runner(build_request(spec.paths, settings, epochs=spec.epochs,
                                              max_batches=spec.max_batches,
                                              include_first_batch=spec.include_first_batch, gc_freq=spec.gc_freq),
                                timeout_s, python)
    except PeerUnavailable as exc:
        answer = {"ok": False, "status": "unavailable", "reason": str(exc)}
    if not answer.get("ok"):
        return [{**template, "status": answer.get("status", "error"), "reason": answer.get("reason", "")}]
    versions = answer.get("versions", {})
    rows = []
    for epoch in answer["epochs"]:
        row = {**template, **dict.fromkeys(_METRICS, math.nan), **epoch, "setup_s": answer["setup_s"],
               "setup_peak_uss_mb": answer["setup_peak_uss_mb"], "setup_peak_pss_mb": answer["setup_peak_pss_mb"],
               "status": "ok", "reason": "", "peer_python": versions.get("python", ""),
               "peer_version": versions.get("annbatch", ""), "peer_zarrs": versions.get("zarrs", "")}
        rows.append(row)
    return rows


class AnnbatchPeer:
    """annbatch in this process, where this interpreter has it (Python >= 3.12); otherwise ``PeerUnavailable``
    says it is measured in its own interpreter (``run_annbatch``, as ``loaderbench sparse data-loader`` does)."""

    def __init__(self, paths: dict[str, Path], settings: LoaderSettings) -> None:
        if importlib.util.find_spec("annbatch") is None:
            raise PeerUnavailable(
                f"annbatch needs Python >= 3.12 (this is {platform.python_version()}): it is measured in its own "
                "interpreter by loaderbench.sparse.peers.run_external_peer (as `loaderbench sparse data-loader` does)"
            )
        import loaderbench.sparse.peers.annbatch_runner as annbatch_runner  # noqa: PLC0415

        self.settings = settings
        request = build_request(paths, settings)
        if request["layout"] == "collection":
            prepared = prepare(paths, settings, sys.executable)
            if not prepared.get("ok"):
                raise PeerUnavailable(prepared.get("reason", "annbatch collection could not be written"))
        self.loader, self.cell_ids = annbatch_runner.build_loader(request, return_index=True)

    def epoch(self, epoch: int = 0, with_indices: bool = False) -> Iterator[Batch]:
        for item in self.loader:
            ids = item["index"] if self.cell_ids is None else self.cell_ids[item["index"]]
            yield dense_float32_tensor(item["X"]), (ids if with_indices else None)
            del item

    def __len__(self) -> int:
        return len(self.loader)
