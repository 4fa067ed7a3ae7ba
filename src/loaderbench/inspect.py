"""``loaderbench inspect``: what an OME-Arrow dataset holds, validated by the C++ importer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loaderbench.formats import detect_format, get_format


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def inspect_dataset(path: str | Path, format_name: str | None = None) -> dict[str, Any]:
    """Validate every row of an Arrow-backed dataset through ``_core.inspect_arrow`` and summarise it.

    Directory formats (TIFF, OME-Zarr) are not Arrow-backed; they are summarised from their items instead.
    """
    from loaderbench import _core  # noqa: PLC0415 - the compiled module; imported where it is needed

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    name = format_name or detect_format(path)
    module = get_format(name)
    info: dict[str, Any] = {"path": str(path), "format": name, "format_label": module.INFO.label}
    info["disk_bytes"] = _disk_bytes(path)
    if module.INFO.kind == "table":
        table = module.read_table(path)
        try:
            info.update(_core.inspect_arrow(table))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        return info
    items = module.item_paths(path)
    if not items:
        raise ValueError(f"{path}: no images found")
    first = module.read_item(items[0])
    info.update(
        rows=len(items),
        declared_types=[str(first.dtype)],
        stored_types=[str(first.dtype)],
        shapes=[{"c": first.shape[0], "y": first.shape[-2], "x": first.shape[-1], "rows": len(items)}],
        note="not Arrow-backed: shape and dtype read from the first item",
    )
    return info


def format_inspection(info: dict[str, Any]) -> str:
    """The inspection as readable lines for the terminal."""
    lines = [f"{info['path']}  [{info['format_label']}]", f"  rows:          {info['rows']}"]
    if "batches" in info:
        lines.append(f"  record batches: {info['batches']}")
    for shape in info.get("shapes", []):
        dims = "x".join(str(shape[k]) for k in ("c", "y", "x"))
        extra = f" z={shape['z']}" if shape.get("z", 1) != 1 else ""
        extra += f" t={shape['t']}" if shape.get("t", 1) != 1 else ""
        lines.append(f"  image shape:   (C,H,W) {dims}{extra}  x{shape['rows']} rows")
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
    if "note" in info:
        lines.append(f"  note:          {info['note']}")
    return "\n".join(lines)
