"""Measure one image peer in a fresh process and print its result row as one JSON line.

``python -m loaderbench.loaders.peers.driver --peer NAME --variant V --workload W.json``:

1. ``prepare`` (the peer's one-off conversion) runs in a child process of its own, so that what it allocated is not
   in the measured process's memory; its own duration is ``prepare_s``.
2. Under ``PeakMemorySampler`` (this process and its DataLoader workers): ``build_loader`` and the first ``next()``
   (``ttfb_s``) and the rest of that first epoch (warm-up, untimed). Then ``workload.epochs`` timed epochs, with
   the sampler stopped: reading USS walks the page tables, which takes CPU and the kernel's memory-map lock from
   the loader's own threads (and a loader that works ahead on threads or workers lost more to it than one that
   works inside ``next()``).

Every batch of the warm-up epoch is checked whole (float32, ``[b, C, H, W]``, values in [0, 1]); in the timed
epochs only type, dtype and shape, which cost nothing: a pass over every value would run on a core the
background threads of some loaders need, and so would not be the same cost for every peer. Every epoch must give
``n`` rows. An epoch's time is the sum of its ``iter()`` and ``next()`` calls (``time.perf_counter_ns``); the checks
run between them, outside the timer, and no batch is held while the next is asked for.

A peer that cannot run here (its ``unavailable()`` reason, an ``ImportError`` or ``PeerUnavailable``) gives status
"unavailable"; any other failure gives status "error" with a one-line reason. On a cold workload
(``workload.page_cache``) the peer's files are evicted before the build and before every timed epoch, and a
variant that holds the dataset in memory (``holds_dataset(settings)``) is a "skipped" row with its reason. The
driver exits 0 either way, so the caller (``run_peer``) always reads a row.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib.metadata
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from loaderbench import page_cache
from loaderbench.code_lines import object_lines
from loaderbench.loaders.peers import PeerUnavailable, peer_module
from loaderbench.loaders.peers.workload import ImageWorkload, reference_images
from loaderbench.memory import PeakMemorySampler

DRIVER_MODULE = "loaderbench.loaders.peers.driver"
#: the reason of a cold workload's row for a variant that holds the dataset in memory
NOT_STREAMING = ("holds the whole dataset in memory after its build, so a cold page cache never reaches its epochs: "
                 "not a streaming loader (cold workloads compare the loaders that read from disk)")
#: distributions every row records besides the peer's own
BASE_DISTRIBUTIONS = ("numpy", "torch", "pyarrow")
_NS = 1e-9


class PeerCheckError(ValueError):
    """A batch or an epoch that breaks the contract (dtype, shape, range, rows per epoch)."""


# ----------------------------------------------------------------------------------------------- checks


def check_batch(batch: Any, workload: ImageWorkload, values: bool = True) -> int:
    """The rows of ``batch`` after checking it is float32 ``[b, C, H, W]`` (1 <= b <= batch_size), and with
    ``values`` that every value is in [0, 1]."""
    if not isinstance(batch, torch.Tensor):
        raise PeerCheckError(f"a batch is a {type(batch).__name__}, not a torch.Tensor")
    if batch.dtype != torch.float32:
        raise PeerCheckError(f"a batch is {batch.dtype}, not torch.float32")
    if batch.ndim != 4 or tuple(batch.shape[1:]) != workload.shape or not 1 <= batch.shape[0] <= workload.batch_size:
        raise PeerCheckError(f"a batch has shape {list(batch.shape)}, expected [<= {workload.batch_size}, "
                             f"{', '.join(map(str, workload.shape))}]")
    if not values:
        return int(batch.shape[0])
    low, high = torch.aminmax(batch)
    if not (float(low) >= 0.0 and float(high) <= 1.0):  # written so that NaN fails too
        raise PeerCheckError(f"a batch holds values in [{float(low)}, {float(high)}], outside [0, 1]")
    return int(batch.shape[0])


def _fingerprints(images: torch.Tensor) -> list[str]:
    """One digest of each image's float32 bytes: the same image gives the same digest."""
    flat = images.contiguous().reshape(len(images), -1).numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in flat]


