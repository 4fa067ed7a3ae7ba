"""annbatch measured in its own interpreter (annbatch needs Python >= 3.12; loaderbench's venv is older).

A self-contained script: it imports only the standard library, numpy, scipy, zarr, anndata and annbatch (never
loaderbench, never torch), so that it runs in the lean annbatch venv made by ``scripts/setup_sparse_peers.sh``::

    .venv-annbatch/bin/python -P src/loaderbench/sparse/peers/annbatch_runner.py '<json request>' | @request.json

(``-P``: the script's folder, which holds loaderbench's own ``annbatch.py``, is not put on ``sys.path``.)
The last stdout line is one JSON object. Requests (``action``):

- ``prepare``: write annbatch's pre-shuffled ``DatasetCollection`` (``collection``) from the sharded AnnData Zarr
  store (``source``) once, atomically (a temporary name renamed into place); its obs keeps the original row of each
  cell as ``cell_id``. Prints ``{"ok": true, "seconds": ...}``.
- ``measure``: ``annbatch.Loader(chunk_size, preload_nchunks, batch_size, shuffle, rng)`` over ``store`` (``layout``
  ``store``: one CSR dataset, ``cells.zarr``; ``collection``: ``Loader.use_collection``), on the CPU, with the zarrs
  codec pipeline or zarr-python's own (``codec_pipeline``); each batch (a scipy CSR) densified to a float32
  ``[B, genes]`` numpy array. Timing as ``loaderbench.sparse.measure`` does it: ``perf_counter_ns`` around the
  iteration, the first batch timed apart (counted only with ``include_first_batch``), ``gc.collect()`` every
  ``gc_freq`` batches, ``max_batches`` per epoch; peak USS/PSS of this process (``/proc/self/smaps_rollup``, sampled
  on a thread) during set-up and each epoch. With ``dump``, the dense batches of every epoch and the original cell id
  of each row are saved to that ``.npz`` (for tests; not timed). Prints ``{"ok": true, "epochs": [...], ...}``.

A failure prints ``{"ok": false, "status": "unavailable" | "error", "reason": "..."}`` and exits 0 (the reason is the
row the caller records); a missing module is ``unavailable``.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import sys
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

_MB = 1024 * 1024


def _memory_bytes() -> tuple[int, int]:
    """(USS, PSS) of this process in bytes, as psutil reads them: USS = private clean + dirty (+ hugetlb) pages."""
    fields: dict[str, int] = {}
    with open("/proc/self/smaps_rollup") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) * 1024
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0) + fields.get("Private_Hugetlb", 0)
    return uss, fields.get("Pss", 0)


class PeakMemory:
    """Context manager keeping this process's peak USS and PSS (MiB), sampled every ``interval_s`` or four times the
    last read's duration, whichever is longer (as ``loaderbench.memory.PeakMemorySampler``)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak_uss_mb = self.peak_pss_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> float:
        start = time.perf_counter()
        uss, pss = _memory_bytes()
        self.peak_uss_mb = max(self.peak_uss_mb, uss / _MB)
        self.peak_pss_mb = max(self.peak_pss_mb, pss / _MB)
        return time.perf_counter() - start

    def _run(self) -> None:
        while not self._stop.wait(max(self.interval_s, 4 * self._sample())):
            pass

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="annbatch-runner-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()


