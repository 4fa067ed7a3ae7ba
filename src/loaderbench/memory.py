"""Memory of the benchmark process *and* its DataLoader workers (DESIGN.md §4.4).

USS (unique set size: pages only that process maps) is what a worker really adds: pages still shared with the
parent after fork are not counted, pages copied on write (refcount touches of a pre-loaded Python list) are.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import psutil

_MB = 1024 * 1024


def _uss_bytes(proc: psutil.Process) -> int:
    """USS of one process, 0 if it has gone or cannot be read (a worker may exit between listing and reading)."""
    try:
        return int(proc.memory_full_info().uss)
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, FileNotFoundError, ProcessLookupError):
        return 0


def process_tree_uss_mb(pid: int | None = None) -> float:
    """USS in MiB of process ``pid`` (default: this one) plus all its descendants."""
    root = psutil.Process(pid)
    try:
        children = root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        children = []
    return (_uss_bytes(root) + sum(_uss_bytes(child) for child in children)) / _MB


class PeakMemorySampler:
    """Context manager: a background thread samples ``process_tree_uss_mb()`` and keeps the peak.

    Reading USS makes the kernel walk the page tables (a few ms for a process with torch loaded), so the thread
    waits ``interval_s`` or four times the last read's duration, whichever is longer: sampling stays under ~20 % of
    one core and seldom contends with what is being measured. One sample is taken on entry and one on exit, so
    ``peak_mb`` is never empty. ``samples`` counts the readings.
    """

    def __init__(self, interval_s: float = 0.02, pid: int | None = None) -> None:
        self.interval_s = float(interval_s)
        self.pid = pid
        self.peak_mb = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _sample(self) -> float:
        start = time.perf_counter()
        value = process_tree_uss_mb(self.pid)
        with self._lock:
            self.peak_mb = max(self.peak_mb, value)
            self.samples += 1
        return time.perf_counter() - start

    def _run(self) -> None:
        while True:
            took = self._sample()
            if self._stop.wait(max(self.interval_s, 4 * took)):
                return

    def __enter__(self) -> PeakMemorySampler:
        self.peak_mb = 0.0
        self.samples = 0
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="loaderbench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample()
