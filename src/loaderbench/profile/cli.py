"""The ``loaderbench profile`` sub-command: ``register(subparsers)`` adds it; its function returns an exit code.

Errors are raised as exceptions with one clear message (``ProfileError`` is a ``ValueError``); ``main`` prints them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from loaderbench.profile import MODELS
from loaderbench.profile.decoders import DECODERS, FORMATS

_DEFAULTS_NOTE = "default: about 1-2 minutes on 2 cores; --quick: a smoke-test size"


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"image size must look like 640 or 640x480, got {text!r}") from exc
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"image size must look like 640 or 640x480, got {text!r}")
    return parts[0], parts[1]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``profile`` to ``subparsers`` (from ``parser.add_subparsers``); returns the new parser."""
    parser = subparsers.add_parser(
        "profile",
        help="where the time of an image pipeline goes: stage shares, Amdahl ceilings, disk vs RAM, AU",
        description="Generate a realistic image pipeline (encoded images + pre-processed .npz maps), time every stage "
        "(read, decode, transform, map_load, collate, forward) with num_workers=0 and with workers, and report each "
        "stage's share of the step with its Amdahl ceiling; run the A/B experiments (maps from disk vs pre-loaded "
        "in RAM, PIL vs turbo JPEG decoding, num_workers x prefetch_factor) with predicted vs observed speedups; "
        "and measure accelerator utilisation with an emulated compute time per step. Writes profile_*.parquet, "
        f"plots/profile.png and profile_summary.json into --out ({_DEFAULTS_NOTE}).",
    )
    parser.add_argument(
        "--out", metavar="DIR", default="results",
        help="results directory, shared with `loaderbench run` (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default="data/profile",
        help="where the generated images and maps are cached (default: %(default)s)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke-test size: 24 images of 320x320 resized to 112, batch 4, 4 steps"
    )
    parser.add_argument("--n-images", type=int, metavar="N", help="images to generate (default 64)")
    parser.add_argument(
        "--size", type=_size, metavar="HxW", help="generated image size, e.g. 640 or 640x480 (default 640x640)"
    )
    parser.add_argument("--resize", type=int, metavar="PX", help="transform output size, square (default 224)")
    parser.add_argument("--format", choices=FORMATS, dest="image_format", help="image encoding (default jpeg)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="batch size (default 8)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        metavar="N",
        help="num_workers values for the sweep; 0 is always measured (default: 0 2)",
    )
    parser.add_argument(
        "--prefetch", type=int, nargs="+", metavar="N", help="prefetch_factor values for the sweep (default: 2 4)"
    )
    parser.add_argument(
        "--compute-ms", type=float, metavar="MS", help="emulated accelerator compute time per step for AU (default 50)"
    )
    parser.add_argument(
        "--au-threshold",
        type=float,
        metavar="PCT",
        dest="au_threshold_pct",
        help="AU percentage a loader setting must reach (default 90)",
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        help="small: Track 3's SimpleEmbeddingModel; large: a conv net with about 4x its compute (default small)",
    )
    parser.add_argument(
        "--decoder", choices=DECODERS, help="decoder of the baseline (default pil); the other one is the decode A/B"
    )
    parser.add_argument(
        "--steps", type=int, metavar="N", help="timed steps per repeat, after 1 warm-up step (default 5)"
    )
    parser.add_argument("--repeats", type=int, metavar="N", help="repeats of every loop (default 3)")
    parser.add_argument("--seed", type=int, help="seed for the data, sample order and flips (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=cmd_profile)
    return parser


_OVERRIDES = ("n_images", "resize", "image_format", "batch_size", "compute_ms", "au_threshold_pct", "model",
              "decoder", "steps", "repeats", "seed")  # fmt: skip


def options_from_args(args: argparse.Namespace) -> Any:
    """``ProfileOptions`` from the parsed flags: the default or ``--quick`` size, then the flags given."""
    from loaderbench.profile.runner import ProfileOptions  # noqa: PLC0415 - keeps ``--help`` free of torch

    overrides: dict[str, Any] = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k, None) is not None}
    overrides.update(out=Path(args.out), data_dir=Path(args.data_dir))
    if args.size is not None:
        overrides.update(height=args.size[0], width=args.size[1])
    if args.workers is not None:
        overrides["workers"] = tuple(args.workers)
    if args.prefetch is not None:
        overrides["prefetch"] = tuple(args.prefetch)
    return ProfileOptions.quick(**overrides) if args.quick else ProfileOptions(**overrides)


def cmd_profile(args: argparse.Namespace) -> int:
    """Run the profile, print the tables and recommendations, return 0."""
    from loaderbench.profile.output import terminal_text  # noqa: PLC0415
    from loaderbench.profile.runner import run_profile  # noqa: PLC0415
    from loaderbench.progress import Progress  # noqa: PLC0415
    from loaderbench.report import render_report  # noqa: PLC0415

    options = options_from_args(args)
    results = run_profile(options, Progress(quiet=args.quiet))
    print(terminal_text(results))
    html = render_report(results.out_dir)["html"]
    print(
        f"\nResults: {results.out_dir}/ (profile_stages.parquet, profile_ab.parquet, profile_au.parquet, "
        f"plots/profile.png, profile_summary.json; section in {html.name}) in {results.seconds:.0f}s"
    )
    return 0
