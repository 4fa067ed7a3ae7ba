"""Track 3: data loading feeding ``SimpleEmbeddingModel``, and how much of each step is spent waiting for data.

Volumes (``[B, C, Z, H, W]`` batches) feed ``SimpleEmbeddingModel3d`` instead, the same layers in 3-D; each row's
``model`` says which ran.

Each step is ``next(it)`` (the data wait) then the model's forward pass under ``torch.no_grad()`` (as the seed), or
with ``train = true`` a forward + MSE loss + backward + SGD step (the compute). The seed's defaults: its dataset with
torchvision's ``Normalize`` (``transform``), ``shuffle = true``, ``num_workers = 2``. Both are timed with
``perf_counter_ns``; the first ``warmup_steps`` are dropped. The DataLoader is iterated again when the steps outrun
one epoch (that restart counts as data wait, as it would in training).

Arrow-backed formats also get a ``native`` row: the native loader (``num_threads`` = the largest of
``dataloader.native_threads``, ``num_workers`` 0, the same shuffle and normalisation) feeds the same model; its data
wait is its own ``next()``. Formats with block reads also get the out-of-core rows (``streaming.loaders``):
``native_streaming`` (same threads, shuffle and normalisation) and ``block_torch`` (``num_workers`` workers, each a
block per step, the transform applied per batch), per page-cache state.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from loaderbench import interrupts
from loaderbench.loaders.seed import make_dataset
from loaderbench.loaders.transforms import make_transform
from loaderbench.model import embedding_model_class
from loaderbench.stats import ns_to_ms, per_second
from loaderbench.tracks.common import (
    BLOCK_TORCH,
    NATIVE,
    STREAMING,
    Target,
    TrackContext,
    batch_len,
    common_columns,
    has_block_reads,
    iter_targets,
    make_block_torch_loader,
    make_native_loader,
    make_streaming_loader,
    page_cache_states,
    runs_native,
    set_page_cache,
    shutdown_loader,
    timed_construct,
)
from loaderbench.tracks.dataloader import dataset_loader_name, make_loader, streaming_columns
from loaderbench.tracks.getitem import native_transform_options

NAME = "end_to_end"


def _compute_step(model: nn.Module, batch: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> None:
    """Inference (``optimizer is None``) or one training step on ``batch``."""
    if optimizer is None:
        with torch.no_grad():
            model(batch)
        return
    embeddings = model(batch)
    loss = nn.functional.mse_loss(embeddings, torch.zeros_like(embeddings))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def run_loop(loader, model: nn.Module, optimizer, total_steps: int) -> tuple[list[int], list[int], list[int]]:
    """``total_steps`` steps over ``loader`` (restarting it at the end of an epoch): data-wait ns, compute ns,
    images per step."""
    wait_ns: list[int] = []
    compute_ns: list[int] = []
    images: list[int] = []
    with interrupts.deferred():  # a DataLoader stopped while starting its workers cannot shut them down
        it = iter(loader)
    try:
        for _ in range(total_steps):
            start = time.perf_counter_ns()
            try:
                batch = next(it)
            except StopIteration:
                with interrupts.deferred():
                    it = iter(loader)
                batch = next(it)
            got = time.perf_counter_ns()
            _compute_step(model, batch, optimizer)
            done = time.perf_counter_ns()
            wait_ns.append(got - start)
            compute_ns.append(done - got)
            images.append(batch_len(batch))
            del batch
    finally:
        shutdown_loader(loader, it)
        del it
    return wait_ns, compute_ns, images


def native_threads(ctx: TrackContext) -> int:
    """The native row's thread count: the most Track 2 measures (1 when it measures none)."""
    return max(ctx.config.dataloader.native_threads, default=1)


def _model_and_optimizer(target: Target, train: bool) -> tuple[nn.Module, torch.optim.Optimizer | None]:
    """The same seeded model for every row of a dataset (its 3-D counterpart for volumes): eval mode for inference,
    SGD for training."""
    torch.manual_seed(0)
    model = embedding_model_class(target.dataset.is_volume)(in_channels=target.dataset.channels)
    if not train:
        model.eval()
        return model, None
    model.train()
    return model, torch.optim.SGD(model.parameters(), lr=0.01)


def _row(
    ctx: TrackContext, target: Target, loader_name: str, repeat: int, loop: tuple[list[int], list[int], list[int]],
    num_workers: int, num_threads: int | None, setup_s: float,
) -> dict[str, Any]:  # fmt: skip
    cfg = ctx.config.end_to_end
    wait_ns, compute_ns, images = loop
    wait = np.asarray(wait_ns[cfg.warmup_steps :], dtype=np.int64)
    compute = np.asarray(compute_ns[cfg.warmup_steps :], dtype=np.int64)
    step = wait + compute
    timed_images = int(sum(images[cfg.warmup_steps :]))
    return {
        **common_columns(target, loader_name, repeat),
        "model": embedding_model_class(target.dataset.is_volume).__name__,
        "mode": "train" if cfg.train else "inference",
        "batch_size": cfg.batch_size,
        "num_workers": num_workers,
        "num_threads": num_threads,
        "shuffle": cfg.shuffle,
        "transform": cfg.transform,
        "warmup_steps": cfg.warmup_steps,
        "steps": int(step.size),
        "images": timed_images,
        "step_p50_ms": float(np.percentile(ns_to_ms(step), 50)),
        "step_p95_ms": float(np.percentile(ns_to_ms(step), 95)),
        "step_mean_ms": float(ns_to_ms(step).mean()),
        "data_wait_p50_ms": float(np.percentile(ns_to_ms(wait), 50)),
        "data_wait_p95_ms": float(np.percentile(ns_to_ms(wait), 95)),
        "compute_p50_ms": float(np.percentile(ns_to_ms(compute), 50)),
        "data_wait_fraction": float(wait.sum() / step.sum()),
        "images_per_s": per_second(timed_images, float(step.sum())),
        "setup_s": setup_s,
    }


