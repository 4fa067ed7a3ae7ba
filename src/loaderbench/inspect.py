"""``loaderbench inspect``: what an OME-Arrow dataset holds, validated as fully as the loaders validate it.

Table formats go through the C++ importer (``_core.inspect_arrow``), every row; directory formats (TIFF, OME-Zarr)
have every item decoded by the format's ``read_item`` (the seed loaders' reader), which also reports missing chunk
files. ``quick=True`` checks a sample instead and says so.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from loaderbench.formats import FormatError, detect_format, get_format, source_column

#: ``--quick``: rows validated from the start of a table, and evenly spaced items checked in a directory
QUICK_ROWS = 1000
QUICK_ITEMS = 32
#: seconds between progress lines while items are checked
PROGRESS_EVERY_S = 2.0


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sample_indices(n: int, spread: int = QUICK_ITEMS) -> list[int]:
    """The first, the last and about ``spread`` evenly spaced indices into ``n`` items, sorted, each once."""
    if n <= 0:
        return []
    return sorted({0, n - 1, *np.linspace(0, n - 1, min(spread, n)).round().astype(int).tolist()})


def inspect_dataset(
    path: str | Path,
    format_name: str | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    column: str | None = None,
) -> dict[str, Any]:
    """Validate a dataset and summarise it: every row of a table through ``_core.inspect_arrow``, every item of a
    directory through the format's ``read_item``; with ``quick``, the first ``QUICK_ROWS`` rows or the first, last
    and ``QUICK_ITEMS`` evenly spaced items (``info["sampled"]`` is then true).

    ``info["rows"]`` is the dataset's size, ``info["checked_rows"]`` how many rows or items were checked. A row or
    item that fails raises ``FormatError`` naming the path and the problem. ``column`` names a table's image column
    (default: ``ome_image``, else the one OME-Arrow struct column); ``info["column"]`` is the one read.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    say = progress or (lambda _msg: None)
    name = format_name or detect_format(path)
    module = get_format(name)
    info: dict[str, Any] = {"path": str(path), "format": name, "format_label": module.INFO.label}
    info["disk_bytes"] = _disk_bytes(path)
    if module.INFO.kind == "table":
        info.update(_inspect_table(module, path, quick, say, column))
    else:
        if column:
            raise FormatError(f"{path}: --column applies to table formats; {module.INFO.label} has one image per file")
        info.update(_inspect_items(module, path, quick, say))
    return info


def _inspect_table(module: Any, path: Path, quick: bool, say: Callable[[str], None],
                   column: str | None = None) -> dict[str, Any]:
    from loaderbench import _core  # noqa: PLC0415 - the compiled module; imported where it is needed

    table = module.read_table(path, column=column)  # its image column, whatever its name, is read as ome_image
    sample = table.slice(0, QUICK_ROWS) if quick else table
    sampled = sample.num_rows < table.num_rows
    if sample.num_rows > QUICK_ROWS:
        say(f"inspect {path}: validating all {sample.num_rows:,} rows with the C++ importer")
    try:
        info = dict(_core.inspect_arrow(sample))
    except ValueError as exc:  # _core.ArrowImportError: the row and the problem
        raise FormatError(f"{path}: {' '.join(str(exc).split())}") from exc
    info.update(rows=table.num_rows, checked_rows=sample.num_rows, sampled=sampled, column=source_column(table))
    if sampled:
        info["note"] = (f"sampled check (--quick): the first {sample.num_rows:,} of {table.num_rows:,} rows "
                        "validated; run without --quick to validate every row")
    return info


def _inspect_items(module: Any, path: Path, quick: bool, say: Callable[[str], None]) -> dict[str, Any]:
    items = module.item_paths(path)
    if not items:
        raise FormatError(f"{path}: no images found")
    picks = sample_indices(len(items), QUICK_ITEMS) if quick else list(range(len(items)))
    kinds: Counter[tuple[tuple[int, ...], str]] = Counter()
    first: tuple[tuple[int, ...], str] | None = None
    odd: Path | None = None  # the first item whose shape or dtype differs from the first item's
    last_said = time.perf_counter()
    for done, index in enumerate(picks, start=1):
        image = module.read_item(items[index])  # FormatError naming the item: undecodable, missing chunks
        kind = (tuple(int(d) for d in image.shape), str(image.dtype))
        kinds[kind] += 1
        if first is None:
            first = kind
        elif kind != first and odd is None:
            odd = items[index]
        if time.perf_counter() - last_said >= PROGRESS_EVERY_S:
            say(f"inspect {path}: {done:,} of {len(picks):,} items checked")
            last_said = time.perf_counter()
    shapes = [{"c": s[0], "y": s[-2], "x": s[-1], "rows": count, "dtype": dtype} for (s, dtype), count in kinds.items()]
    types = sorted({dtype for _, dtype in kinds})
    info: dict[str, Any] = {
        "rows": len(items),
        "checked_rows": len(picks),
        "sampled": len(picks) < len(items),
        "declared_types": types,
        "stored_types": types,
        "shapes": shapes,
    }
    if info["sampled"]:
        info["note"] = (f"sampled check (--quick): {len(picks)} of {len(items):,} items decoded (first, last and "
                        "evenly spaced); run without --quick to check every item")
    else:
        info["note"] = f"not Arrow-backed: all {len(items):,} items decoded and checked"
    if odd is not None:
        info["mixed"] = (f"images differ in shape or dtype (first at {odd.name}); "
                         "loaderbench run needs one shape and dtype")
    return info


def format_inspection(info: dict[str, Any]) -> str:
    """The inspection as readable lines for the terminal."""
    lines = [f"{info['path']}  [{info['format_label']}]", f"  rows:          {info['rows']}"]
    if "column" in info:
        lines.append(f"  image column:  {info['column']}")
    if info.get("sampled"):
        lines.append(f"  checked:       {info['checked_rows']:,} (sampled check, --quick)")
    if "batches" in info:
        lines.append(f"  record batches: {info['batches']}")
    mixed = len(info.get("shapes", [])) > 1
    for shape in info.get("shapes", []):
        dims = "x".join(str(shape[k]) for k in ("c", "y", "x"))
        extra = f" z={shape['z']}" if shape.get("z", 1) != 1 else ""
        extra += f" t={shape['t']}" if shape.get("t", 1) != 1 else ""
        extra += f" {shape['dtype']}" if mixed and "dtype" in shape else ""
        counted = "checked rows" if info.get("sampled") else "rows"
        lines.append(f"  image shape:   (C,H,W) {dims}{extra}  x{shape['rows']} {counted}")
    lines.append(f"  pixel dtype:   declared {', '.join(info.get('declared_types', []))}; "
                 f"stored {', '.join(info.get('stored_types', []))}")
    if "has_planes" in info:
        layout = [name for name, present in (("planes", info["has_planes"]), ("chunks", info["has_chunks"])) if present]
        encoding = f" ({info['chunk_encoding']} chunks)" if info.get("has_chunks") else ""
        counts = f"{info['planes']} planes, {info['chunks']} chunks"
        lines.append(f"  layout:        {' + '.join(layout)}{encoding}; {counts}")
        if info.get("compressions"):
            lines.append(f"  compression:   {', '.join(info['compressions'])}")
        lines.append(f"  pixel bytes:   {info['payload_bytes']:,} in Arrow buffers ({info['voxels']:,} pixels)")
    lines.append(f"  on disk:       {info['disk_bytes']:,} bytes")
    if "mixed" in info:
        lines.append(f"  warning:       {info['mixed']}")
    if "note" in info:
        lines.append(f"  note:          {info['note']}")
    return "\n".join(lines)
