"""Arrow IPC file format, uncompressed, read through a memory map (no copy, no decode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from loaderbench.formats import atomic_output, check_table, has_magic, library_errors
from loaderbench.formats.base import FormatInfo

INFO = FormatInfo(
    name="arrow_ipc",
    label="Arrow IPC (mmap)",
    kind="table",
    filename="images.arrow",
    requires=("pyarrow",),
)


def write(table: pa.Table, images: np.ndarray, path: Path) -> None:
    """Store ``table`` as an uncompressed Arrow IPC file (Feather v2 layout)."""
    with atomic_output(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """``pa.ipc.open_file(pa.memory_map(path)).read_all()``: buffers point into the mapped file."""
    with library_errors(path, INFO.label):
        table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    return check_table(table, path, column)


def looks_like(path: Path) -> bool:
    """An Arrow IPC file (``ARROW1`` magic)."""
    return has_magic(path, b"ARROW1")