def check_epoch(workload: ImageWorkload, loader: Iterable[torch.Tensor]) -> torch.Tensor:
    """Run one epoch of ``loader`` and check it against ``reference_images(workload)``: with ``workload.shuffle``
    False the concatenated epoch equals it exactly; with shuffle every reference image comes exactly once (compared
    by a digest of its float32 bytes). Returns the epoch, concatenated, in the order it came."""
    batches = []
    for batch in loader:
        check_batch(batch, workload)
        batches.append(batch.clone())  # a loader may recycle its buffers
        del batch
    if not batches:
        raise PeerCheckError("the epoch gave no batch")
    epoch = torch.cat(batches)
    reference = torch.from_numpy(reference_images(workload))
    if len(epoch) != len(reference):
        raise PeerCheckError(f"the epoch gave {len(epoch)} rows, the workload has {len(reference)}")
    if not workload.shuffle:
        if not torch.equal(epoch, reference):
            wrong = int((epoch != reference).reshape(len(epoch), -1).any(dim=1).sum())
            raise PeerCheckError(f"{wrong} of {len(epoch)} images differ from the reference (shuffle off)")
        return epoch
    got, expected = collections.Counter(_fingerprints(epoch)), collections.Counter(_fingerprints(reference))
    if got != expected:
        missing = sum((expected - got).values())
        extra = sum((got - expected).values())
        raise PeerCheckError(f"the shuffled epoch lacks {missing} reference images and has {extra} that are not "
                             "in the reference (or repeats)")
    return epoch


# ----------------------------------------------------------------------------------------------- facts for the row


def user_code_lines(module: ModuleType) -> int:
    """Non-blank, non-comment, non-docstring source lines of the objects in ``module.USER_CODE`` (default: its
    ``build_loader``): the code a user writes to use the peer."""
    return object_lines(getattr(module, "USER_CODE", (module.build_loader,)))


