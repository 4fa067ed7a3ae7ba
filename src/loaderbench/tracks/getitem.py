"""Track 1: the latency of one ``Dataset.__getitem__`` call, per format, loader, access pattern and transform.

The dataset is built once per format x loader (its construction time, e.g. the pre-load, is ``setup_s``); each
repeat warms up on the first ``warmup`` indices, then times every ``dataset[i]`` on its own with
``perf_counter_ns``.
"""

from __future__ import annotations

import time

import pandas as pd

from loaderbench.loaders.seed import loaders_for, make_dataset
from loaderbench.loaders.transforms import make_transform
from loaderbench.stats import latency_stats, per_second
from loaderbench.tracks.common import TrackContext, access_indices, common_columns, iter_targets, timed_construct

NAME = "getitem"


def run(ctx: TrackContext) -> pd.DataFrame:
    """One row per format x loader x access x transform x repeat."""
    cfg = ctx.config.getitem
    seed = ctx.config.data.seed
    rows = []
    for target in iter_targets(ctx):
        loaders = cfg.loaders if target.kind == "table" else list(loaders_for(target.module))
        for loader in loaders:
            ctx.progress(f"[{NAME}] {target.dataset.name} {target.label} loader={loader}: building dataset")
            dataset, setup_s = timed_construct(make_dataset, target.module, target.path, loader)
            for access in cfg.access:
                indices = access_indices(access, len(dataset), cfg.samples, seed).tolist()
                warm = [indices[i % len(indices)] for i in range(cfg.warmup)]
                for transform_name in cfg.transforms:
                    ctx.progress(
                        f"[{NAME}] {target.dataset.name} {target.label} loader={loader} access={access} "
                        f"transform={transform_name} ({cfg.repeats} x {cfg.samples} samples)"
                    )
                    for repeat in range(cfg.repeats):
                        # a fresh transform per repeat: every repeat draws the same augmentations
                        dataset.transform = make_transform(transform_name, crop_size=cfg.crop_size, seed=seed)
                        for idx in warm:
                            dataset[idx]
                        times = []
                        for idx in indices:
                            start = time.perf_counter_ns()
                            dataset[idx]
                            times.append(time.perf_counter_ns() - start)
                        rows.append(
                            {
                                **common_columns(target, loader, repeat),
                                "access": access,
                                "transform": transform_name,
                                "samples": len(times),
                                "warmup": len(warm),
                                **latency_stats(times),
                                "samples_per_s": per_second(len(times), sum(times)),
                                "setup_s": setup_s,
                            }
                        )
            dataset.transform = None
            del dataset
    return pd.DataFrame(rows)
