"""Page-cache helper: warm and evict a dataset's files, measured with mincore."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from loaderbench import page_cache
from loaderbench.page_cache import (
    PageCacheUnsupported,
    dataset_files,
    evict,
    filesystem_type,
    residency,
    resident_fraction,
    warm,
)

MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
linux_only = pytest.mark.skipif(bool(page_cache.unsupported_reason()), reason=page_cache.unsupported_reason() or "-")


def _write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        for at in range(0, size, 8 * MIB):
            handle.write(os.urandom(min(8 * MIB, size - at)))
    return path


def _filesystem_drops_pages(folder: Path) -> tuple[bool, str]:
    """Whether ``folder``'s filesystem drops a file's pages on ``POSIX_FADV_DONTNEED``, found by doing it directly
    (not through ``evict``, so that a broken ``evict`` fails instead of skipping)."""
    probe = _write(folder / ".probe.bin", 2 * MIB)
    try:
        with open(probe, "rb") as handle:
            handle.read()
            os.fsync(handle.fileno())
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        left = resident_fraction(probe)
    finally:
        probe.unlink()
    return left <= 0.05, f"{left:.0%} of a 2 MiB file still resident after POSIX_FADV_DONTNEED on " \
                         f"{filesystem_type(folder) or 'an unknown filesystem'}"


def _evicted(path: Path) -> None:
    """Evict ``path`` and check it is cold; skip (with the measured reason) where this filesystem keeps its pages."""
    drops, why = _filesystem_drops_pages(path if path.is_dir() else path.parent)
    state = evict(path)
    if not drops:
        assert state.page_cache == "partial" and "eviction did not take" in state.reason
        pytest.skip(f"this filesystem cannot drop pages: {why}")
    assert state.page_cache == "cold", state.reason
    assert state.resident_fraction is not None and state.resident_fraction <= 0.01


def _fincore_pages(path: Path) -> int | None:
    """Resident pages of one file as util-linux ``fincore`` counts them (an independent mincore), if installed."""
    import shutil
    import subprocess

    if not shutil.which("fincore"):
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "PAGES", str(path)],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) if out else None


@linux_only
def test_mincore_sees_what_was_never_read(tmp_path) -> None:
    path = tmp_path / "holes.bin"
    with open(path, "wb") as handle:  # a sparse file: its pages were never in the cache
        handle.truncate(16 * MIB)
    assert residency(path).resident_pages == 0
    with open(path, "rb") as handle:
        handle.seek(4 * MIB)
        handle.read(2 * MIB)
    measured = residency(path)
    assert measured.pages == 16 * MIB // PAGE
    assert 2 * MIB // PAGE <= measured.resident_pages <= 6 * MIB // PAGE  # the read, plus read-ahead
    independent = _fincore_pages(path)
    if independent is not None:
        assert measured.resident_pages == independent


@linux_only
def test_warm_then_evict_a_64_mib_file(tmp_path) -> None:
    path = _write(tmp_path / "data.bin", 64 * MIB)
    state = warm(path)
    assert state.page_cache == "warm" and state.resident_fraction >= 0.9
    assert resident_fraction(path) >= 0.9
    assert state.bytes == 64 * MIB and state.files == 1 and state.action == "warm"
    _evicted(path)
    assert resident_fraction(path) <= 0.05
    with open(path, "rb") as handle:  # read half: mincore must see about half (plus the kernel's read-ahead)
        handle.read(32 * MIB)
    assert 0.45 <= resident_fraction(path) <= 0.7
    record = evict(path).record()
    assert record["page_cache"] == "cold" and record["resident_before"] >= 0.45
    assert record["filesystem"] == filesystem_type(path) != ""


@linux_only
def test_a_file_just_written_is_evicted_too(tmp_path) -> None:
    path = tmp_path / "dirty.bin"
    with open(path, "wb") as handle:  # dirty pages: DONTNEED alone would leave them; evict syncs first
        handle.write(os.urandom(16 * MIB))
    assert resident_fraction(path) > 0.9
    _evicted(path)


@linux_only
def test_a_directory_of_files(tmp_path) -> None:
    sizes = {"a.bin": 3 * MIB, "nested/b.bin": 5 * MIB + 1, "nested/deeper/c.bin": PAGE * 3 + 7, "empty.bin": 0}
    for name, size in sizes.items():
        _write(tmp_path / "set" / name, size)
    (tmp_path / "set" / "link.bin").symlink_to(tmp_path / "set" / "a.bin")  # the same file once
    files = dataset_files(tmp_path / "set")
    assert [f.relative_to(tmp_path / "set").as_posix() for f in files] == sorted(sizes)
    state = warm(tmp_path / "set")
    assert state.page_cache == "warm" and state.files == 4 and state.bytes == sum(sizes.values())
    measured = residency(tmp_path / "set")
    assert measured.pages == sum(-(-size // PAGE) for size in sizes.values())
    assert measured.resident_pages == measured.pages
    _evicted(tmp_path / "set")
    assert residency(tmp_path / "set").resident_pages <= 0.05 * measured.pages


@linux_only
def test_files_are_measured_in_pieces(tmp_path, monkeypatch) -> None:
    path = _write(tmp_path / "pieces.bin", 4 * MIB + 123)
    _evicted(path)
    with open(path, "rb") as handle:
        handle.seek(MIB)
        handle.read(MIB)
    whole = residency(path)
    monkeypatch.setattr(page_cache, "MAP_PIECE", 64 * 1024)  # 64 pieces
    assert residency(path) == whole
    assert 0 < whole.resident_pages < whole.pages


@linux_only
def test_an_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    assert resident_fraction(path) == 0.0
    assert residency(path).pages == 0
    assert evict(path).page_cache == "cold"
    assert warm(path).page_cache == "warm"


def test_a_missing_path_is_a_clear_error(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    for call in (dataset_files, evict, warm, resident_fraction):
        with pytest.raises(FileNotFoundError, match=r"nowhere: no such file or directory"):
            call(missing)


@linux_only
def test_tmpfs_is_reported_not_claimed_cold() -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or filesystem_type(shm) != "tmpfs" or not os.access(shm, os.W_OK):
        pytest.skip("no writable tmpfs at /dev/shm")
    path = _write(shm / f"loaderbench-page-cache-{os.getpid()}.bin", 4 * MIB)
    try:
        state = evict(path)
        assert state.page_cache == "partial" and state.resident_fraction > 0.9
        assert "eviction did not take" in state.reason and "tmpfs" in state.reason
    finally:
        path.unlink()


def test_other_platforms_get_a_result_not_an_exception(tmp_path, monkeypatch) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 10_000)
    monkeypatch.setattr(sys, "platform", "darwin")
    state = evict(path)
    assert state.page_cache == "unknown" and "not supported on darwin" in state.reason
    assert state.resident_fraction is None and state.bytes == 10_000
    state = warm(path)
    assert state.page_cache == "unknown" and "not supported on darwin" in state.reason and state.bytes == 10_000
    with pytest.raises(PageCacheUnsupported, match="not supported on darwin"):
        resident_fraction(path)
