"""A Lance dataset (a directory of versions, manifests and data fragments) via pylance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from loaderbench.formats import atomic_output, check_table, library_errors
from loaderbench.formats.base import FormatError, FormatInfo

INFO = FormatInfo(
    name="lance",
    label="Lance",
    kind="table",
    filename="images.lance",
    requires=("lance",),
)


def write(table: pa.Table, images: np.ndarray, path: Path) -> None:
    """``lance.write_dataset(table, tmp, mode="create")``; Lance stores relative paths, so the rename is safe."""
    import lance  # noqa: PLC0415

    with atomic_output(path) as tmp:
        lance.write_dataset(table, str(tmp), mode="create")


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """The whole table via ``lance.dataset(path).to_table()``."""
    import lance  # noqa: PLC0415

    if not looks_like(path):
        raise FormatError(f"{path}: not a Lance dataset (no _versions directory)")
    with library_errors(path, INFO.label):
        table = lance.dataset(str(path)).to_table()
    return check_table(table, path, column)


def looks_like(path: Path) -> bool:
    """A directory with Lance's ``_versions`` manifests."""
    return path.is_dir() and (path / "_versions").is_dir()
