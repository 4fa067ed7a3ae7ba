#!/usr/bin/env python
"""Bar chart of the native image loader's goal ratios (p1 per peer workload, p2-p4, p6) against their targets, as a PNG.

Reads the JSON that ``native_image_loader.py --out DIR`` saved, or any file whose last non-empty line is that JSON
(e.g. the captured stdout of a run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LABELS = {
    "p1": "p1 throughput\nnative / best peer",
    "p1_vs_seed_dataloader": "throughput\nnative / seed DataLoader",
    "p1_zstd_chunks_100x100": "zstd chunks\nnative / best peer",
    "p1_uncompressed_1000x1000": "1000x1000\nnative / best peer",
    "p2": "p2 bytes/s\nnative / memcpy",
    "p3": "p3 time to first batch\npre-loaded / native",
    "p4": "p4 __getitem__ p50\npre-loaded / native",
    "p6": "p6 peak USS\nDataLoader / native",
}


def load_result(path: Path) -> dict[str, Any]:
    """The benchmark's JSON object: the whole file, or its last non-empty line."""
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise ValueError(f"{path}: empty file") from None
        return json.loads(lines[-1])


def plot(result: dict[str, Any], out: Path) -> Path:
    import matplotlib  # noqa: PLC0415 - only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    targets = result["targets"]
    keys = [k for k in LABELS if k in targets and targets[k]["value"] is not None]
    values = [float(targets[k]["value"]) for k in keys]
    goals = [float(targets[k]["target"]) for k in keys]
    met = [bool(targets[k]["met"]) for k in keys]

    fig, ax = plt.subplots(figsize=(9, 4.8))
    xs = range(len(keys))
    ax.bar(xs, values, color=["#2a9d55" if m else "#d1495b" for m in met], width=0.6, label="measured")
    for x, goal in zip(xs, goals, strict=True):
        ax.hlines(goal, x - 0.4, x + 0.4, colors="black", linestyles="--", linewidth=1.5)
    ax.plot([], [], "k--", label="target")
    for x, value in zip(xs, values, strict=True):
        ax.annotate(
            f"{value:.3g}", (x, value), ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points"
        )
    ax.set_xticks(list(xs), [LABELS[k] for k in keys], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ratio (log scale; higher is better)")
    hardware = result.get("hardware", {})
    config = result.get("config", {})
    ax.set_title(
        f"native image loader vs the seed ({result.get('mode', '?')} mode, N={config.get('n', '?')}, "
        f"p3 N={config.get('n_ttfb', '?')}; {hardware.get('usable_cores', '?')} cores)",
        fontsize=10,
    )
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Plot the native image loader's goal ratios against their targets.")
    parser.add_argument("json", type=Path, help="JSON saved by native_image_loader.py (or its captured stdout)")
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: the JSON's path with .png)")
    args = parser.parse_args(argv)
    out = plot(load_result(args.json), args.out or args.json.with_suffix(".png"))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
