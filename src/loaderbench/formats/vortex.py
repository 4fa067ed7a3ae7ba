"""A Vortex file via vortex-data: ``vortex.io.write`` and ``vortex.open(path).to_arrow()``; its read unit is
Vortex's own split (8,192 rows in vortex-data 0.93: the writer chooses it).

Vortex reads strings and binaries back as Arrow *view* types by default. The readers ask for the plain
layouts instead (``string``, ``large_binary``, as ome-arrow writes them), which is Vortex's own documented
``schema=`` option, so every table format hands the same Arrow layouts to the loaders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loaderbench.formats import (
    atomic_output,
    check_stream,
    check_table,
    compact_batch,
    has_magic,
    library_errors,
    ome_column,
    unit_batches,
    unit_record,
)
from loaderbench.formats.base import (
    OME_COLUMN,
    BlockReader,
    FormatError,
    FormatInfo,
    ImageStream,
    first_list_length,
    image_table,
    pixel_field,
)

INFO = FormatInfo(
    name="vortex",
    label="Vortex",
    kind="table",
    filename="images.vortex",
    requires=("vortex", "vortex.io"),
    block_reads=True,
    read_unit="split",
    random_access=True,  # reads by row index touch the segments holding the rows
    unit_chosen_by_writer=False,  # vortex.io.write has no option for it
    concurrent_reads=True,
)

MAGIC = b"VTXF"


def write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
    """``vortex.io.write(reader, path)`` from a ``RecordBatchReader`` over ``data``: Vortex streams it (it holds
    what it is encoding, not the dataset) and picks its own encodings per column and its own row split.
    ``rows_per_unit`` only sizes the record batches handed to Vortex; the unit recorded is the file's split."""
    import vortex  # noqa: PLC0415
    import vortex.io  # noqa: PLC0415

    data = check_stream(data)
    _size, batches = unit_batches(data, rows_per_unit)
    reader = pa.RecordBatchReader.from_batches(data.schema, (compact_batch(batch) for batch in batches))
    with atomic_output(path) as tmp:
        vortex.io.write(reader, str(tmp))
        splits = vortex.open(str(tmp)).splits()
    return unit_record(INFO.read_unit, splits[0][1] - splits[0][0] if splits else 0)


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


class VortexBlockReader(BlockReader):
    """``file.to_arrow(projection, indices=rows, schema=plain)`` on one ``vortex.open`` file: Vortex's scan by row
    indices reads only the segments holding the asked rows, and the projection (``vortex.expr.pack`` of
    ``get_item("pixels_meta")`` and the pixel field) only those columns; ``schema=`` gives plain Arrow types as
    ``read_table`` does. Units are ``file.splits()``.

    The file is not memory-mapped (``memory_map=True`` would fault on a file truncated under it). A ``VortexFile``
    takes parallel calls (its scans run on Vortex's threads), so reads on several threads run in parallel.
    """

    info = INFO

    def _open(self, column: str | None) -> tuple[int, np.ndarray]:
        import vortex  # noqa: PLC0415

        if not looks_like(self.path):
            raise FormatError(f"{self.path}: not a Vortex file (no VTXF magic)")
        self._file = vortex.open(str(self.path))
        schema = self._file.dtype.to_arrow_schema()
        self.column = ome_column(schema, str(self.path), column)
        self._image_type = schema.field(self.column).type
        splits = sorted((int(a), int(b)) for a, b in self._file.splits() if b > a)
        num_rows = len(self._file)
        if [a for a, _ in splits[1:]] != [b for _, b in splits[:-1]] or (splits and splits[-1][1] != num_rows):
            raise FormatError(f"{self.path}: Vortex splits {splits[:3]}... do not cover its {num_rows} rows")
        self.pixel_field = "planes"
        if num_rows:
            self.pixel_field = pixel_field(self._image_type, self._chunks_on_first_row, self.path)
        self._projection, self._schema = self._projected(self.fields)
        return num_rows, np.array([a for a, _ in splits] or [0], dtype=np.int64)

    def _projected(self, names: tuple[str, ...]) -> tuple[Any, pa.Schema]:
        """The Vortex expression reading fields ``names`` of the image column (as ``ome_image``), and its plain
        Arrow schema."""
        import vortex.expr as ve  # noqa: PLC0415

        image = ve.column(self.column)
        expression = ve.pack({OME_COLUMN: ve.pack({name: ve.get_item(name, image) for name in names})})
        struct = pa.struct([self._image_type.field(name) for name in names])
        return expression, pa.schema([pa.field(OME_COLUMN, plain_type(struct))])

    def _take(self, rows: np.ndarray, projection: Any, schema: pa.Schema) -> pa.Table:
        import vortex  # noqa: PLC0415

        indices = vortex.array(pa.array(rows, pa.uint64()))
        return self._file.to_arrow(projection, indices=indices, schema=schema).read_all()

    def _chunks_on_first_row(self) -> int:
        projection, schema = self._projected(("chunks",))
        first = self._take(np.zeros(1, dtype=np.int64), projection, schema).column(0)
        return first_list_length(first.combine_chunks().field("chunks"))

    def _read(self, rows: np.ndarray) -> pa.Table:
        table = self._take(rows, self._projection, self._schema)
        self.count_calls()
        return image_table(table.column(0))

    def _release(self) -> None:
        self._file = None


def block_reader(path: Path, column: str | None = None) -> VortexBlockReader:
    """A ``VortexBlockReader`` over ``path``."""
    return VortexBlockReader(path, column)


def looks_like(path: Path) -> bool:
    """A Vortex file (``VTXF`` magic at the start)."""
    return has_magic(path, MAGIC)