def distribution_versions(names: Iterable[str]) -> dict[str, str | None]:
    """``{distribution: installed version}``; ``None`` for one that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


def _base_row(peer: str, variant: str, workload_name: str) -> dict[str, Any]:
    return {"peer": peer, "variant": variant, "workload": workload_name, "cpu_count": os.cpu_count()}


# ----------------------------------------------------------------------------------------------- measuring


def _timed_epoch(loader: Iterable[torch.Tensor], workload: ImageWorkload) -> tuple[int, int]:
    """(rows, nanoseconds spent in ``iter()`` and ``next()``) of one epoch; checks run outside the timer."""
    start = time.perf_counter_ns()
    iterator = iter(loader)
    elapsed = time.perf_counter_ns() - start
    rows = 0
    while True:
        start = time.perf_counter_ns()
        try:
            batch = next(iterator)
        except StopIteration:
            elapsed += time.perf_counter_ns() - start
            break
        elapsed += time.perf_counter_ns() - start
        rows += check_batch(batch, workload, values=False)  # the values were checked in the warm-up epoch
        del batch  # never hold the previous batch while the next is made
    return rows, elapsed


def _check_rows(rows: int, workload: ImageWorkload, which: str) -> None:
    if rows != workload.n:
        raise PeerCheckError(f"the {which} epoch gave {rows} rows, the workload has {workload.n}")


def evict_sources(workload: ImageWorkload, peer: str) -> str:
    """Drop the pages of every file peer ``peer`` may read (``workload.source_paths``); ``"cold"`` when every
    eviction took, else the first other state ``page_cache.evict`` measured (``"partial"``: e.g. a file a worker
    still maps keeps its pages)."""
    states = [page_cache.evict(path).page_cache for path in workload.source_paths(peer) if path.exists()]
    return next((state for state in states if state != "cold"), "cold")


def measure(module: ModuleType, variant: str, workload: ImageWorkload, cache: Path) -> dict[str, Any]:
    """The measured part of a row (``prepare`` must have run): time to first batch, the warm-up epoch, the timed
    epochs, the peak memory of the process tree. A cold workload evicts the peer's files before the build (so the
    first batch is read cold) and before every timed epoch, outside the timer."""
    settings = module.variants(workload)[variant]
    cold = workload.page_cache == "cold"
    states: list[str] = []
    epoch_ns: list[int] = []
    with PeakMemorySampler() as memory:
        if cold:
            states.append(evict_sources(workload, module.NAME))
        start = time.perf_counter_ns()
        loader = module.build_loader(workload, cache, settings)
        iterator = iter(loader)
        first = next(iterator)
        ttfb_ns = time.perf_counter_ns() - start
        rows = check_batch(first, workload)
        del first
        for batch in iterator:  # the rest of the warm-up epoch, untimed
            rows += check_batch(batch, workload)
            del batch
        del iterator
        _check_rows(rows, workload, "warm-up")
    for epoch in range(workload.epochs):
        if cold:
            states.append(evict_sources(workload, module.NAME))
        rows, elapsed = _timed_epoch(loader, workload)
        _check_rows(rows, workload, f"timed #{epoch + 1}")
        epoch_ns.append(elapsed)
    del loader
    rates = [workload.n / (ns * _NS) for ns in epoch_ns]
    return {
        "samples_per_s": statistics.median(rates),
        "samples_per_s_min": min(rates),
        "samples_per_s_max": max(rates),
        "epoch_s": [ns * _NS for ns in epoch_ns],
        "ttfb_s": ttfb_ns * _NS,
        "peak_uss_mb": memory.peak_mb,
        "peak_pss_mb": memory.peak_pss_mb,
        "start_uss_mb": memory.start_mb,
        "settings": settings,
        "shuffle_note": module.shuffle_note(settings),
        "page_cache": workload.page_cache,
        # what each eviction measured: before the build, then before each timed epoch (empty when warm)
        "page_cache_measured": states,
    }


def _failure(row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    unavailable = isinstance(exc, (ImportError, PeerUnavailable))
    return {**row, "status": "unavailable" if unavailable else "error", "reason": _one_line(exc)}


def _prepare_in_child(peer: str, variant: str, workload_path: str, timeout_s: float | None) -> dict[str, Any]:
    """Run ``prepare`` in a child driver (``--prepare-only``) and return its row."""
    command = [sys.executable, "-m", DRIVER_MODULE, "--peer", peer, "--variant", variant, "--workload",
               workload_path, "--prepare-only"]
    return _run_driver(command, _base_row(peer, variant, ""), timeout_s)


def run_in_this_process(peer: str, variant: str, workload_path: str, prepare_only: bool = False) -> dict[str, Any]:
    """The driver's work (``main`` without the printing): a row, never an exception."""
    row = _base_row(peer, variant, "")
    try:
        workload = ImageWorkload.from_json(Path(workload_path).read_text())
        row["workload"] = workload.name
        module = peer_module(peer)
        row["versions"] = distribution_versions((*BASE_DISTRIBUTIONS, *module.DISTRIBUTIONS))
        reason = module.unavailable()
        if reason:
            return {**row, "status": "unavailable", "reason": reason}
        known = module.variants(workload)
        if variant not in known:
            raise ValueError(f"peer {peer} has no variant {variant!r} (variants: {', '.join(known)})")
        if workload.page_cache == "cold" and module.holds_dataset(known[variant]):
            return {**row, "status": "skipped", "reason": NOT_STREAMING, "page_cache": workload.page_cache}
        cache = workload.cache_dir(module.NAME)
        if prepare_only:
            start = time.perf_counter_ns()
            module.prepare(workload, cache)
            return {**row, "status": "ok", "prepare_s": (time.perf_counter_ns() - start) * _NS}
        prepared = _prepare_in_child(peer, variant, workload_path, None)
        if prepared.get("status") != "ok":
            return {**row, "status": prepared.get("status", "error"),
                    "reason": f"prepare: {prepared.get('reason', 'no reason given')}"}
        row["prepare_s"] = prepared["prepare_s"]
        row["user_code_lines"] = user_code_lines(module)
        row.update(measure(module, variant, workload, cache))
        row["status"] = "ok"
        return row
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row the caller reads
        return _failure(row, exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=DRIVER_MODULE, description=__doc__.splitlines()[0])
    parser.add_argument("--peer", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--workload", required=True, help="a JSON file written by ImageWorkload.to_json")
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    row = run_in_this_process(args.peer, args.variant, args.workload, args.prepare_only)
    sys.stdout.flush()
    print(json.dumps(row, default=str), flush=True)
    return 0


# ----------------------------------------------------------------------------------------------- the caller's side


def _parse_row(stdout: str) -> dict[str, Any] | None:
    """The last line of ``stdout`` that is a JSON row (peers may print their own lines before it)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "status" in row:
                return row
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _run_driver(command: list[str], row: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    """Run a driver command in its own process group; its row, or an error row on a timeout or a crash."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)  # its own group: a timeout ends its workers too
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        return {**row, "status": "error", "reason": f"timed out after {timeout_s:g} s"}
    parsed = _parse_row(stdout)
    if parsed is not None:
        return parsed
    code = process.returncode
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    detail = _last_line(stderr) or _last_line(stdout)
    reason = f"the driver {how} without a result" + (f": {detail}" if detail else "")
    return {**row, "status": "error", "reason": reason}


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_peer(name: str, variant: str, workload: ImageWorkload, timeout_s: float = 900.0) -> dict[str, Any]:
    """Measure peer ``name``'s ``variant`` on ``workload`` in a fresh driver process; its row (status "ok",
    "unavailable" or "error"), never an exception."""
    row = _base_row(name, variant, workload.name)
    try:
        with tempfile.TemporaryDirectory(prefix="loaderbench-peer-") as folder:
            path = Path(folder) / "workload.json"
            path.write_text(workload.to_json())
            command = [sys.executable, "-m", DRIVER_MODULE, "--peer", name, "--variant", variant, "--workload",
                       str(path)]
            return _run_driver(command, row, timeout_s)
    except Exception as exc:  # noqa: BLE001 - the caller reads a row whatever happened
        return {**row, "status": "error", "reason": _one_line(exc)}


if __name__ == "__main__":
    sys.exit(main())
