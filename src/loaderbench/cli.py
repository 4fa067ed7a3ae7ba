"""The ``loaderbench`` command line: run, report, compare, inspect, profile, sparse."""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from loaderbench import __version__, interrupts
from loaderbench.config import (
    ALL_FORMATS,
    ALL_TRACKS,
    CONTENTS,
    DTYPES,
    LAYOUTS,
    OPTIONAL_TRACKS,
    PRESETS,
    ConfigError,
    load_config,
)


def _size(text: str) -> list[int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"image size must look like 100x100, got {text!r}") from exc
    return [height, width]


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """CLI flags as a nested dict in the TOML's shape; only the flags the user gave."""
    out: dict[str, Any] = {}
    for key in ("formats", "tracks", "out", "data_dir"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    if args.input:
        out["inputs"] = args.input
    if args.column is not None:
        out["column"] = args.column
    data = {k: v for k, v in (("n_images", args.n_images), ("sizes", args.size), ("dtype", args.dtype),
                              ("layout", args.layout), ("content", args.content),
                              ("channels", args.channels), ("depth", args.depth), ("seed", args.seed))
            if v is not None}
    if data:
        out["data"] = data
    if args.repeats is not None:
        out.update({t: {"repeats": args.repeats} for t in ALL_TRACKS})
    if args.train:
        out.setdefault("end_to_end", {})["train"] = True
    if args.cold:
        out.setdefault("streaming", {})["page_cache"] = ["warm", "cold"]
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from loaderbench.progress import Progress  # noqa: PLC0415
    from loaderbench.report.terminal import summary_table  # noqa: PLC0415
    from loaderbench.runner import conversion_advice, run_benchmark  # noqa: PLC0415

    cfg = load_config(args.preset, args.config, _overrides(args))
    progress = Progress(quiet=args.quiet)
    progress(f"loaderbench {__version__}: preset {cfg.preset}, formats {', '.join(cfg.formats)}, "
             f"tracks {', '.join(cfg.tracks)} -> {cfg.out}")
    outcome = run_benchmark(cfg, progress, with_generated=args.with_generated)
    print(summary_table(outcome.out_dir))
    advice = conversion_advice(outcome.frames.get("conversion"))
    if advice:
        print("\nTrack 4 interpretation (seed levels: <10% low, 10-30% moderate, >30% high):")
        print("\n".join(advice))
    print(f"\nResults: {outcome.out_dir}/ (report.html, summary.json, <track>.parquet, plots/) "
          f"in {outcome.total_seconds:.0f}s")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from loaderbench.report import render_report  # noqa: PLC0415
    from loaderbench.report.terminal import summary_table  # noqa: PLC0415

    out = Path(args.dir)
    if not (out / "summary.json").exists() and not any(out.glob("*.parquet")):
        raise FileNotFoundError(f"{out}: no loaderbench results here (no summary.json or <track>.parquet)")
    rendered = render_report(out)
    print(summary_table(out))
    print(f"\nWrote {rendered['html']} and {len(rendered['plots'])} plot(s)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from loaderbench.report import compare  # noqa: PLC0415
    from loaderbench.report.compare_html import render_compare_html  # noqa: PLC0415
    from loaderbench.report.terminal import compare_table  # noqa: PLC0415

    for d in (args.dir_a, args.dir_b):
        if not Path(d).is_dir():
            raise FileNotFoundError(f"{d}: no such results directory")
    table = compare(args.dir_a, args.dir_b)
    if table.empty:
        print("No configuration appears in both runs.")
        return 1
    print(compare_table(table))
    page = render_compare_html(table, args.dir_a, args.dir_b, args.html)
    print(f"Wrote {page}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from loaderbench.inspect import format_inspection, inspect_dataset  # noqa: PLC0415
    from loaderbench.progress import Progress  # noqa: PLC0415

    progress = Progress(quiet=args.quiet)
    for path in args.paths:
        info = inspect_dataset(path, args.format, quick=args.quick, progress=progress, column=args.column)
        print(format_inspection(info), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loaderbench",
        description="How fast does each storage format and loading strategy feed a PyTorch model, "
        "and where does the time go?",
    )
    parser.add_argument("--version", action="version", version=f"loaderbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="generate data if missing, run the tracks, write results and the report",
                         description="Generate data if missing (cached by config hash), run the tracks, write "
                         "<track>.parquet, summary.json, plots/ and report.html, and print a summary table.")
    run.add_argument("--preset", choices=PRESETS, default="quick",
                     help="quick (default): a few minutes on 2 cores; full: the seeds' settings and sizes")
    run.add_argument("--config", metavar="FILE.toml", help="TOML file overriding the preset (see README)")
    run.add_argument("--formats", nargs="+", metavar="FMT",
                     help=f"formats to run (default all: {' '.join(ALL_FORMATS)})")
    run.add_argument("--tracks", nargs="+", metavar="TRACK",
                     help=f"tracks to run (default: {' '.join(ALL_TRACKS)}; also: {' '.join(OPTIONAL_TRACKS)})")
    run.add_argument("--out", metavar="DIR", help="results directory (default: results)")
    run.add_argument("--data-dir", metavar="DIR", help="where generated data is cached (default: data)")
    run.add_argument("--input", action="append", metavar="[FMT:]PATH",
                     help="benchmark an existing OME-Arrow dataset (repeatable); format detected from the path "
                     "unless named")
    run.add_argument("--column", metavar="NAME",
                     help="with --input: the OME-Arrow image column (default: ome_image, else the one OME-Arrow "
                     "struct column, e.g. 'image' as ome_arrow.to_ome_parquet writes it)")
    run.add_argument("--with-generated", action="store_true",
                     help="with --input: also run on generated data")
    run.add_argument("--n-images", type=int, help="number of generated images")
    run.add_argument("--size", type=_size, action="append", metavar="HxW", help="image size (repeatable)")
    run.add_argument("--dtype", choices=DTYPES, help="pixel dtype of generated images")
    run.add_argument("--layout", choices=LAYOUTS,
                     help="how the table formats store the generated pixels: ome-arrow's default (planes + chunks, "
                          "uint16 lists), planes, chunks, or byte chunks raw / zstd / lz4 (default ome-arrow)")
    run.add_argument("--content", choices=CONTENTS,
                     help="what generated pixels look like: random (uniform noise, as the seed; incompressible) or "
                          "smooth (dark background, bright structure, a little noise: compresses ~1.7x with zstd, "
                          "as microscopy does) (default random)")
    run.add_argument("--channels", type=int, help="channels per generated image")
    run.add_argument("--depth", type=int, metavar="Z",
                     help="Z planes per generated image: 1 = 2-D images (default), more = volumes (Z stacks), "
                          "batches [B, C, Z, H, W]")
    run.add_argument("--seed", type=int, help="random seed for data generation")
    run.add_argument("--repeats", type=int, help="repeats for every track")
    run.add_argument("--train", action="store_true", help="Track 3: a training step instead of inference")
    run.add_argument("--cold", action="store_true",
                     help="measure the disk-reading rows (random_access, native_streaming, block_torch) with a cold "
                          "page cache too: the dataset's pages are evicted before every repeat")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="re-render plots and report.html from saved results")
    report.add_argument("dir", metavar="DIR")
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="compare two result directories (ratios B/A of the medians)")
    compare.add_argument("dir_a", metavar="DIR_A")
    compare.add_argument("dir_b", metavar="DIR_B")
    compare.add_argument("--html", default="compare.html", metavar="PATH",
                         help="where to write the comparison page (default: compare.html)")
    compare.set_defaults(func=cmd_compare)

    inspect = sub.add_parser("inspect", help="validate an OME-Arrow dataset as the loaders would and describe it",
                             description="Validate every row (table formats, with the C++ importer) or decode every "
                             "item (TIFF, OME-Zarr: shape, dtype, missing chunks) and describe the dataset.")
    inspect.add_argument("paths", nargs="+", metavar="PATH")
    inspect.add_argument("--format", choices=ALL_FORMATS, help="the dataset's format (default: detected)")
    inspect.add_argument("--column", metavar="NAME",
                         help="the OME-Arrow image column of a table (default: ome_image, else the one OME-Arrow "
                         "struct column)")
    inspect.add_argument("--quick", action="store_true",
                         help="sampled check: the first 1,000 rows of a table; the first, last and 32 evenly spaced "
                         "items of a directory")
    inspect.add_argument("--quiet", action="store_true", help="no progress lines")
    inspect.set_defaults(func=cmd_inspect)

    from loaderbench.profile.cli import register as register_profile  # noqa: PLC0415
    from loaderbench.sparse.cli import register as register_sparse  # noqa: PLC0415

    register_profile(sub)
    register_sparse(sub)
    return parser


def error_line(exc: BaseException) -> str:
    """An error as one line. One raised in a DataLoader worker comes back with the worker's traceback in its message
    ("Caught FormatError in DataLoader worker process 0. Original Traceback ..."): keep the original error's line."""
    text = str(exc)
    if "Original Traceback" in text and text.strip():
        last = text.strip().splitlines()[-1]
        name, sep, message = last.partition(": ")  # "loaderbench.formats.base.FormatError: /path: ..."
        text = message if sep and re.fullmatch(r"[\w.]+", name) else last
    return " ".join(text.split())


def _interrupted() -> int:
    print("loaderbench: interrupted (finished tracks are kept)", file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    # lance warns on every fork once imported; DataLoader workers only touch in-memory Arrow tables, never lance.
    warnings.filterwarnings("ignore", message="lance is not fork-safe")
    args: argparse.Namespace | None = None
    try:
        with interrupts.handled():
            args = build_parser().parse_args(argv)
            code = args.func(args)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # noqa: BLE001 - one clear line unless --debug
        if interrupts.received():  # the interrupt came back as a worker's death or a library's own error
            return _interrupted()
        if args is None or args.debug or os.environ.get("LOADERBENCH_DEBUG"):
            raise
        known = (ConfigError, FileNotFoundError, ValueError, RuntimeError, OSError, ImportError)
        prefix = "" if isinstance(exc, known) else f"{type(exc).__name__}: "
        print(f"loaderbench: error: {prefix}{error_line(exc)}", file=sys.stderr)
        return 2
    # An interrupt that some library swallowed still means the run did not finish as asked.
    return _interrupted() if interrupts.received() else code


if __name__ == "__main__":
    sys.exit(main())
