"""A Lance dataset (a directory of versions, manifests and data fragments) via pylance; its read unit is the
fragment (one data file)."""

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
    library_errors,
    ome_column,
    unit_batches,
    unit_record,
)
from loaderbench.formats.base import (
    BlockReader,
    FormatError,
    FormatInfo,
    ImageStream,
    first_list_length,
    image_table,
    pixel_field,
)

INFO = FormatInfo(
    name="lance",
    label="Lance",
    kind="table",
    filename="images.lance",
    requires=("lance",),
    block_reads=True,
    read_unit="fragment",
    random_access=True,  # take reads the pages holding the row
    unit_chosen_by_writer=True,
    concurrent_reads=True,
    fork_safe=False,  # lance warns "not fork-safe ... use spawn or forkserver"; forked workers segfault
)


def write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
    """``lance.write_dataset`` from a ``RecordBatchReader`` over ``data`` (streamed), one fragment (data file) of
    ``rows_per_unit`` rows per unit (``max_rows_per_file``; ``max_rows_per_group`` too, which only the legacy
    file version uses). Lance stores relative paths, so the rename of ``atomic_output`` is safe."""
    import lance  # noqa: PLC0415

    data = check_stream(data)
    size, batches = unit_batches(data, rows_per_unit)
    reader = pa.RecordBatchReader.from_batches(data.schema, (compact_batch(batch) for batch in batches))
    with atomic_output(path) as tmp:
        lance.write_dataset(reader, str(tmp), mode="create", max_rows_per_file=size, max_rows_per_group=size)
    return unit_record(INFO.read_unit, size)


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """The whole table via ``lance.dataset(path).to_table()``."""
    import lance  # noqa: PLC0415

    if not looks_like(path):
        raise FormatError(f"{path}: not a Lance dataset (no _versions directory)")
    with library_errors(path, INFO.label):
        table = lance.dataset(str(path)).to_table()
    return check_table(table, path, column)


class LanceBlockReader(BlockReader):
    """``dataset.take(rows, columns=["ome_image.pixels_meta", "ome_image.chunks"])``: Lance projects nested fields
    itself and reads only the pages holding the asked rows (one row costs about a page of each projected column,
    not its fragment). Units are the fragments, in dataset order (their row counts from the manifest).

    A ``LanceDataset`` takes parallel calls (its reads run on Lance's own threads), so reads on several threads run
    in parallel.
    """

    info = INFO

    def _open(self, column: str | None) -> tuple[int, np.ndarray]:
        import lance  # noqa: PLC0415

        if not looks_like(self.path):
            raise FormatError(f"{self.path}: not a Lance dataset (no _versions directory)")
        self._dataset = lance.dataset(str(self.path))
        schema = self._dataset.schema
        self.column = ome_column(schema, str(self.path), column)
        sizes = np.array([fragment.count_rows() for fragment in self._dataset.get_fragments()], dtype=np.int64)
        kept = sizes[sizes > 0]
        num_rows = int(kept.sum())
        self.pixel_field = "planes"
        if num_rows:
            self.pixel_field = pixel_field(schema.field(self.column).type, self._chunks_on_first_row, self.path)
        self._columns = [f"{self.column}.{name}" for name in self.fields]
        return num_rows, np.concatenate(([0], np.cumsum(kept)[:-1])).astype(np.int64)

    def _chunks_on_first_row(self) -> int:
        first = self._dataset.take([0], columns=[f"{self.column}.chunks"]).column(0)
        return first_list_length(first.combine_chunks().field("chunks"))

    def _read(self, rows: np.ndarray) -> pa.Table:
        table = self._dataset.take(pa.array(rows, pa.int64()), columns=self._columns)
        self.count_calls()
        return image_table(table.column(0))

    def _release(self) -> None:
        self._dataset = None


def block_reader(path: Path, column: str | None = None) -> LanceBlockReader:
    """A ``LanceBlockReader`` over the dataset at ``path``."""
    return LanceBlockReader(path, column)


def looks_like(path: Path) -> bool:
    """A directory with Lance's ``_versions`` manifests."""
    return path.is_dir() and (path / "_versions").is_dir()