def _run_native(ctx: TrackContext, target: Target, rows: list[dict[str, Any]]) -> None:
    cfg = ctx.config.end_to_end
    threads = native_threads(ctx)
    ctx.progress(
        f"[{NAME}] {target.dataset.name} {target.label} loader={NATIVE} batch_size={cfg.batch_size} "
        f"num_threads={threads} ({cfg.repeats} x {cfg.steps} steps)"
    )
    loader, setup_s = timed_construct(
        make_native_loader, target, batch_size=cfg.batch_size, shuffle=cfg.shuffle, num_threads=threads,
        seed=ctx.config.data.seed, **native_transform_options(cfg.transform),
    )  # fmt: skip
    for repeat in range(cfg.repeats):
        model, optimizer = _model_and_optimizer(target, cfg.train)
        loop = run_loop(loader, model, optimizer, cfg.warmup_steps + cfg.steps)
        rows.append(_row(ctx, target, NATIVE, repeat, loop, 0, threads, setup_s))
    del loader


def run(ctx: TrackContext) -> pd.DataFrame:
    """One row per format x loader x repeat (batch size and worker count come from ``end_to_end`` in the config)."""
    cfg = ctx.config.end_to_end
    mode = "train" if cfg.train else "inference"
    rows: list[dict[str, Any]] = []
    for target in iter_targets(ctx, f"track {NAME}"):
        loader_name = dataset_loader_name(target.kind)
        ctx.progress(
            f"[{NAME}] {target.dataset.name} {target.label} loader={loader_name} mode={mode} "
            f"batch_size={cfg.batch_size} num_workers={cfg.num_workers} shuffle={cfg.shuffle} "
            f"transform={cfg.transform} ({cfg.repeats} x {cfg.steps} steps)"
        )
        dataset, setup_s = timed_construct(
            make_dataset, target.module, target.path, loader_name,
            transform=make_transform(cfg.transform, volume=target.dataset.is_volume), column=target.column,
        )
        for repeat in range(cfg.repeats):
            model, optimizer = _model_and_optimizer(target, cfg.train)  # also seeds torch
            loader = make_loader(dataset, cfg.batch_size, cfg.num_workers, shuffle=cfg.shuffle)
            loop = run_loop(loader, model, optimizer, cfg.warmup_steps + cfg.steps)
            del loader
            rows.append(_row(ctx, target, loader_name, repeat, loop, cfg.num_workers, None, setup_s))
        del dataset
        if runs_native(ctx, target, NAME):
            _run_native(ctx, target, rows)
        if has_block_reads(target) and ctx.config.streaming.loaders:
            _run_streaming(ctx, target, rows)
    return pd.DataFrame(rows)


def _run_streaming(ctx: TrackContext, target: Target, rows: list[dict[str, Any]]) -> None:
    cfg, st = ctx.config.end_to_end, ctx.config.streaming
    threads = native_threads(ctx)
    configs = []
    if STREAMING in st.loaders and runs_native(ctx, target, NAME):
        configs.append((STREAMING, 0, threads))
    if BLOCK_TORCH in st.loaders:
        configs.append((BLOCK_TORCH, cfg.num_workers, None))
    for loader_name, num_workers, num_threads in configs:
        for state in page_cache_states(ctx):
            ctx.progress(
                f"[{NAME}] {target.dataset.name} {target.label} loader={loader_name} batch_size={cfg.batch_size} "
                f"page_cache={state} ({cfg.repeats} x {cfg.steps} steps)"
            )
            if loader_name == STREAMING:
                loader, setup_s = timed_construct(
                    make_streaming_loader, ctx, target, batch_size=cfg.batch_size, shuffle=cfg.shuffle,
                    num_threads=threads, seed=ctx.config.data.seed, **native_transform_options(cfg.transform),
                )  # fmt: skip
            else:
                loader, setup_s = timed_construct(
                    make_block_torch_loader, ctx, target, batch_size=cfg.batch_size, num_workers=num_workers,
                    shuffle=cfg.shuffle, transform=cfg.transform,
                )  # fmt: skip
            for repeat in range(cfg.repeats):
                model, optimizer = _model_and_optimizer(target, cfg.train)
                cache = set_page_cache(target, state, loader)
                loop = run_loop(loader, model, optimizer, cfg.warmup_steps + cfg.steps)
                rows.append({**_row(ctx, target, loader_name, repeat, loop, num_workers, num_threads, setup_s),
                             **cache, **streaming_columns(ctx)})
            del loader
