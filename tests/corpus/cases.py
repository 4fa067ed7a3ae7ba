"""The corpus: every malformed input as code that builds it, what to run on it, and what must happen.

A case is a ``Case``: a name, a category, an optional ``build(tmp, shared)`` that writes its input into the case's
own folder (run in the runner, one build at a time), and either a Python ``snippet`` (source defining ``run()``, run
in a fresh interpreter by ``run_corpus.py`` with ``check`` and ``TMP`` in scope) or ``argv`` (a ``loaderbench``
command line; ``{tmp}`` is the case's folder). ``expect`` is

- ``"error"``: it must fail cleanly. A snippet's exception must be one of ``CLEAN_TYPES`` (or a subclass; a case
  may allow more in ``extra_types``), its message one line with every ``keywords`` item (a tuple = any of them);
  a command must exit non-zero with one ``error:`` line, the last on stderr, holding the keywords;
- ``"ok"``: it must succeed and the snippet's ``check``\\ s on the data must hold (a command: ``stdout_has``);
- ``"ok_or_error"``: either a clean error, or success with the data right (inputs a loader may support or refuse).

Inputs are tiny (a handful of 8x8 images, 20 cells) so that the whole corpus runs in a few minutes.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLEAN_TYPES = ("ValueError", "TypeError", "IndexError", "FileNotFoundError", "KeyError")
GiB = 1 << 30
#: Address space for cases whose point is that nothing huge is allocated before the error. Measured: importing
#: torch and loaderbench and running a 2-thread loader peaks at about 2.3 GiB of address space here.
AS_LIMIT = 4 * GiB
#: Every Python case runs under this guard, so that a runaway allocation fails instead of swapping the CI machine.
AS_GUARD = 12 * GiB


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    expect: str  # "error" | "ok" | "ok_or_error"
    snippet: str | None = None
    argv: tuple[str, ...] | None = None
    build: Callable[[Path, Shared], None] | None = None
    keywords: tuple[str | tuple[str, ...], ...] = ()
    stdout_has: tuple[str, ...] = ()
    timeout: float = 60.0
    as_limit: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    extra_types: tuple[str, ...] = ()


class Shared:
    """What several cases build on, made once: the ome-arrow templates and a tiny dataset in every format."""

    def __init__(self, root: Path, capture_templates: Callable[[Path], Any]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.templates = root / "templates.pkl"
        capture_templates(self.templates)
        self._paths: dict[str, Path] | None = None

    def base(self) -> dict[str, Path]:
        """Format name -> path of 6 patterned 8x8 uint8 images written by loaderbench's own writers."""
        if self._paths is None:
            import builders  # noqa: PLC0415

            from loaderbench.config import ALL_FORMATS  # noqa: PLC0415
            from loaderbench.datagen import build_ome_table  # noqa: PLC0415
            from loaderbench.formats import get_format  # noqa: PLC0415
            from loaderbench.formats.base import ImageStream  # noqa: PLC0415

            images = builders.patterned_images(6)
            table = build_ome_table(images)
            paths = {}
            for name in ALL_FORMATS:
                module = get_format(name)
                target = self.root / "base" / module.INFO.filename.rstrip("/")
                module.write(ImageStream.from_table(table, images), target)
                paths[name] = target
            self._paths = paths
        return self._paths

    def copy(self, fmt: str, tmp: Path) -> Path:
        """A private copy of the base dataset of ``fmt`` in ``tmp`` (same file or folder name)."""
        source = self.base()[fmt]
        target = tmp / source.name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
        return target


CASES: list[Case] = []


def add(case: Case) -> None:
    if any(c.name == case.name for c in CASES):
        raise ValueError(f"duplicate case name {case.name}")
    CASES.append(case)


# --- Arrow API: hand-built OME-Arrow tables into NativeImageLoader and _core.inspect_arrow -------------------------

BUILD_HEAD = """
def build():
    import numpy as np
    import pyarrow as pa
    import builders as b
"""

LOADER_RUN = """
def run():
    import torch
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, expected = build()
    loader = NativeImageLoader(table, {kwargs})
    seen = []
    for batch, rows in loader.iter_with_indices():
        for k, row in enumerate(rows):
            if expected is not None:
                want = b.expected_float(expected[row])
                check(batch[k].shape == want.shape and torch.equal(batch[k], want),
                      f"row {{row}}: pixels differ from the input")
        seen += rows
    check(expected is None or sorted(seen) == list(range(len(expected))), f"rows delivered: {{sorted(seen)}}")
"""

INSPECT_RUN = """
def run():
    from loaderbench import _core
    table, expected = build()
    info = _core.inspect_arrow(table)
    check(expected is None or info["rows"] == len(expected), f"inspect_arrow says {{info['rows']}} rows")
{extra}
"""


def arrow_input(name: str, body: str, loader: str, inspect: str | None, keywords: tuple = (),
                kwargs: str = "batch_size=2, num_threads=2", inspect_check: str = "", as_limit: int | None = None,
                inspect_keywords: tuple | None = None) -> None:
    """Two cases for one hand-built table: the loader over it, and ``inspect_arrow`` of it (``inspect=None``: no
    inspect case). ``body`` is the inside of ``build()`` and returns ``(table, expected images or None)``."""
    build_src = BUILD_HEAD + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
    add(Case(f"arrow-api/{name}/loader", "arrow-api", loader, snippet=build_src + LOADER_RUN.format(kwargs=kwargs),
             keywords=keywords, as_limit=as_limit or AS_GUARD))
    if inspect is not None:
        extra = textwrap.indent(textwrap.dedent(inspect_check).strip("\n"), "    ")
        add(Case(f"arrow-api/{name}/inspect", "arrow-api", inspect, snippet=build_src + INSPECT_RUN.format(extra=extra),
                 keywords=keywords if inspect_keywords is None else inspect_keywords, as_limit=as_limit or AS_GUARD))


arrow_input("valid-control", """
    table, images = b.valid_table(6)
    return table, list(images)
""", "ok", "ok")

arrow_input("valid-zstd-bytes-control", """
    images = b.patterned_images(6, channels=2)
    return b.ome_table(b.valid_rows(images, "bytes", "zstd"), "bytes"), list(images)
""", "ok", None)

arrow_input("sliced-two-chunks", """
    table, images = b.valid_table(8)
    # a chunked column of two slices: non-zero struct offsets, two record batches
    both = pa.concat_tables([table.slice(1, 3), table.slice(5, 3)])
    return both, [images[i] for i in (1, 2, 3, 5, 6, 7)]
""", "ok", "ok")

arrow_input("int64-chunk-z-near-2^63", """
    return b.overflow_table(), None
""", "error", "error", keywords=("row 0",))

