"""What every storage format module provides.

A format module (one file per format in this package) defines ``INFO`` and these functions:

- ``write(table: pa.Table, images: np.ndarray, path: Path) -> None`` — store the dataset at ``path`` (a file or a
  directory the module creates). ``table`` is the OME-Arrow table (``row_id``, ``ome_image``); ``images`` are the
  same pixels as ``(N, C, H, W)`` for the formats that store plain arrays (TIFF, OME-Zarr).
- table formats (``INFO.kind == "table"``): ``read_table(path, column=None) -> pa.Table`` — the whole table through
  the format's own library, checked by ``check_table``: the image column (``column``, else ``ome_image``, else the
  one OME-Arrow struct column) named ``ome_image``, beside ``row_id`` when the file has one (its result has
  ``__arrow_c_stream__``, which the native core consumes).
- directory formats may define ``item_shape(item: Path) -> tuple[tuple[int, ...], str]`` — one item's ``(C, H, W)``
  and dtype from its metadata, without decoding pixels (checking that every item has one size).
- directory formats (``INFO.kind == "directory"``): ``item_paths(path) -> list[Path]`` (in row order) and
  ``read_item(item: Path) -> np.ndarray`` — one image ``(C, H, W)`` in its stored dtype, decoded per call.
- ``looks_like(path: Path) -> bool`` — whether an existing path is a dataset of this format (for ``--input``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal


class FormatError(ValueError):
    """A dataset path that this format cannot read (names the file and the problem)."""


class FormatUnavailable(RuntimeError):
    """The library a format needs cannot be imported here."""


@dataclass(frozen=True)
class FormatInfo:
    name: str  # registry key, as used on the CLI: "parquet_duckdb"
    label: str  # for plots and tables: "Parquet (DuckDB)"
    kind: Literal["table", "directory"]
    filename: str  # what ``write`` creates inside the dataset folder: "images.parquet", "tiff/"
    requires: tuple[str, ...]  # importable modules it needs

    def unavailable_reason(self) -> str | None:
        """``None`` when every required module imports, else a one-line reason."""
        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - any import failure makes the format unavailable
                return f"{self.label}: cannot import {module} ({type(exc).__name__}: {exc})"
        return None
