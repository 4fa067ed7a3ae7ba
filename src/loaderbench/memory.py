"""Memory of the benchmark process *and* its DataLoader workers (DESIGN.md §4.4).

Two views, read together from ``/proc/PID/smaps_rollup`` (via psutil):

- USS (unique set size): pages only that process maps. What a process alone holds; summed over a tree it leaves out
  every page the processes share, so right after ``fork`` the tree's USS *drops* (the parent's pages become shared).
- PSS (proportional set size): each page divided among the processes mapping it. Summed over the tree it is the
  physical memory the whole tree uses, shared pages counted once — a worker's copy-on-write copies of a pre-loaded
  Python list (refcount touches) show up as growth.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import psutil

_MB = 1024 * 1024
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, FileNotFoundError, ProcessLookupError)


def _uss_pss_bytes(proc: psutil.Process) -> tuple[int, int]:
    """(USS, PSS) of one process; (0, 0) if it has gone or cannot be read (a worker may exit between listing and
    reading)."""
    try:
        info = proc.memory_full_info()
    except _GONE:
        return 0, 0
    return int(info.uss), int(info.pss)


def process_tree_memory_mb(pid: int | None = None) -> tuple[float, float]:
    """(USS, PSS) in MiB of process ``pid`` (default: this one) summed with all its descendants; (0, 0) once a
    watched process has exited."""
    try:
        root = psutil.Process(pid)
    except _GONE:
        return 0.0, 0.0
    try:
        children = root.children(recursive=True)
    except _GONE:
        children = []
    uss = pss = 0
    for proc in (root, *children):
        u, p = _uss_pss_bytes(proc)
        uss += u
        pss += p
    return uss / _MB, pss / _MB


def process_tree_uss_mb(pid: int | None = None) -> float:
    """USS in MiB of process ``pid`` (default: this one) plus all its descendants."""
    return process_tree_memory_mb(pid)[0]


def process_tree_pss_mb(pid: int | None = None) -> float:
    """PSS in MiB of process ``pid`` (default: this one) plus all its descendants."""
    return process_tree_memory_mb(pid)[1]


class PeakMemorySampler:
    """Context manager: a background thread samples the process tree's USS and PSS and keeps the peaks.

    ``peak_mb`` is the peak tree USS, ``peak_pss_mb`` the peak tree PSS; ``start_mb``/``start_pss_mb`` are the values
    on entry. Reading them makes the kernel walk the page tables (a few ms for a process with torch loaded), so the
    thread waits ``interval_s`` or four times the last read's duration, whichever is longer: sampling stays under
    ~20 % of one core. One sample is taken on entry and one on exit, so the peaks are never empty; ``samples`` counts
    the readings.
    """

    def __init__(self, interval_s: float = 0.02, pid: int | None = None) -> None:
        self.interval_s = float(interval_s)
        self.pid = pid
        self.peak_mb = 0.0
        self.peak_pss_mb = 0.0
        self.start_mb = 0.0
        self.start_pss_mb = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _sample(self) -> float:
        start = time.perf_counter()
        uss, pss = process_tree_memory_mb(self.pid)
        with self._lock:
            if self.samples == 0:
                self.start_mb, self.start_pss_mb = uss, pss
            self.peak_mb = max(self.peak_mb, uss)
            self.peak_pss_mb = max(self.peak_pss_mb, pss)
            self.samples += 1
        return time.perf_counter() - start

    def _run(self) -> None:
        while True:
            took = self._sample()
            if self._stop.wait(max(self.interval_s, 4 * took)):
                return

    def __enter__(self) -> PeakMemorySampler:
        self.peak_mb = self.peak_pss_mb = 0.0
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
