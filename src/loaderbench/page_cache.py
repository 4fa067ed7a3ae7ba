"""Page-cache state of a dataset's files: evict them (cold), read them whole (warm), and measure what is resident.

A loader that reads files is measured cold and warm (DESIGN 5). ``evict`` drops every file's pages with
``posix_fadvise(POSIX_FADV_DONTNEED)`` (after an ``fsync``: dirty pages cannot be dropped) and then checks with
``mincore(2)`` how much is still resident; ``warm`` reads every file once and checks the same. Each returns a
``CacheState`` whose ``page_cache`` is what a result row records:

- ``"cold"``: at most ``COLD_THRESHOLD`` of the pages resident after eviction;
- ``"warm"``: at least ``WARM_THRESHOLD`` resident after reading;
- ``"partial"``: neither: the measured fraction and a reason (a filesystem that keeps its pages, such as tmpfs; a
  dataset larger than free memory);
- ``"unknown"``: the platform has no ``posix_fadvise``/``mincore`` (``reason`` says "not supported on <platform>").

Python has no ``mincore``: libc's is called through ctypes on a read-only ``mmap`` of the file, mapped in pieces of
``MAP_PIECE`` bytes so that files larger than the address space left (or 32-bit one) can be measured. Mapping a file
does not read it; the mapping is never touched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sys
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

#: at most this fraction of pages resident after eviction counts as cold
COLD_THRESHOLD = 0.01
#: at least this fraction resident after reading every file counts as warm
WARM_THRESHOLD = 0.95
#: bytes mapped (and measured) at a time
MAP_PIECE = 1 << 30
_READ_BUFFER = 8 << 20


class PageCacheUnsupported(OSError):
    """Page-cache control or measurement is not available on this platform."""


def unsupported_reason() -> str:
    """Why eviction/measurement cannot run here ("" when it can: Linux with posix_fadvise and libc's mincore)."""
    if not sys.platform.startswith("linux"):
        return f"page-cache control is not supported on {sys.platform} (needs Linux: posix_fadvise, mincore)"
    if not hasattr(os, "posix_fadvise"):
        return f"page-cache control is not supported on {sys.platform}: this Python has no os.posix_fadvise"
    if _libc() is None:
        return f"page-cache control is not supported on {sys.platform}: libc's mincore/mmap not found"
    return ""


@cache
def _libc() -> Any:
    """libc with ``mmap``, ``munmap`` and ``mincore`` typed, or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        mmap, munmap, mincore = libc.mmap, libc.munmap, libc.mincore
    except (OSError, AttributeError):
        return None
    mmap.restype = ctypes.c_void_p
    mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    munmap.restype = ctypes.c_int
    munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    mincore.restype = ctypes.c_int
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    return libc


def dataset_files(path: str | Path) -> list[Path]:
    """The files of a dataset: ``path`` itself when it is a file, else every regular file under the directory
    (sorted, each once even when reached through a link). ``FileNotFoundError`` naming ``path`` when it is missing."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such file or directory")
    seen: set[Path] = set()
    files: list[Path] = []
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            candidate = Path(folder) / name
            if not candidate.is_file():  # sockets, fifos, broken links
                continue
            real = candidate.resolve()
            if real not in seen:
                seen.add(real)
                files.append(candidate)
    return sorted(files)


@dataclass(frozen=True)
class Residency:
    """Pages of a dataset's files and how many are in the page cache."""

    files: int
    bytes: int
    pages: int
    resident_pages: int

    @property
    def fraction(self) -> float:
        """Resident pages / pages (0.0 for a dataset without data)."""
        return self.resident_pages / self.pages if self.pages else 0.0


