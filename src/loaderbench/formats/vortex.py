"""A Vortex file via vortex-data: ``vortex.io.write`` and ``vortex.open(path).to_arrow()``.

Vortex reads strings and binaries back as Arrow *view* types by default. The reader asks for the plain
layouts instead (``string``, ``large_binary``, as ome-arrow writes them), which is Vortex's own documented
``schema=`` option, so every table format hands the same Arrow layouts to the loaders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from loaderbench.formats import atomic_output, check_table, has_magic, library_errors
from loaderbench.formats.base import FormatError, FormatInfo

INFO = FormatInfo(
    name="vortex",
    label="Vortex",
    kind="table",
    filename="images.vortex",
    requires=("vortex", "vortex.io"),
)

MAGIC = b"VTXF"


def write(table: pa.Table, images: np.ndarray, path: Path) -> None:
    """``vortex.io.write(table, path)`` (Vortex picks its own encodings per column)."""
    import vortex.io  # noqa: PLC0415

    with atomic_output(path) as tmp:
        vortex.io.write(table, str(tmp))


def plain_type(t: pa.DataType) -> pa.DataType:
    """``t`` with every view type replaced by its offset-based twin (recursing into nested types)."""
    if pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_binary_view(t):
        return pa.large_binary()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(plain_type(f.type)) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(plain_type(t.value_type)))
    if pa.types.is_list(t) or pa.types.is_list_view(t):
        return pa.list_(t.value_field.with_type(plain_type(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(plain_type(t.value_type)), t.list_size)
    return t


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """The whole table via ``vortex.open(path).to_arrow(schema=...).read_all()`` (no view types)."""
    import vortex  # noqa: PLC0415

    if not looks_like(path):  # a foreign file gets a clear line rather than a footer-parse error
        raise FormatError(f"{path}: not a Vortex file (no VTXF magic)")
    with library_errors(path, INFO.label):
        file = vortex.open(str(path))
        schema = file.dtype.to_arrow_schema()
        plain = pa.schema([f.with_type(plain_type(f.type)) for f in schema], metadata=schema.metadata)
        table = file.to_arrow(schema=plain).read_all()
    return check_table(table, path, column)


def looks_like(path: Path) -> bool:
    """A Vortex file (``VTXF`` magic at the start)."""
    return has_magic(path, MAGIC)