arrow_input("negative-chunk-y", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[2]["chunks"][0]["y"] = -3
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 2",))

arrow_input("negative-plane-z", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images, "planes")
    rows[3]["planes"][0]["z"] = -1
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 3",))

arrow_input("overlapping-chunks-count-adds-up", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    px = images[1][0]
    chunk = rows[1]["chunks"][0]
    # two 8x4 chunks at x=0 and x=2: 64 pixels in all, as declared, but columns 2-3 twice and 6-7 never
    rows[1]["chunks"] = [dict(chunk, x=0, shape_x=4, pixels=px[:, 0:4].ravel().tolist()),
                         dict(chunk, x=2, shape_x=4, pixels=px[:, 2:6].ravel().tolist())]
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 1",))

arrow_input("duplicate-planes-same-tcz", """
    images = b.patterned_images(6, channels=2)
    rows = b.valid_rows(images, "planes")
    rows[1]["planes"][1]["c"] = 0  # two planes (t=0, c=0, z=0), none for c=1: the count still says 2
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 1",))

arrow_input("duplicate-chunks-same-position", """
    images = b.patterned_images(6, channels=2)
    rows = b.valid_rows(images)
    rows[4]["chunks"][1]["c"] = 0  # channel 1's chunk moved onto channel 0's: pixel counts still add up
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 4",))

arrow_input("gap-missing-chunk", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    chunk = rows[3]["chunks"][0]
    rows[3]["chunks"] = [dict(chunk, shape_x=4, pixels=images[3][0][:, :4].ravel().tolist())]  # right half missing
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 3",))

arrow_input("dictionary-pixel-values", """
    images = b.patterned_images(6)
    overrides = {"chunks.pixels.item": pa.dictionary(pa.int16(), pa.uint16())}
    return b.ome_table(b.valid_rows(images), overrides=overrides), list(images)
""", "ok_or_error", "ok_or_error", keywords=(("dictionary", "pixels"),))

arrow_input("dictionary-type-string", """
    images = b.patterned_images(6)
    overrides = {"pixels_meta.type": pa.dictionary(pa.int32(), pa.string())}
    return b.ome_table(b.valid_rows(images), overrides=overrides), list(images)
""", "ok_or_error", "ok_or_error", keywords=(("dictionary", "type"),))

arrow_input("dictionary-channel-field", """
    images = b.patterned_images(6, channels=2)
    return b.ome_table(b.valid_rows(images), overrides={"chunks.c": pa.dictionary(pa.int8(), pa.int16())}), list(images)
""", "ok_or_error", "ok_or_error", keywords=(("dictionary", "chunks.c", ".c"),))

arrow_input("null-size-x", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[2]["pixels_meta"]["size_x"] = None
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 2", "size_x"))

arrow_input("null-type", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[3]["pixels_meta"]["type"] = None
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 3", "type"))

arrow_input("null-pixels-meta", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[1]["pixels_meta"] = None
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 1", "pixels_meta"))

arrow_input("null-image-row", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[4] = None
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 4",))

arrow_input("null-inside-pixel-list", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[0]["chunks"][0]["pixels"][5] = None
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 0",))

arrow_input("size-z-2^32+1", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[0]["pixels_meta"]["size_z"] = 2**32 + 1  # an int32 cast makes it 1, which the single chunk fits
    return b.ome_table(rows, overrides={"pixels_meta.size_z": pa.int64()}), None
""", "error", "error", keywords=("row 0",))

arrow_input("zstd-17-bytes-declares-2^31-pixels", """
    return b.zstd_bomb_table(), None
""", "error", "error", keywords=("row 0",), kwargs="batch_size=1, num_threads=1", as_limit=AS_LIMIT)

arrow_input("zstd-17-bytes-declares-2^28-pixels", """
    table = b.zstd_bomb_table(16384, 16384)  # 256 MiB stored, 1 GiB as float32: under max_sample_bytes
    return table, None
""", "error", "error", keywords=("row 0",), kwargs="batch_size=1, num_threads=1", as_limit=AS_LIMIT)

arrow_input("truncated-zstd-payload", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images, "bytes", "zstd")
    raw = rows[1]["chunks"][0]["pixel_bytes"]
    rows[1]["chunks"][0]["pixel_bytes"] = raw[: len(raw) // 2]
    return b.ome_table(rows, "bytes"), None
""", "error", "error", keywords=("row 1", "zstd"))

arrow_input("corrupt-lz4-payload", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images, "bytes", "lz4")
    raw = rows[2]["chunks"][0]["pixel_bytes"]
    rows[2]["chunks"][0]["pixel_bytes"] = raw[:4] + bytes([0xFF]) * (len(raw) - 4)  # magic kept, frame garbage
    return b.ome_table(rows, "bytes"), None
""", "error", "error", keywords=("row 2", "lz4"))

arrow_input("empty-table", """
    return b.ome_table([]), None
""", "error", "ok_or_error", keywords=(("no rows", "empty", "0 rows"),),
            inspect_check='check(info["rows"] == 0, "inspect of an empty table reports rows")')

# The loader finds the one OME-Arrow struct column whatever its name (ome_arrow.to_ome_parquet writes "image");
# inspect_arrow, the core's own API, reads the column it is given (ome_image by default).
arrow_input("other-column-name", """
    table, images = b.valid_table(3)
    return table.rename_columns(["row_id", "image"]), list(images)
""", "ok", "error", keywords=("ome_image",))

arrow_input("two-image-columns", """
    table, _ = b.valid_table(3)
    return table.append_column("mask", table.column("ome_image")).rename_columns(["row_id", "image", "mask"]), None
""", "error", None, keywords=("image", "mask", "column"))

arrow_input("non-struct-column", """
    return pa.table({"row_id": [0, 1, 2], "ome_image": pa.array([1, 2, 3], pa.int64())}), None
""", "error", "error", keywords=("ome_image", "struct"))

arrow_input("mixed-uint8-uint16-rows", """
    small = b.patterned_images(3, dtype="uint8")
    wide = b.patterned_images(3, dtype="uint16")
    return b.ome_table(b.valid_rows(small) + b.valid_rows(wide)), list(small) + list(wide)
""", "ok_or_error", "ok", keywords=("row",),
            inspect_check='check(sorted(info["declared_types"]) == ["uint16", "uint8"], str(info["declared_types"]))')

arrow_input("different-sizes-batch-2", """
    rows = b.valid_rows(b.patterned_images(3, 8, 8)) + b.valid_rows(b.patterned_images(3, 16, 16))
    return b.ome_table(rows), None
""", "error", "ok", keywords=("row",),
            inspect_check='check(len(info["shapes"]) == 2, f"shapes {info[\'shapes\']}")')

arrow_input("producer-raises-mid-stream", """
    return b.raising_reader(fail_after=1), None
""", "error", "error", keywords=("corpus producer failed",))

arrow_input("unsupported-pixel-type", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[1]["pixels_meta"]["type"] = "int4"
    return b.ome_table(rows), None
""", "error", None, keywords=("row 1", "int4"))

arrow_input("chunk-pixel-count-short", """
    images = b.patterned_images(6)
    rows = b.valid_rows(images)
    rows[2]["chunks"][0]["pixels"] = rows[2]["chunks"][0]["pixels"][:-1]
    return b.ome_table(rows), None
""", "error", "error", keywords=("row 2",))

arrow_input("uint8-pixel-list", """
    images = b.patterned_images(6)
    return b.ome_table(b.valid_rows(images), overrides={"chunks.pixels.item": pa.uint8()}), list(images)
""", "ok_or_error", "ok_or_error", keywords=(("uint8", "pixels"),))

arrow_input("large-list-pixels", """
    images = b.patterned_images(6)
    return b.ome_table(b.valid_rows(images), overrides={"chunks.pixels": pa.large_list(pa.uint16())}), list(images)
""", "ok_or_error", None, keywords=(("large", "pixels"),))


# --- Python API arguments ----------------------------------------------------------------------------------------

API_RUN = """
def run():
    import torch
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(6)
    expected = b.expected_float(images)
{body}
"""


def api(name: str, expect: str, body: str, keywords: tuple = (), as_limit: int | None = None,
        extra_types: tuple[str, ...] = (), build: Callable[[Path, Shared], None] | None = None) -> None:
    add(Case(f"python-api/{name}", "python-api", expect,
             snippet=API_RUN.format(body=textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")),
             keywords=keywords, as_limit=as_limit or AS_GUARD, extra_types=extra_types, build=build))


def iterate(kwargs: str) -> str:
    return f"for _ in NativeImageLoader(table, {kwargs}):\n    pass"


api("batch-size-2^62", "error", iterate("batch_size=2**62"), ("batch_size",), as_limit=AS_LIMIT)
api("batch-size-0", "error", iterate("batch_size=0"), ("batch_size",))
api("batch-size-negative", "error", iterate("batch_size=-4"), ("batch_size",))
api("seed-negative", "error", iterate("seed=-1"), ("seed",))
api("seed-2^64", "error", iterate("seed=2**64"), ("seed",))
api("num-threads-0", "error", iterate("num_threads=0"), ("num_threads",))
# Thread creation failing is a resource error, not the caller's bad argument: RuntimeError/OSError are clean too.
api("num-threads-10000-address-limit", "error", iterate("batch_size=2, num_threads=10000"), ("thread",),
    as_limit=AS_LIMIT, extra_types=("RuntimeError", "OSError"))
# 1024 threads are allowed, but 1024 thread stacks do not fit 4 GiB: either the loader starts fewer (and the data is
# right) or thread creation fails, cleanly.
api("num-threads-1024-address-limit", "ok_or_error", """
    loader = NativeImageLoader(table, batch_size=1024, num_threads=1024)  # one part per thread: 1024 threads
    for _ in range(2):
        batches = list(loader.iter_with_indices())
        check(len(batches) == 1 and batches[0][1] == list(range(6)) and torch.equal(batches[0][0], expected),
              "rows or pixels differ")
""", ("thread",), as_limit=AS_LIMIT, extra_types=("RuntimeError", "OSError"))
api("prefetch-negative", "error", iterate("prefetch=-1"), ("prefetch",))
api("rank-equals-world-size", "error", iterate("rank=2, world_size=2"), ("rank",))
api("rank-negative", "error", iterate("rank=-1, world_size=2"), ("rank",))
api("world-size-0", "error", iterate("world_size=0"), ("world_size",))
api("crop-larger-than-image", "error", iterate("crop_size=16"), ("crop",))
api("std-zero", "error", iterate("std=[0.0]"), ("std",))
api("mean-two-values-one-channel", "error", iterate("mean=[0.5, 0.5], std=[0.5, 0.5]"), (("mean", "channel"),))
api("dtype-int32", "error", iterate("dtype=torch.int32"), ("dtype",))
api("sampler-unknown", "error", iterate("sampler='bogus'"), ("sampler",))
api("block-size-0", "error", iterate("sampler='block', block_size=0"), ("block_size",))
api("index-out-of-range", "error", "NativeImageLoader(table)[6]", ("6",))
api("source-not-arrow", "error", "NativeImageLoader(42)", (("int", "source", "arrow"),))
api("source-missing-path", "error", "NativeImageLoader(TMP / 'missing.parquet')", ("missing.parquet",))
for _fmt in ("tiff", "ome_zarr"):  # directory formats are decoded by the core: the same pixels as the table's
    api(f"source-{_fmt}-directory", "ok", f"""
    loader = NativeImageLoader(TMP / {_fmt!r}, batch_size=6, num_threads=2)  # the folder is named after the format
    (batch,) = list(loader)
    check(torch.equal(batch, expected), "pixels differ from the images written")
""", build=lambda tmp, shared, fmt=_fmt: shared.copy(fmt, tmp) and None)
api("column-missing", "error", "NativeImageLoader(table, column='nope')", ("nope",))
api("source-int64-overflow-parquet", "error", "NativeImageLoader(TMP / 'overflow.parquet')",
    (("row 0", "overflow.parquet"),),
    build=lambda tmp, shared: __import__("pyarrow.parquet").parquet.write_table(
        __import__("builders").overflow_table(), tmp / "overflow.parquet"))
api("batch-larger-than-dataset", "ok", """
    loader = NativeImageLoader(table, batch_size=100, num_threads=2)
    check(len(loader) == 1, f"len(loader) = {len(loader)}")
    batches = list(loader.iter_with_indices())
    check(len(batches) == 1, f"{len(batches)} batches")
    batch, rows = batches[0]
    check(rows == list(range(6)) and torch.equal(batch, expected), f"rows {rows} / pixels differ")
""")
api("drop-last-partial-batch", "ok", """
    loader = NativeImageLoader(table, batch_size=4, drop_last=True)
    batches = list(loader.iter_with_indices())
    check(len(loader) == 1 and len(batches) == 1, f"len {len(loader)}, {len(batches)} batches")
    check(batches[0][1] == [0, 1, 2, 3] and torch.equal(batches[0][0], expected[:4]), "rows or pixels differ")
""")
api("shuffle-same-seed-any-threads", "ok", """
    orders = []
    for threads in (1, 3):
        loader = NativeImageLoader(table, batch_size=4, shuffle=True, seed=7, num_threads=threads)
        rows = []
        for batch, got in loader.iter_with_indices():
            check(torch.equal(batch, expected[got]), f"pixels differ for rows {got}")
            rows += got
        orders.append(rows)
    check(orders[0] == orders[1] and sorted(orders[0]) == list(range(6)), f"orders {orders}")
""")


# --- concurrency ---------------------------------------------------------------------------------------------------

def concurrency(name: str, body: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> None:
    add(Case(f"concurrency/{name}", "concurrency", "ok", snippet=textwrap.dedent(body), timeout=timeout,
             env=env or {}, as_limit=AS_GUARD))


concurrency("two-threads-one-iterator", """
def run():
    import threading
    import torch
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(40)
    expected = b.expected_float(images)
    for attempt in range(10):
        it = NativeImageLoader(table, batch_size=3, num_threads=2).iter_with_indices()
        got, errors = [[], []], []

        def pull(k):
            try:
                for batch, rows in it:
                    if not torch.equal(batch, expected[rows]):
                        errors.append(f"pixels differ for rows {rows}")
                    got[k].extend(rows)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=pull, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not errors, f"attempt {attempt}: {errors[:3]}")
        check(sorted(got[0] + got[1]) == list(range(40)), f"attempt {attempt}: rows {sorted(got[0] + got[1])}")
""")

concurrency("close-while-next", """
def run():
    import threading
    import time
    import torch
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(100, 96, 96)
    expected = b.expected_float(images)
    loader = NativeImageLoader(table, batch_size=20, num_threads=2, prefetch=1)
    for attempt in range(40):
        it = loader.iter_with_indices()
        errors = []

        def pull():
            try:
                for batch, rows in it:
                    if not torch.equal(batch, expected[rows]):
                        errors.append(f"pixels differ for rows {rows}")
            except (ValueError, RuntimeError):
                pass  # a clean "iterator closed" error is an acceptable answer
            except BaseException as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        t = threading.Thread(target=pull)
        t.start()
        time.sleep(0.0005 * (attempt % 8))
        it.close()
        t.join()
        check(not errors, f"attempt {attempt}: {errors[:3]}")
""")

concurrency("dataloader-two-workers-each-sample-once", """
def run():
    from torch.utils.data import DataLoader
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(12)
    loader = NativeImageLoader(table, batch_size=2)
    rows = []
    for batch in DataLoader(loader, batch_size=None, num_workers=2):
        rows += b.rows_of(batch)
    check(sorted(rows) == list(range(12)), f"rows delivered over both workers: {sorted(rows)}")
""", timeout=90)

concurrency("dataloader-worker-forked-while-parent-iterates", """
def run():
    from torch.utils.data import DataLoader
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(12)
    loader = NativeImageLoader(table, batch_size=2, num_threads=2)
    parent = iter(loader)
    next(parent)  # the parent's C++ threads are running when the worker forks
    rows = []
    for batch in DataLoader(loader, batch_size=None, num_workers=1):
        rows += b.rows_of(batch)
    rest = [r for batch in parent for r in b.rows_of(batch)]
    check(sorted(rows) == list(range(12)), f"worker rows {sorted(rows)}")
    check(len(rest) == 10, f"parent rows after the fork {rest}")
""", timeout=90)

ENV_RANK_IMAGE = """
def run():
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(12)
    by_env = [r for _, rows in NativeImageLoader(table, batch_size=2).iter_with_indices() for r in rows]
    explicit = [r for _, rows in NativeImageLoader(table, batch_size=2, rank=1, world_size=2).iter_with_indices()
                for r in rows]
    check(len(explicit) == 6, f"explicit rank 1 of 2 got {explicit}")
    check(by_env == explicit, f"RANK=1 WORLD_SIZE=2 with default arguments got {by_env}, rank 1's half is {explicit}")
"""
concurrency("env-rank-1-of-2-image-loader", ENV_RANK_IMAGE, env={"RANK": "1", "WORLD_SIZE": "2"})

concurrency("env-rank-1-of-2-sparse-loader", """
def run():
    import builders as b
    from loaderbench.loaders.native_sparse import NativeSparseLoader
    csr = b.small_csr(20)
    by_env = [r for _, rows in NativeSparseLoader(csr, batch_size=4, shuffle="none").iter_with_indices() for r in rows]
    explicit = [r for _, rows in NativeSparseLoader(csr, batch_size=4, shuffle="none", rank=1,
                                                    world_size=2).iter_with_indices() for r in rows]
    check(len(explicit) == 10, f"explicit rank 1 of 2 got {explicit}")
    check(by_env == explicit, f"RANK=1 WORLD_SIZE=2 with default arguments got {by_env}, rank 1's half is {explicit}")
""", env={"RANK": "1", "WORLD_SIZE": "2"})

concurrency("two-epochs-interleaved", """
def run():
    import torch
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(20)
    expected = b.expected_float(images)
    loader = NativeImageLoader(table, batch_size=3, shuffle=True, seed=3, num_threads=2)
    first, second = loader.iter_with_indices(), loader.iter_with_indices()
    got = [[], []]
    for pair in zip(first, second):
        for k, (batch, rows) in enumerate(pair):
            check(torch.equal(batch, expected[rows]), f"epoch {k}: pixels differ for rows {rows}")
            got[k] += rows
    for k, it in enumerate((first, second)):
        for batch, rows in it:
            got[k] += rows
    check(all(sorted(g) == list(range(20)) for g in got), f"rows per epoch {got}")
""")

concurrency("held-batches-stay-intact", """
def run():
    import torch
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(24)
    expected = b.expected_float(images)
    loader = NativeImageLoader(table, batch_size=4, shuffle=True, seed=1, num_threads=2, prefetch=1)
    held = list(loader.iter_with_indices())  # more batches than the pool has buffers
    for _ in range(2):
        for _batch in loader:
            pass
    for batch, rows in held:
        check(torch.equal(batch, expected[rows]), f"a held batch (rows {rows}) changed after later epochs")
""")

concurrency("iterator-outlives-loader", """
def run():
    import gc
    import torch
    import builders as b
    from loaderbench.loaders.native import NativeImageLoader
    table, images = b.valid_table(10)
    expected = b.expected_float(images)
    loader = NativeImageLoader(table, batch_size=3, num_threads=2)
    it = loader.iter_with_indices()
    del loader, table
    gc.collect()
    rows = []
    for batch, got in it:
        check(torch.equal(batch, expected[got]), f"pixels differ for rows {got}")
        rows += got
    check(rows == list(range(10)), f"rows {rows}")
""")

concurrency("sparse-two-threads-one-iterator", """
def run():
    import threading
    import torch
    import builders as b
    from loaderbench.loaders.native_sparse import NativeSparseLoader
    csr = b.small_csr(60, 30)
    dense = torch.from_numpy(csr.toarray())
    it = NativeSparseLoader(csr, batch_size=4, shuffle="random", seed=2, num_threads=2).iter_with_indices()
    got, errors = [], []

    def pull():
        try:
            for batch, rows in it:
                if not torch.equal(batch, dense[rows]):
                    errors.append(f"values differ for rows {rows}")
                got.extend(rows)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, str(errors[:3]))
    check(sorted(got) == list(range(60)), f"rows {sorted(got)}")
""")


# --- sparse: NativeSparseLoader over malformed matrices ------------------------------------------------------------

SPARSE_RUN = """
def run():
    import numpy as np
    import pyarrow as pa
    import scipy.sparse as sp
    import torch
    import builders as b
    from loaderbench.loaders.native_sparse import NativeSparseLoader
{body}
"""


def sparse_api(name: str, expect: str, body: str, keywords: tuple = (), as_limit: int | None = None) -> None:
    add(Case(f"sparse/{name}", "sparse", expect,
             snippet=SPARSE_RUN.format(body=textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")),
             keywords=keywords, as_limit=as_limit or AS_GUARD))


SPARSE_ITERATE = """
for _ in NativeSparseLoader(source, batch_size=2, shuffle="none"):
    pass
"""

sparse_api("csr-control", "ok", """
csr = b.small_csr(20, 30)
dense = torch.from_numpy(csr.toarray())
rows = []
for batch, got in NativeSparseLoader(csr, batch_size=6, shuffle="block", chunk_size=2, chunks_per_block=2,
                                     seed=1).iter_with_indices():
    check(torch.equal(batch, dense[got]), f"values differ for rows {got}")
    rows += got
check(sorted(rows) == list(range(20)), f"rows {sorted(rows)}")
""")
sparse_api("csr-int64-column-index-2^31", "error", """
indices = np.array([0, 5, 2**31 + 5], dtype=np.int64)
source = sp.csr_matrix((np.ones(3, np.float32), indices, np.array([0, 1, 2, 3], np.int64)), shape=(3, 2**31 + 10))
assert source.indices.dtype == np.int64
""" + SPARSE_ITERATE, ((str(2**31 + 5), "2147483", "int32", "2**31"),), as_limit=AS_LIMIT)
sparse_api("csr-negative-column-index", "error", """
source = sp.csr_matrix((np.ones(2, np.float32), np.array([0, -1], np.int32), np.array([0, 1, 2], np.int64)),
                       shape=(2, 10))
""" + SPARSE_ITERATE, ("-1",))
sparse_api("coo-huge-cell-id-no-n-rows", "error", """
source = pa.table({"soma_dim_0": pa.array([0, 1, 2**40], pa.int64()), "soma_dim_1": pa.array([0, 1, 2], pa.int64()),
                   "soma_data": pa.array([1.0, 2.0, 3.0], pa.float32())})
""" + SPARSE_ITERATE, ((str(2**40), "soma_dim_0", "cell", "row"),), as_limit=AS_LIMIT)
sparse_api("coo-negative-gene-id", "error", """
source = b.coo_table(b.small_csr())
genes = source.column("soma_dim_1").to_numpy().copy()
genes[3] = -1
source = source.set_column(1, "soma_dim_1", pa.array(genes))
""" + SPARSE_ITERATE, ("-1",))
sparse_api("coo-negative-cell-id", "error", """
source = pa.table({"soma_dim_0": pa.array([-1, 0, 1], pa.int64()), "soma_dim_1": pa.array([0, 1, 2], pa.int64()),
                   "soma_data": pa.array([1.0, 2.0, 3.0], pa.float32())})
""" + SPARSE_ITERATE, ("-1",))
sparse_api("coo-null-values", "error", """
source = pa.table({"soma_dim_0": pa.array([0, 1, 2], pa.int64()), "soma_dim_1": pa.array([0, 1, 2], pa.int64()),
                   "soma_data": pa.array([1.0, None, 3.0], pa.float32())})
""" + SPARSE_ITERATE, ("null",))
sparse_api("coo-null-gene-id", "error", """
source = pa.table({"soma_dim_0": pa.array([0, 1, 2], pa.int64()), "soma_dim_1": pa.array([0, None, 2], pa.int64()),
                   "soma_data": pa.array([1.0, 2.0, 3.0], pa.float32())})
""" + SPARSE_ITERATE, ("null",))
sparse_api("coo-missing-value-column", "error", """
source = b.coo_table(b.small_csr()).drop_columns(["soma_data"])
""" + SPARSE_ITERATE, ("soma_data",))
sparse_api("coo-string-values", "error", """
source = pa.table({"soma_dim_0": pa.array([0, 1], pa.int64()), "soma_dim_1": pa.array([0, 1], pa.int64()),
                   "soma_data": pa.array(["1", "2"])})
""" + SPARSE_ITERATE, ("soma_data",))
sparse_api("coo-gene-beyond-n-cols", "error", """
coo = b.coo_table(b.small_csr(20, 30))
for _ in NativeSparseLoader(coo, batch_size=2, shuffle="none", n_cols=5):
    pass
""", (("n_cols", "29", "gene", "column"),))
sparse_api("coo-duplicates-summed", "ok", """
coo = b.coo_table(b.small_csr(20, 30))
doubled = pa.concat_tables([coo, coo]).sort_by("soma_dim_0")
dense = torch.from_numpy(b.small_csr(20, 30).toarray()) * 2
rows = []
for batch, got in NativeSparseLoader(doubled, batch_size=5, shuffle="none").iter_with_indices():
    check(torch.equal(batch, dense[got]), f"duplicate entries not summed for rows {got}")
    rows += got
check(rows == list(range(20)), f"rows {rows}")
""")
sparse_api("coo-unsorted-cells", "ok", """
csr = b.small_csr(20, 30)
coo = b.coo_table(csr)
shuffled = coo.take(pa.array(np.random.default_rng(0).permutation(coo.num_rows)))
dense = torch.from_numpy(csr.toarray())
batches = list(NativeSparseLoader(shuffled, batch_size=20, shuffle="none", n_cols=30).iter_with_indices())
check(len(batches) == 1 and torch.equal(batches[0][0][: dense.shape[0]], dense), "values differ from the input")
""")
sparse_api("batch-size-0", "error", """
for _ in NativeSparseLoader(b.small_csr(), batch_size=0):
    pass
""", ("batch_size",))
sparse_api("shuffle-unknown", "error", "NativeSparseLoader(b.small_csr(), shuffle='bogus')", ("shuffle",))
sparse_api("source-not-a-matrix", "error", "NativeSparseLoader([[1, 2], [3, 4]])", (("list", "expected"),))
sparse_api("csr-output-control", "ok", """
csr = b.small_csr(20, 30)
dense = torch.from_numpy(csr.toarray())
rows = []
for batch, got in NativeSparseLoader(csr, batch_size=6, shuffle="none", output="csr").iter_with_indices():
    check(torch.equal(batch.to_dense(), dense[got]), f"values differ for rows {got}")
    rows += list(got)
check(rows == list(range(20)), f"rows {rows}")
""")


# --- sparse: `loaderbench sparse ...` on malformed files -----------------------------------------------------------

SPARSE_CLI = ("sparse", "data-loader", "-m", "native", "-b", "4", "-B", "4", "-E", "1", "--threads", "1",
              "--in-process", "--data-dir", "{tmp}/data", "--out", "{tmp}/out", "--quiet")


def sparse_cli(name: str, expect: str, input_name: str | None, build: Callable[[Path, Shared], None] | None,
               keywords: tuple = (), extra: tuple[str, ...] = (), stdout_has: tuple[str, ...] = (),
               timeout: float = 60.0) -> None:
    argv = SPARSE_CLI + (("--input", f"{{tmp}}/{input_name}") if input_name else ()) + extra
    add(Case(f"sparse/cli-{name}", "sparse", expect, argv=argv, build=build, keywords=keywords, stdout_has=stdout_has,
             timeout=timeout))


def _h5ad(tmp: Path, _shared: Shared, with_x: bool = True) -> Path:
    import builders  # noqa: PLC0415

    path = tmp / "cells.h5ad"
    builders.write_h5ad(builders.small_csr(), path, with_x=with_x)
    return path


def _coo_parquet(tmp: Path, change: Callable[[Any], Any] | None = None, shape: tuple[int, int] | None = None) -> None:
    import json  # noqa: PLC0415

    import builders  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    table = builders.coo_table(builders.small_csr())
    if change is not None:
        table = change(table)
    if shape is not None:
        meta = {b"loaderbench.sparse.shape": json.dumps({"n_obs": shape[0], "n_vars": shape[1]}).encode()}
        table = table.replace_schema_metadata(meta)
    pq.write_table(table, tmp / "cells.parquet", row_group_size=16)


def _set(column: str, position: int, value: Any) -> Callable[[Any], Any]:
    def change(table: Any) -> Any:
        import pyarrow as pa  # noqa: PLC0415

        values = table.column(column).to_pylist()
        values[position] = value
        index = table.schema.get_field_index(column)
        return table.set_column(index, column, pa.array(values, table.schema.field(column).type))

    return change


sparse_cli("h5ad-control", "ok", "cells.h5ad", lambda tmp, s: _h5ad(tmp, s) and None, stdout_has=("Appended",),
           timeout=120)
sparse_cli("truncated-h5ad", "error", "cells.h5ad",
           lambda tmp, s: __import__("builders").truncate(_h5ad(tmp, s), 0.5), ("cells.h5ad",))
sparse_cli("h5ad-without-x", "error", "cells.h5ad", lambda tmp, s: _h5ad(tmp, s, with_x=False) and None,
           ("cells.h5ad", "X"))
sparse_cli("bad-block-spec", "error", None, None, ("garbage",), extra=("-b", "garbage"))
sparse_cli("nonexistent-input", "error", "missing.h5ad", None, ("missing.h5ad",))
sparse_cli("input-wrong-suffix", "error", "cells.txt",
           lambda tmp, s: (tmp / "cells.txt").write_text("1,2,3\n") and None, ("cells.txt",))
sparse_cli("coo-parquet-unsorted", "error", "cells.parquet",
           lambda tmp, s: _coo_parquet(tmp, lambda t: t.take(list(range(t.num_rows))[::-1])),
           ("cells.parquet", "sorted"))
sparse_cli("coo-parquet-negative-cell", "error", "cells.parquet",
           lambda tmp, s: _coo_parquet(tmp, _set("soma_dim_0", 0, -1)), ("cells.parquet", "-1"))
sparse_cli("coo-parquet-gene-beyond-shape", "error", "cells.parquet",
           lambda tmp, s: _coo_parquet(tmp, shape=(20, 10)), ("cells.parquet", "soma_dim_1"))
sparse_cli("coo-parquet-missing-column", "error", "cells.parquet",
           lambda tmp, s: _coo_parquet(tmp, lambda t: t.drop_columns(["soma_data"])), ("cells.parquet", "soma_data"))
sparse_cli("coo-parquet-null-values", "error", "cells.parquet",
           lambda tmp, s: _coo_parquet(tmp, _set("soma_data", 5, None)), ("cells.parquet", "null"))
sparse_cli("coo-parquet-truncated", "error", "cells.parquet",
           lambda tmp, s: (_coo_parquet(tmp), __import__("builders").truncate(tmp / "cells.parquet", 0.5)) and None,
           ("cells.parquet",))
sparse_cli("batch-size-0", "error", "cells.h5ad", lambda tmp, s: _h5ad(tmp, s) and None, ("batch",),
           extra=("-B", "0"))


# --- formats: `loaderbench run --input` and `loaderbench inspect` on broken datasets ------------------------------

TINY_TOML = """
[data]
n_images = 4
sizes = [[8, 8]]

[getitem]
repeats = 1
samples = 6
warmup = 1
transforms = ["none"]
access = ["sequential"]
"""
RUN = ("--tracks", "getitem", "--repeats", "1", "--config", "{tmp}/tiny.toml", "--out", "{tmp}/out",
       "--data-dir", "{tmp}/data", "--quiet")


def _with_toml(build: Callable[[Path, Shared], Any] | None) -> Callable[[Path, Shared], None]:
    def wrapped(tmp: Path, shared: Shared) -> None:
        (tmp / "tiny.toml").write_text(TINY_TOML)
        if build is not None:
            build(tmp, shared)

    return wrapped


def broken_dataset(fmt: str, name: str, target: str, build: Callable[[Path, Shared], Any], keywords: tuple,
                   run: bool = True, inspect: bool = True, run_expect: str = "error",
                   inspect_expect: str = "error", inspect_has: tuple[str, ...] = ()) -> None:
    """``loaderbench run --input TARGET`` and ``loaderbench inspect TARGET`` (``fmt:`` prefixes name the format)."""
    prefix, _, path = target.rpartition(":")
    inspect_argv = ("inspect", f"{{tmp}}/{path}") + (("--format", prefix) if prefix else ())
    if run:
        add(Case(f"format-{fmt}/{name}/run", f"format-{fmt}", run_expect,
                 argv=("run", "--input", (f"{prefix}:" if prefix else "") + f"{{tmp}}/{path}", *RUN),
                 build=_with_toml(build), keywords=keywords, stdout_has=("Results:",), timeout=90))
    if inspect:
        add(Case(f"format-{fmt}/{name}/inspect", f"format-{fmt}", inspect_expect, argv=inspect_argv,
                 build=_with_toml(build), keywords=keywords, stdout_has=inspect_has))


def _copy(fmt: str, then: Callable[[Path], Any] | None = None) -> Callable[[Path, Shared], None]:
    def build(tmp: Path, shared: Shared) -> None:
        path = shared.copy(fmt, tmp)
        if then is not None:
            then(path)

    return build


def _truncate(keep: float = 0.5) -> Callable[[Path], None]:
    return lambda path: __import__("builders").truncate(path, keep)


def _write_parquet(name: str, make: Callable[[], Any]) -> Callable[[Path, Shared], None]:
    def build(tmp: Path, _shared: Shared) -> None:
        import pyarrow.parquet as pq  # noqa: PLC0415

        pq.write_table(make(), tmp / name)

    return build


def _plain_table() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.table({"x": [1, 2, 3]})


def _wrong_struct_table() -> Any:
    import pyarrow as pa  # noqa: PLC0415

    return pa.table({"row_id": [0, 1], "ome_image": pa.array([{"a": 1}, {"a": 2}])})


def _zero_row_table() -> Any:
    import builders  # noqa: PLC0415

    table, _ = builders.valid_table(3)
    return table.slice(0, 0)


def _null_row_table() -> Any:
    import builders  # noqa: PLC0415

    rows = builders.valid_rows(builders.patterned_images(4))
    rows[2] = None
    return builders.ome_table(rows)


def _mixed_size_table() -> Any:
    import builders  # noqa: PLC0415

    rows = builders.valid_rows(builders.patterned_images(3, 8, 8)) + builders.valid_rows(
        builders.patterned_images(3, 16, 16))
    return builders.ome_table(rows)


def _overflow() -> Any:
    import builders  # noqa: PLC0415

    return builders.overflow_table()


def _lance_without_data(path: Path) -> None:
    for data_file in (path / "data").iterdir():
        data_file.unlink()


def _duckdb_other_table(tmp: Path, _shared: Shared) -> None:
    import duckdb  # noqa: PLC0415

    with duckdb.connect(str(tmp / "images.duckdb")) as con:
        con.execute("CREATE TABLE other AS SELECT 1 AS x")
        con.execute("CHECKPOINT")


def _tiff_last_truncated(path: Path) -> None:
    __import__("builders").truncate(path / "img_000005.tiff", 0.5)


def _tiff_empty(tmp: Path, _shared: Shared) -> None:
    (tmp / "tiff").mkdir()


def _tiff_first_not_tiff(path: Path) -> None:
    (path / "img_000000.tiff").write_text("this is not a TIFF file\n")


def _tiff_last_other_size(path: Path) -> None:
    import numpy as np  # noqa: PLC0415
    import tifffile  # noqa: PLC0415

    tifffile.imwrite(path / "img_000005.tiff", np.zeros((1, 16, 16), np.uint8), photometric="minisblack")


def _zarr_chunks_deleted(path: Path) -> None:
    for chunks in path.glob("*/s0/c"):
        shutil.rmtree(chunks)


def _zarr_last_without_attributes(path: Path) -> None:
    import json  # noqa: PLC0415

    meta = path / "img_000005.zarr" / "zarr.json"
    value = json.loads(meta.read_text())
    value.pop("attributes", None)
    meta.write_text(json.dumps(value))


def _zarr_last_chunk_truncated(path: Path) -> None:
    (chunk,) = (path / "img_000005.zarr" / "s0").rglob("c/0/0/0")
    __import__("builders").truncate(chunk, 0.5)


broken_dataset("parquet", "truncated", "images.parquet", _copy("parquet", _truncate()), ("images.parquet",))
broken_dataset("parquet", "no-ome-image-column", "images.parquet", _write_parquet("images.parquet", _plain_table),
               ("images.parquet", "ome_image"))
broken_dataset("parquet", "ome-image-not-ome-struct", "images.parquet",
               _write_parquet("images.parquet", _wrong_struct_table), ("images.parquet", "pixels_meta"), run=False)
broken_dataset("parquet", "zero-rows", "images.parquet", _write_parquet("images.parquet", _zero_row_table),
               ("images.parquet", "no rows"))
broken_dataset("parquet", "null-image-row", "images.parquet", _write_parquet("images.parquet", _null_row_table),
               ("images.parquet", "row 2"))
broken_dataset("parquet", "int64-chunk-z-near-2^63", "overflow.parquet", _write_parquet("overflow.parquet", _overflow),
               ("overflow.parquet", ("row 0", "first image")))
broken_dataset("parquet", "mixed-image-sizes", "mixed.parquet", _write_parquet("mixed.parquet", _mixed_size_table),
               ("mixed.parquet",), inspect_expect="ok", inspect_has=("1x8x8  x3 rows", "1x16x16  x3 rows"))
broken_dataset("parquet_duckdb", "truncated", "images_duckdb.parquet", _copy("parquet_duckdb", _truncate()),
               ("images_duckdb.parquet",), run=False)
broken_dataset("lance", "data-file-deleted", "images.lance", _copy("lance", _lance_without_data), ("images.lance",))
broken_dataset("vortex", "truncated", "images.vortex", _copy("vortex", _truncate()), ("images.vortex",))
broken_dataset("vortex", "parquet-named-vortex", "vortex:images.parquet", _copy("parquet"), ("images.parquet",),
               run=False)
broken_dataset("duckdb", "truncated", "images.duckdb", _copy("duckdb", _truncate()), ("images.duckdb",), run=False)
broken_dataset("duckdb", "corrupt-blocks", "images.duckdb",
               _copy("duckdb", lambda p: __import__("builders").scribble(p, start=3 * 4096)), ("images.duckdb",))
broken_dataset("duckdb", "no-images-table", "images.duckdb", _duckdb_other_table, ("images.duckdb", "images"))
broken_dataset("arrow_ipc", "truncated", "images.arrow", _copy("arrow_ipc", _truncate(0.6)), ("images.arrow",))
broken_dataset("tiff", "last-file-truncated", "tiff", _copy("tiff", _tiff_last_truncated), ("img_000005.tiff",))
broken_dataset("tiff", "empty-directory", "tiff:tiff", _tiff_empty, ("tiff",))
broken_dataset("tiff", "first-file-not-tiff", "tiff", _copy("tiff", _tiff_first_not_tiff), ("img_000000.tiff",),
               run=False)
broken_dataset("tiff", "last-image-other-size", "tiff", _copy("tiff", _tiff_last_other_size), ("img_000005.tiff",),
               inspect=False)
broken_dataset("ome_zarr", "chunk-files-deleted", "ome_zarr", _copy("ome_zarr", _zarr_chunks_deleted),
               (("img_000000.zarr", "chunk"),))
broken_dataset("ome_zarr", "group-without-attributes", "ome_zarr:ome_zarr",
               _copy("ome_zarr", _zarr_last_without_attributes), ("img_000005.zarr",))
broken_dataset("ome_zarr", "chunk-file-truncated", "ome_zarr", _copy("ome_zarr", _zarr_last_chunk_truncated),
               ("img_000005.zarr",), inspect=False)


# --- inspect: `loaderbench inspect` on things that are not datasets ---------------------------------------------

def inspect_case(name: str, expect: str, args: tuple[str, ...], build: Callable[[Path, Shared], Any] | None,
                 keywords: tuple = (), stdout_has: tuple[str, ...] = (), as_limit: int | None = None) -> None:
    add(Case(f"inspect/{name}", "inspect", expect, argv=("inspect", *args), build=build, keywords=keywords,
             stdout_has=stdout_has, as_limit=as_limit))


inspect_case("parquet-control", "ok", ("{tmp}/images.parquet",), _copy("parquet"),
             stdout_has=("rows:          6", "1x8x8"))
inspect_case("every-format-control", "ok",
             tuple(f"{{tmp}}/{n}" for n in ("images.parquet", "images_duckdb.parquet", "images.lance", "images.vortex",
                                           "images.duckdb", "tiff", "ome_zarr", "images.arrow")),
             lambda tmp, s: [s.copy(f, tmp) for f in s.base()] and None,
             stdout_has=("[Parquet (pyarrow)]", "[Parquet (DuckDB)]", "[Lance]", "[Vortex]", "[DuckDB (file)]",
                         "[TIFF (directory)]", "[OME-Zarr (directory)]", "[Arrow IPC (mmap)]"))
inspect_case("zstd-bomb-parquet-address-limit", "error", ("{tmp}/bomb.parquet",),
             _write_parquet("bomb.parquet", lambda: __import__("builders").zstd_bomb_table()),
             ("bomb.parquet", "row 0"), as_limit=AS_LIMIT)
inspect_case("text-file", "error", ("{tmp}/notes.txt",),
             lambda tmp, s: (tmp / "notes.txt").write_text("hello\n") and None, ("notes.txt",))
inspect_case("empty-directory", "error", ("{tmp}/empty",), lambda tmp, s: (tmp / "empty").mkdir(), ("empty",))
inspect_case("nonexistent", "error", ("{tmp}/nope.parquet",), None, ("nope.parquet",))
inspect_case("parquet-as-lance", "error", ("{tmp}/images.parquet", "--format", "lance"), _copy("parquet"),
             ("images.parquet",))
inspect_case("parquet-as-arrow-ipc", "error", ("{tmp}/images.parquet", "--format", "arrow_ipc"), _copy("parquet"),
             ("images.parquet",))
inspect_case("tiff-as-ome-zarr", "error", ("{tmp}/tiff", "--format", "ome_zarr"), _copy("tiff"), ("tiff",))
inspect_case("unknown-format-name", "error", ("{tmp}/images.parquet", "--format", "csv"), _copy("parquet"), ("csv",))


# --- cli: `loaderbench` arguments ----------------------------------------------------------------------------------

def cli(name: str, expect: str, args: tuple[str, ...], keywords: tuple = (),
        build: Callable[[Path, Shared], Any] | None = None, stdout_has: tuple[str, ...] = ()) -> None:
    add(Case(f"cli/{name}", "cli", expect, argv=args, build=_with_toml(build), keywords=keywords,
             stdout_has=stdout_has, timeout=90))


def _taken(tmp: Path, _shared: Shared) -> None:
    (tmp / "taken.txt").write_text("not a directory\n")


cli("run-input-control", "ok", ("run", "--input", "{tmp}/images.parquet", *RUN), build=_copy("parquet"),
    stdout_has=("Results:",))
cli("no-command", "error", (), ("COMMAND",))
cli("unknown-track", "error", ("run", "--tracks", "warp", *RUN[2:]), ("warp",))
cli("unknown-format", "error", ("run", "--formats", "csv", *RUN), ("csv",))
cli("out-is-a-file", "error", ("run", *RUN, "--out", "{tmp}/taken.txt"), ("taken.txt",), build=_taken)
cli("data-dir-is-a-file", "error", ("run", *RUN, "--data-dir", "{tmp}/taken.txt"), ("taken.txt",), build=_taken)
cli("bad-preset", "error", ("run", "--preset", "huge", *RUN), ("huge",))
cli("input-nonexistent", "error", ("run", "--input", "{tmp}/nope.parquet", *RUN), ("nope.parquet",))
cli("input-unknown-format-prefix", "error", ("run", "--input", "csv:{tmp}/x.csv", *RUN), ("csv",))
cli("input-format-prefix-without-path", "error", ("run", "--input", "parquet:", *RUN), ("parquet",))
cli("input-directory-not-a-dataset", "error", ("run", "--input", "{tmp}/out", *RUN), ("out",),
    build=lambda tmp, s: (tmp / "out").mkdir())
cli("size-not-hxw", "error", ("run", "--size", "10by10", *RUN), ("10by10",))
cli("size-zero", "error", ("run", "--size", "0x10", *RUN), ("sizes",))
cli("size-three-dims", "error", ("run", "--size", "10x10x10", *RUN), ("10x10x10",))
cli("n-images-negative", "error", ("run", "--n-images", "-1", *RUN), ("n_images",))
cli("repeats-zero", "error", ("run", *RUN[:2], "--repeats", "0", *RUN[4:]), ("repeats",))
cli("channels-zero", "error", ("run", "--channels", "0", *RUN), ("channels",))
cli("report-nonexistent", "error", ("report", "{tmp}/nothing"), ("nothing",))
cli("report-corrupt-results", "error", ("report", "{tmp}/res"), (("res", "summary.json", "getitem.parquet"),),
    build=lambda tmp, s: ((tmp / "res").mkdir(), (tmp / "res" / "summary.json").write_text("{not json"),
                          (tmp / "res" / "getitem.parquet").write_bytes(b"PAR1 garbage")) and None)
cli("compare-nonexistent", "error", ("compare", "{tmp}/a", "{tmp}/b"), ("{tmp}/a",))


# --- config: `loaderbench run --config F.toml` ---------------------------------------------------------------------

def config(name: str, text: str | bytes | None, keywords: tuple) -> None:
    """``run --config {tmp}/c.toml`` with ``text`` as the file (``None``: no file)."""

    def build(tmp: Path, _shared: Shared) -> None:
        if isinstance(text, bytes):
            (tmp / "c.toml").write_bytes(text)
        elif text is not None:
            (tmp / "c.toml").write_text(text)

    add(Case(f"config/{name}", "config", "error",
             argv=("run", "--config", "{tmp}/c.toml", "--out", "{tmp}/out", "--data-dir", "{tmp}/data", "--quiet"),
             build=build, keywords=keywords, timeout=90))


config("invalid-syntax", "[data\n", ("c.toml", "TOML"))
config("unknown-key", "[data]\nimages = 3\n", ("data.images",))
config("unknown-section", "[dataloder]\nrepeats = 1\n", ("dataloder",))
config("wrong-type-string-for-int", '[data]\nn_images = "many"\n', ("data.n_images",))
config("wrong-type-float-for-int", "[data]\nn_images = 2.5\n", ("data.n_images",))
config("wrong-type-bool-for-int", "[getitem]\nrepeats = true\n", ("getitem.repeats",))
config("negative-repeats", "[getitem]\nrepeats = -1\n", ("getitem.repeats",))
config("empty-formats-list", "formats = []\n" + TINY_TOML, ("formats",))
config("empty-tracks-list", "tracks = []\n" + TINY_TOML, ("tracks",))
config("empty-batch-sizes", 'tracks = ["dataloader"]\nformats = ["parquet"]\n' + TINY_TOML
       + "\n[dataloader]\nbatch_sizes = []\n", ("dataloader.batch_sizes",))
config("missing-file", None, ("c.toml",))
config("section-given-as-value", "data = 3\n", ("data",))
config("size-zero", "[data]\nsizes = [[0, 10]]\n", ("data.sizes",))
config("size-one-number", "[data]\nsizes = [[8]]\n", ("data.sizes",))
config("list-of-wrong-type", '[dataloader]\nbatch_sizes = ["x"]\n', ("dataloader.batch_sizes",))
config("unknown-preset-in-file", 'preset = "huge"\n', ("huge",))
config("crop-larger-than-image", "[getitem]\ncrop_size = 1000\n", ("crop_size",))
config("negative-num-workers", "[dataloader]\nnum_workers = [-1]\n", ("dataloader.num_workers",))
config("not-utf8", b"\xff\xfe[data]\nn_images = 3\n", ("c.toml",))