def versions() -> dict[str, str]:
    """Versions of the interpreter and of the packages that produce the figures."""
    out = {"python": platform.python_version()}
    for name in ("annbatch", "anndata", "zarr", "zarrs", "numpy", "scipy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = ""
    return out


def set_codec_pipeline(name: str) -> None:
    """``zarrs``: the Rust codec pipeline annbatch's docs call necessary for local file systems; ``default``:
    zarr-python's own."""
    import zarr  # noqa: PLC0415

    if name == "zarrs":
        import zarrs  # noqa: F401, PLC0415 - ImportError here is the reason the configuration is unavailable

        zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"})
    elif name != "default":
        raise ValueError(f"codec_pipeline must be 'zarrs' or 'default', got {name!r}")


def prepare_collection(request: dict[str, Any]) -> dict[str, Any]:
    """Write the pre-shuffled collection (annbatch's ``DatasetCollection.add_adatas``, its defaults but
    ``dataset_size``) from the sharded AnnData Zarr store, unless it is there already."""
    import anndata as ad  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    import zarr  # noqa: PLC0415
    from annbatch import DatasetCollection  # noqa: PLC0415

    target = Path(request["collection"])
    if (target / "zarr.json").exists():
        return {"ok": True, "seconds": 0.0, "existed": True}
    source = str(request["source"])

    def load_x_and_cell_ids(path: Any) -> ad.AnnData:
        group = zarr.open_group(path, mode="r")
        lazy = ad.experimental.read_lazy(group)
        obs = pd.DataFrame({"cell_id": np.arange(lazy.n_obs, dtype=np.int64)}, index=lazy.obs_names.astype(str))
        return ad.AnnData(X=lazy.X, obs=obs, var=pd.DataFrame(index=lazy.var_names.astype(str)))

    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.perf_counter()
    try:
        DatasetCollection(str(tmp)).add_adatas(
            [source], load_adata=load_x_and_cell_ids, shuffle=True, dataset_size=request.get("dataset_size", "2GB"),
            rng=np.random.default_rng(int(request.get("seed", 0))))
        if (target / "zarr.json").exists():  # another process finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"ok": True, "seconds": round(time.perf_counter() - start, 3), "existed": False}


def build_loader(request: dict[str, Any], *, return_index: bool = False) -> tuple[Any, Any]:
    """The ``annbatch.Loader`` the request describes, and the map from its row index to the original cell id
    (``None`` when they are the same, or when ``return_index`` is off)."""
    import anndata as ad  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import zarr  # noqa: PLC0415
    from annbatch import DatasetCollection, Loader  # noqa: PLC0415

    set_codec_pipeline(request.get("codec_pipeline", "zarrs"))
    shuffle = bool(request["shuffle"])
    loader = Loader(chunk_size=int(request["chunk_size"]), preload_nchunks=int(request["preload_nchunks"]),
                    batch_size=int(request["batch_size"]), shuffle=shuffle, drop_last=bool(request.get("drop_last")),
                    rng=np.random.default_rng(int(request.get("seed", 0))) if shuffle else None,
                    preload_to_gpu=False, return_index=return_index)
    cell_ids = None
    if request["layout"] == "collection":
        collection = DatasetCollection(str(request["store"]), mode="r")
        # X alone: annbatch yields every obs column it is given, per batch (its README's warning).
        loader.use_collection(collection, load_adata=lambda group: ad.AnnData(X=ad.io.sparse_dataset(group["X"])))
        if return_index:
            cell_ids = collection.obs(columns=["cell_id"])["cell_id"].to_numpy()
    elif request["layout"] == "store":
        group = zarr.open_group(str(request["store"]), mode="r")
        loader.add_dataset(ad.io.sparse_dataset(group["X"]))
    else:
        raise ValueError(f"layout must be 'store' or 'collection', got {request['layout']!r}")
    return loader, cell_ids


def dense_float32(matrix: Any) -> Any:
    """A scipy CSR batch as a dense float32 ``[B, genes]`` array (what every loader in the benchmark yields)."""
    import numpy as np  # noqa: PLC0415

    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    return dense if dense.dtype == np.float32 else dense.astype(np.float32)


def run_epoch(loader: Any, request: dict[str, Any], repeat: int) -> dict[str, Any]:
    """One timed epoch, as ``loaderbench.sparse.measure._epoch`` times one."""
    include_first = bool(request.get("include_first_batch"))
    gc_freq = int(request.get("gc_freq", 10))
    max_batches = int(request.get("max_batches", 0))
    samples = batches = 0
    with PeakMemory() as memory:
        items = iter(loader)
        start = time.perf_counter_ns()
        first = next(items, None)
        first_batch = dense_float32(first["X"]) if first is not None else None
        first_ns = time.perf_counter_ns()
        if first_batch is not None:
            batches = 1
            if include_first:
                samples += first_batch.shape[0]
            del first, first_batch
            for item in items:
                batch = dense_float32(item["X"])
                samples += batch.shape[0]
                batches += 1
                del batch, item
                if gc_freq and batches % gc_freq == 0:
                    gc.collect()
                if max_batches and batches >= max_batches:
                    break
        end = time.perf_counter_ns()
        close = getattr(items, "close", None)
        if close is not None:
            close()
    elapsed = end - (start if include_first else first_ns)
    return {"repeat": repeat, "samples": samples, "batches": batches,
            "samples_per_s": samples / (elapsed / 1e9) if elapsed > 0 else float("nan"),
            "elapsed_s": elapsed / 1e9, "first_batch_ms": (first_ns - start) / 1e6,
            "peak_uss_mb": memory.peak_uss_mb, "peak_pss_mb": memory.peak_pss_mb}


def dump_epochs(request: dict[str, Any]) -> None:
    """Every epoch's dense batches and original cell ids into ``request['dump']`` (an ``.npz``), for checks."""
    import numpy as np  # noqa: PLC0415

    loader, cell_ids = build_loader(request, return_index=True)
    arrays: dict[str, Any] = {}
    for repeat in range(int(request.get("epochs", 1))):
        batches, ids, sizes = [], [], []
        for item in loader:
            batch = dense_float32(item["X"])
            index = np.asarray(item["index"], dtype=np.int64)
            batches.append(batch)
            ids.append(cell_ids[index] if cell_ids is not None else index)
            sizes.append(batch.shape[0])
        arrays[f"x{repeat}"] = np.concatenate(batches)
        arrays[f"ids{repeat}"] = np.concatenate(ids)
        arrays[f"sizes{repeat}"] = np.asarray(sizes, dtype=np.int64)
    np.savez(request["dump"], **arrays)


def measure(request: dict[str, Any]) -> dict[str, Any]:
    """Set-up then ``epochs`` timed epochs; the figures as one JSON-able dict."""
    with PeakMemory() as setup_memory:
        start = time.perf_counter_ns()
        loader, _ = build_loader(request)
        setup_ns = time.perf_counter_ns() - start
    epochs = []
    for repeat in range(int(request.get("epochs", 3))):
        gc.collect()
        epochs.append(run_epoch(loader, request, repeat))
    if request.get("dump"):
        dump_epochs(request)
    return {"ok": True, "epochs": epochs, "setup_s": setup_ns / 1e9, "setup_peak_uss_mb": setup_memory.peak_uss_mb,
            "setup_peak_pss_mb": setup_memory.peak_pss_mb, "n_batches": len(loader), "pid": os.getpid(),
            "versions": versions()}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, ImportError) else text


def main(argv: list[str]) -> int:
    text = Path(argv[0][1:]).read_text() if argv and argv[0].startswith("@") else (argv[0] if argv else "{}")
    request = json.loads(text)
    try:
        if sys.version_info < (3, 12):
            raise ImportError(f"annbatch requires Python >= 3.12, this is {platform.python_version()}")
        action = request.get("action", "measure")
        if action == "prepare":
            result = prepare_collection(request)
        elif action == "measure":
            result = measure(request)
        else:
            raise ValueError(f"action must be 'prepare' or 'measure', got {action!r}")
    except ImportError as exc:
        result = {"ok": False, "status": "unavailable", "reason": _one_line(exc)}
    except Exception as exc:  # noqa: BLE001 - one failed configuration is a row with its reason, not a traceback
        result = {"ok": False, "status": "error", "reason": _one_line(exc)}
    print(json.dumps(result, default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
