"""``--tracks peers``: the loaders a PyTorch user could pick instead, side by side on each image dataset.

Every registered peer (``loaderbench.loaders.peers``: the native loader, the seed's DataLoader, the vectorised torch
baseline an Arrow expert writes, Hugging Face ``datasets``, ``lance.torch``, LitData, WebDataset, SPDL) runs each of
its variants in a fresh process on the dataset's Parquet file (and its Lance copy, where the run wrote one), with the
same batch size, the same shuffle and the same output (float32 ``[B, C, H, W]`` in [0, 1]). One row per peer x
variant x dataset x timed epoch: samples/s (medians and spread are over epochs), time to first batch, peak memory of
the whole process tree, the lines of user code the peer needs, and ``fastest`` on the quickest peer of each dataset.
A peer that cannot run here is a row with ``status`` "unavailable" and its reason; one that fails, a row with "error".
Each configured page-cache state (``streaming.page_cache``, ``--cold``) is a workload of its own: ``cold`` evicts the
files every peer reads before its build and before each timed epoch, runs the native streaming loader too, and
gives the variants that hold the whole dataset in memory a "skipped" row saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.config import ConfigError
from loaderbench.tracks.common import Target, TrackContext, common_columns, iter_targets, page_cache_states

NAME = "peers"
#: the format whose file every peer reads (the Lance copy, where there is one, is lance_torch's)
SOURCE_FORMAT = "parquet"


def peer_names(requested: list[str]) -> list[str]:
    """The configured peers (``[]``: every registered one), checked against the registry."""
    from loaderbench.loaders.peers import IMAGE_PEERS  # noqa: PLC0415 - the registry, not the peers' libraries

    unknown = [name for name in requested if name not in IMAGE_PEERS]
    if unknown:
        raise ConfigError(f"peers.names: unknown peer(s) {', '.join(unknown)} (choose from {', '.join(IMAGE_PEERS)})")
    return list(requested or IMAGE_PEERS)


def _workload(target: Target, lance: Path | None, ctx: TrackContext, page_cache: str) -> Any:
    from loaderbench.loaders.peers.workload import ImageWorkload  # noqa: PLC0415

    ds, p = target.dataset, ctx.config.peers
    return ImageWorkload(
        name=f"{ds.name}:{SOURCE_FORMAT}", parquet=str(target.path), lance=str(lance) if lance else None,
        n=ds.n_images, channels=ds.channels, height=ds.height, width=ds.width, dtype=ds.dtype,
        batch_size=min(p.batch_size, ds.n_images), shuffle=p.shuffle, seed=ctx.config.data.seed, epochs=p.epochs,
        workdir=str(Path(ds.root) / "peers"), page_cache=page_cache,
    )


def _rows(target: Target, result: dict[str, Any], workload: Any) -> list[dict[str, Any]]:
    """One row per timed epoch (``repeat``), so that medians and spread come out as in every other track."""
    ttfb = result.get("ttfb_s")
    base = {
        "variant": result.get("variant") or "",
        "workload": workload.name,
        "page_cache": workload.page_cache,
        "batch_size": workload.batch_size,
        "epochs": workload.epochs,
        "shuffle": workload.shuffle,
        "status": result.get("status", "error"),
        "reason": result.get("reason", ""),
        "first_batch_ms": ttfb * 1000.0 if ttfb is not None else None,
        "prepare_s": result.get("prepare_s"),
        "peak_uss_mb": result.get("peak_uss_mb"),
        "peak_pss_mb": result.get("peak_pss_mb"),
        "user_code_lines": result.get("user_code_lines"),
        "shuffle_note": result.get("shuffle_note", ""),
        "settings": json.dumps(result.get("settings") or {}, sort_keys=True),
        "versions": json.dumps(result.get("versions") or {}, sort_keys=True),
    }
    per_epoch = [workload.n / s for s in result.get("epoch_s") or []] or [result.get("samples_per_s")]
    return [{**common_columns(target, result["peer"], epoch), **base, "samples_per_s": rate}
            for epoch, rate in enumerate(per_epoch)]


def mark_fastest(frame: pd.DataFrame) -> pd.DataFrame:
    """``fastest`` is True on the rows of the configuration (peer x variant) with the highest median samples/s of
    each dataset and page-cache state, among those that ran."""
    frame = frame.copy()
    frame["fastest"] = False
    if "page_cache" not in frame.columns:
        frame["page_cache"] = "warm"
    ok = frame[(frame["status"] == "ok") & frame["samples_per_s"].notna()]
    if ok.empty:
        return frame
    group = ["dataset", "page_cache"]
    rates = ok.groupby([*group, "loader", "variant"])["samples_per_s"].median().reset_index()
    best = rates.loc[rates.groupby(group)["samples_per_s"].idxmax()]
    for _, row in best.iterrows():
        mine = (frame["dataset"] == row["dataset"]) & (frame["page_cache"] == row["page_cache"]) & (
            frame["loader"] == row["loader"]) & (frame["variant"] == row["variant"])
        frame.loc[mine, "fastest"] = True
    return frame


def run(ctx: TrackContext) -> pd.DataFrame:
    """One row per peer x variant x image dataset (each dataset's Parquet file), every peer in a fresh process."""
    from loaderbench.loaders.peers import peer_module  # noqa: PLC0415
    from loaderbench.loaders.peers.driver import run_peer  # noqa: PLC0415

    names = peer_names(ctx.config.peers.names)
    rows: list[dict[str, Any]] = []
    for target in iter_targets(ctx, f"track {NAME}"):
        if target.format_name != SOURCE_FORMAT:
            continue
        if getattr(target.dataset, "depth", 1) > 1:  # the peers' modules build [B, C, H, W] pipelines
            ctx.progress(f"peers: {target.dataset.name}: volumes (Z stacks) are not run by the peers, only 2-D "
                         "images; skipped")
            continue
        lance = target.dataset.paths.get("lance")
        for state in page_cache_states(ctx):
            workload = _workload(target, Path(lance) if lance else None, ctx, state)
            for name in names:
                module = peer_module(name)
                reason = module.unavailable()
                variants = [None] if reason else list(module.variants(workload))
                for variant in variants:
                    label = f"{name}/{variant}" if variant else name
                    ctx.progress(f"peers: {label} on {workload.name} ({workload.n} images, batch "
                                 f"{workload.batch_size}, page cache {state})")
                    if reason:
                        result = {"peer": name, "variant": "", "status": "unavailable", "reason": reason}
                    else:
                        result = run_peer(name, variant, workload, timeout_s=ctx.config.peers.timeout_s)
                    if result.get("status") != "ok":
                        ctx.progress(f"peers: {label}: {result.get('status')}: {result.get('reason', '')}")
                    rows.extend(_rows(target, {**result, "peer": name}, workload))
    if not rows:
        ctx.progress(f"peers: no dataset in {SOURCE_FORMAT} (add it to formats)")
        return pd.DataFrame()
    return mark_fastest(pd.DataFrame(rows))