def _file_residency(path: Path, page: int) -> tuple[int, int, int]:
    """``(bytes, pages, resident pages)`` of one file."""
    libc = _libc()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        pages = -(-size // page)
        resident = 0
        piece = max(page, MAP_PIECE - MAP_PIECE % page)
        for offset in range(0, size, piece):
            length = min(piece, size - offset)
            address = libc.mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, handle.fileno(), offset)
            if address in (None, ctypes.c_void_p(-1).value):
                error = ctypes.get_errno()
                raise OSError(error, f"{path}: mmap failed ({os.strerror(error)})")
            try:
                vector = (ctypes.c_ubyte * (-(-length // page)))()
                if libc.mincore(address, length, vector) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"{path}: mincore failed ({os.strerror(error)})")
                resident += _count_resident(vector)
            finally:
                libc.munmap(address, length)
    return size, pages, resident


def _count_resident(vector: ctypes.Array) -> int:
    """Pages with the residency bit set (bit 0 of each byte; the other bits are reserved)."""
    return bytes(vector).translate(_LOW_BIT).count(1)


_LOW_BIT = bytes(i & 1 for i in range(256))


def residency(path: str | Path) -> Residency:
    """The page-cache residency of every file of ``path`` (``PageCacheUnsupported`` off Linux)."""
    reason = unsupported_reason()
    if reason:
        raise PageCacheUnsupported(reason)
    page = os.sysconf("SC_PAGE_SIZE")
    files = dataset_files(path)
    total_bytes = total_pages = total_resident = 0
    for file in files:
        size, pages, resident = _file_residency(file, page)
        total_bytes += size
        total_pages += pages
        total_resident += resident
    return Residency(len(files), total_bytes, total_pages, total_resident)


def resident_fraction(path: str | Path) -> float:
    """The fraction of ``path``'s pages (a file, or every file under a directory) in the page cache."""
    return residency(path).fraction


def filesystem_type(path: str | Path) -> str:
    """The type of the filesystem holding ``path`` (from ``/proc/self/mounts``; "" when it cannot be told)."""
    try:
        target = str(Path(path).resolve())
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    best, kind = "", ""
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, parts[2]
    return kind


@dataclass
class CacheState:
    """What ``evict`` or ``warm`` did and measured; ``page_cache`` is the label a result row records."""

    path: str
    action: str  # "evict" | "warm"
    page_cache: str  # "cold" | "warm" | "partial" | "unknown"
    resident_fraction: float | None  # after the action (None when it cannot be measured)
    resident_before: float | None
    files: int
    bytes: int
    seconds: float
    filesystem: str = ""
    reason: str = ""

    def record(self) -> dict[str, Any]:
        """The fields as a dict (for a result row or summary.json)."""
        return asdict(self)


def _measure(path: Path) -> Residency | None:
    try:
        return residency(path)
    except PageCacheUnsupported:
        return None


def evict(path: str | Path, threshold: float = COLD_THRESHOLD) -> CacheState:
    """Drop the pages of every file of ``path`` from the page cache, then measure what is left.

    Each file is ``fsync``-ed first (a file just written has dirty pages, which ``POSIX_FADV_DONTNEED`` cannot drop),
    then advised away whole. ``page_cache`` is ``"cold"`` when at most ``threshold`` of the pages are still resident,
    else ``"partial"`` with the measured fraction and a reason; ``"unknown"`` off Linux. ``FileNotFoundError``
    naming ``path`` when it is missing."""
    target = Path(path)
    files = dataset_files(target)
    kind = filesystem_type(target)
    reason = unsupported_reason()
    start = time.perf_counter()
    if reason:
        size = sum(f.stat().st_size for f in files)
        return CacheState(str(target), "evict", "unknown", None, None, len(files), size, 0.0, kind, reason)
    before = residency(target)
    for file in files:
        fd = os.open(file, os.O_RDONLY)
        try:
            try:
                os.fsync(fd)
            except OSError:  # a read-only filesystem has no dirty pages to write
                pass
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    after = residency(target)
    seconds = time.perf_counter() - start
    state = CacheState(str(target), "evict", "cold", after.fraction, before.fraction, after.files, after.bytes,
                       seconds, kind)
    if after.pages and after.fraction > threshold:
        state.page_cache = "partial"
        state.reason = (f"eviction did not take: {after.fraction:.0%} of pages still resident "
                        f"({after.resident_pages:,} of {after.pages:,}; filesystem {kind or 'unknown'}"
                        f"{': tmpfs keeps its pages in memory' if kind in ('tmpfs', 'ramfs') else ''}"
                        f"{': overlay may not pass the advice on' if kind == 'overlay' else ''})")
    return state


def warm(path: str | Path, threshold: float = WARM_THRESHOLD) -> CacheState:
    """Read every file of ``path`` once, whole, so that its pages are cached; then measure. ``page_cache`` is
    ``"warm"`` when at least ``threshold`` of the pages are resident, else ``"partial"`` (memory pressure: the
    dataset may be larger than the free memory); ``"unknown"`` where residency cannot be measured."""
    target = Path(path)
    files = dataset_files(target)
    kind = filesystem_type(target)
    start = time.perf_counter()
    before = _measure(target)
    buffer = bytearray(_READ_BUFFER)
    view = memoryview(buffer)
    size = 0
    for file in files:
        with open(file, "rb", buffering=0) as handle:
            while True:
                got = handle.readinto(view)
                if not got:
                    break
                size += got
    after = _measure(target)
    seconds = time.perf_counter() - start
    if after is None:
        return CacheState(str(target), "warm", "unknown", None, None, len(files), size, seconds, kind,
                          f"read every file, residency not measured: {unsupported_reason()}")
    state = CacheState(str(target), "warm", "warm", after.fraction, before.fraction if before else None,
                       after.files, after.bytes, seconds, kind)
    if after.pages and after.fraction < threshold:
        state.page_cache = "partial"
        state.reason = (f"only {after.fraction:.0%} of pages resident after reading every file (memory pressure? "
                        f"{after.bytes / 2**30:.1f} GiB read)")
    return state


__all__ = [
    "COLD_THRESHOLD", "WARM_THRESHOLD", "CacheState", "PageCacheUnsupported", "Residency", "dataset_files", "evict",
    "filesystem_type", "resident_fraction", "residency", "unsupported_reason", "warm",
]
