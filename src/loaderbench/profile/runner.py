"""``run_profile``: measure where the time of the image pipeline's steps goes, and run the seed's A/B experiments.

Loops (``repeats`` rounds, each running every loop once; ``warmup_steps`` dropped, a fresh DataLoader per repeat, the
same sample order in all):

- *model* loops — batches feed the model's forward pass: the serial baseline (``num_workers=0``, maps from disk, the
  chosen decoder), maps pre-loaded in RAM, the other decoder, the same two with the most workers, and the model on
  cached batches (the head-room: a loader that costs nothing);
- *sleep* loops — an emulated accelerator (``time.sleep(compute_ms)`` per step, as DLIO / MLPerf Storage do) over
  the ``num_workers`` x ``prefetch_factor`` sweep, plus cached batches; accelerator utilisation
  AU = compute time / wall time over the steps after the first.

Memory: the process tree's peak USS/PSS (``PeakMemorySampler``, every loop alike) and, with workers, the mean
worker's USS/PSS read after the timed steps (before the workers stop). The tables, plot, recommendations and
``profile_summary.json`` are written by :mod:`loaderbench.profile.output`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
import torch
from torch import nn
from torch.utils.data import DataLoader

from loaderbench.memory import PeakMemorySampler, process_tree_memory_mb
from loaderbench.profile.decoders import DECODERS, decoder_library, decoder_status
from loaderbench.profile.output import ProfileResults, write_outputs
from loaderbench.profile.pipeline import (
    PipelineData,
    PipelineDataset,
    ensure_pipeline_data,
    make_model,
)
from loaderbench.profile.records import (
    COMPUTE,
    FORWARD,
    MODEL,
    RAM,
    SLEEP,
    LoopResult,
    LoopSpec,
    ProfileOptions,
    ProfileRun,
    RepeatResult,
)
from loaderbench.profile.stages import (
    ProfileError,
    StageTimer,
    TimedBatch,
    accelerator_utilisation,
)
from loaderbench.progress import Progress
from loaderbench.progress import task as progress_task
from loaderbench.stats import per_second
from loaderbench.tracks.common import shutdown_loader

#: seconds between memory readings of the process tree during a loop
MEMORY_INTERVAL_S = 0.5


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def sample_order(n_images: int, total: int, seed: int) -> list[int]:
    """``total`` indices: a seeded permutation of the images, repeated as often as needed (no epoch restart)."""
    order = np.random.default_rng(seed).permutation(n_images)
    return [int(order[i % n_images]) for i in range(total)]


def collect_batches(dataset: PipelineDataset, indices: list[int], batch_size: int) -> list[TimedBatch]:
    """The batches of ``indices`` made once, without timings: the head-room loops replay them from memory."""
    timer = StageTimer()
    loader = DataLoader(dataset, batch_size=batch_size, sampler=indices, num_workers=0, collate_fn=timer.collate)
    return [TimedBatch(b.data, [], None, None, b.size) for b in loader]


def _compute_step(spec: LoopSpec, model: nn.Module, timer: StageTimer, batch: Any, compute_s: float) -> None:
    if spec.compute == MODEL:
        with timer.stage(FORWARD), torch.inference_mode():
            model(batch["image"])
    else:
        with timer.stage(COMPUTE):
            time.sleep(compute_s)


def worker_memory_mb(iterator: Any) -> tuple[float, float]:
    """Mean (USS, PSS) in MiB of a DataLoader iterator's live worker processes; NaN without workers.

    Read once, after the timed steps and before the workers stop (``_workers`` is the iterator's private list).
    """
    readings = []
    for process in getattr(iterator, "_workers", None) or []:
        if process.pid is None or not process.is_alive():
            continue
        try:
            reading = process_tree_memory_mb(process.pid)
        except psutil.Error:
            continue
        if reading != (0.0, 0.0):  # (0, 0): exited between the check and the read
            readings.append(reading)
    if not readings:
        return math.nan, math.nan
    uss, pss = np.mean(np.asarray(readings), axis=0)
    return float(uss), float(pss)


def run_repeat(
    spec: LoopSpec, options: ProfileOptions, data: PipelineData, model: nn.Module, indices: list[int],
    cached: list[TimedBatch] | None = None,
) -> RepeatResult:  # fmt: skip
    """One repeat of ``spec``: a fresh dataset (pre-loaded when ``maps == "ram"``) and DataLoader, timed steps."""
    timer = StageTimer()
    extra: dict[str, float] = {}
    source: Any
    loader: DataLoader | None = None
    startup_ns = 0
    if spec.cached:
        if cached is None:
            raise ProfileError("a cached-batch loop needs the cached batches")
        source = iter(cached)
    else:
        dataset = PipelineDataset(data, timer, decoder=spec.decoder, out_size=options.resize, seed=options.seed)
        if spec.maps == RAM:
            preload_s, cache_mb, preload_uss_mb = dataset.preload_maps()
            extra.update(preload_s=preload_s, cache_mb=cache_mb, preload_uss_mb=preload_uss_mb)
        loader = DataLoader(
            dataset, batch_size=options.batch_size, sampler=indices, num_workers=spec.num_workers,
            prefetch_factor=spec.prefetch_factor if spec.num_workers else None, collate_fn=timer.collate,
            persistent_workers=False, pin_memory=False,
        )  # fmt: skip
        started = time.perf_counter_ns()
        source = iter(loader)  # starts the workers; counted in the first step's time below
        startup_ns = time.perf_counter_ns() - started
    compute_s = options.compute_ms / 1000.0
    last = options.warmup_steps + options.steps - 1
    # A long sampling interval: each reading walks every process's page tables, which would steal CPU from the
    # timed stages (a few ms per process on 2 cores).
    with PeakMemorySampler(interval_s=MEMORY_INTERVAL_S) as tree:
        try:
            for step, batch in enumerate(timer.iterate(source)):
                _compute_step(spec, model, timer, batch, compute_s)
                if step == last:
                    break  # before next() ends the epoch, so the workers are still there to be measured
            extra["worker_uss_mb"], extra["worker_pss_mb"] = worker_memory_mb(source)
        finally:
            shutdown_loader(loader, source)
    timed = timer.steps[options.warmup_steps :]
    result = timer.breakdown(skip_first=options.warmup_steps)
    au = accelerator_utilisation(timer.steps, COMPUTE, options.warmup_steps) if spec.compute == SLEEP else math.nan
    return RepeatResult(
        breakdown=result,
        steps=timed,
        first_step_ms=(startup_ns + sum(s.step_ns for s in timer.steps[: options.warmup_steps])) / 1e6,
        samples_per_s=per_second(result.samples, result.step_total_ms * 1e6),
        au=au,
        peak_uss_mb=tree.peak_mb,
        peak_pss_mb=tree.peak_pss_mb,
        **extra,
    )


def plan_loops(options: ProfileOptions, decoders: dict[str, dict[str, Any]], main_decoder: str) -> dict[str, LoopSpec]:
    """The loops to run, keyed by role: ``base``, ``ram``, ``decoder_alt``, ``par_base``, ``par_ram``,
    ``model_cached``, ``sweep:<w>:<p>``, ``sleep_cached``."""
    alt = next(d for d in DECODERS if d != main_decoder)
    most = max(options.workers)
    first_prefetch = options.prefetch[0]
    loops = {
        "base": LoopSpec(f"w0 disk {main_decoder}", MODEL, decoder=main_decoder),
        "ram": LoopSpec(f"w0 ram {main_decoder}", MODEL, maps=RAM, decoder=main_decoder),
    }
    if decoders[alt]["available"]:
        loops["decoder_alt"] = LoopSpec(f"w0 disk {alt}", MODEL, decoder=alt)
    if most > 0:
        loops["par_base"] = LoopSpec(
            f"w{most} p{first_prefetch} disk {main_decoder}", MODEL, most, first_prefetch, decoder=main_decoder
        )
        loops["par_ram"] = LoopSpec(
            f"w{most} p{first_prefetch} ram {main_decoder}", MODEL, most, first_prefetch, maps=RAM, decoder=main_decoder
        )
    loops["model_cached"] = LoopSpec("cached batches", MODEL, cached=True, maps="-", decoder="-")
    for workers in options.workers:
        for prefetch in options.prefetch if workers else (None,):
            label = f"w{workers}" + (f" p{prefetch}" if prefetch else "")
            loops[f"sweep:{workers}:{prefetch}"] = LoopSpec(label, SLEEP, workers, prefetch, decoder=main_decoder)
    loops["sleep_cached"] = LoopSpec("cached batches", SLEEP, cached=True, maps="-", decoder="-")
    return loops


def run_profile(options: ProfileOptions, progress: Callable[[str], None] | None = None) -> ProfileResults:
    """Measure (:func:`measure_profile`), then write every output into ``options.out`` and return the results:
    tables, recommendations, summary and file paths."""
    run = measure_profile(options, progress)
    return write_outputs(run, run.options.out, progress)


def measure_profile(options: ProfileOptions, progress: Callable[[str], None] | None = None) -> ProfileRun:
    """Generate (or reuse) the pipeline data, run every loop of :func:`plan_loops`, and return the measurements."""
    start = time.perf_counter()
    progress = progress or Progress(quiet=True)
    options, notes = options.validated()
    spec = options.spec()
    progress(
        f"[profile] data: {spec.n_images} {spec.image_format.upper()} images {spec.height}x{spec.width} + maps "
        f"{'x'.join(map(str, spec.map_shape))} under {options.data_dir}"
    )
    data = ensure_pipeline_data(spec, options.data_dir)
    decoders = {}
    for name in DECODERS:
        reason = decoder_status(name, options.image_format)
        decoders[name] = {"available": reason is None, "reason": reason, "library": decoder_library(name)}
    main_decoder = options.decoder
    if not decoders[main_decoder]["available"]:
        notes.append(f"decoder {main_decoder} unavailable ({decoders[main_decoder]['reason']}): PIL used instead")
        main_decoder = "pil"
    for name, info in decoders.items():
        if not info["available"]:
            progress(f"[profile] decoder {name} not measured: {info['reason']}")
    for note in notes:
        progress(f"[profile] note: {note}")

    model = make_model(options.model)
    total_steps = options.warmup_steps + options.steps
    indices = sample_order(len(data), total_steps * options.batch_size, options.seed)
    loops = plan_loops(options, decoders, main_decoder)
    cache_ds = PipelineDataset(data, StageTimer(), decoder=main_decoder, out_size=options.resize, seed=options.seed)
    cached = collect_batches(cache_ds, indices, options.batch_size)
    del cache_ds
    repeats: dict[str, list[RepeatResult]] = {role: [] for role in loops}
    seconds = dict.fromkeys(loops, 0.0)
    # Round-robin: repeat r of every loop runs before repeat r + 1 of any, so a change in the machine's load hits
    # all configurations alike and the A/B ratios are taken within one round.
    with progress_task(progress, "[profile] loops", options.repeats * len(loops), "loops") as done:
        for round_index in range(options.repeats):
            for index, (role, loop) in enumerate(loops.items(), start=1):
                what = f"{options.model} model" if loop.compute == MODEL else f"sleep {options.compute_ms:g} ms"
                progress(
                    f"[profile] round {round_index + 1}/{options.repeats}, {index}/{len(loops)}: {loop.label} -> "
                    f"{what} ({options.steps} steps of {options.batch_size})"
                )
                loop_start = time.perf_counter()
                repeats[role].append(run_repeat(loop, options, data, model, indices, cached))
                seconds[role] += time.perf_counter() - loop_start
                done.advance()
    results = {role: LoopResult(loop, repeats[role], seconds[role]) for role, loop in loops.items()}
    return ProfileRun(
        options=options,
        data=data,
        loops=results,
        decoders=decoders,
        roles={role: loop.label for role, loop in loops.items()},
        notes=notes,
        usable_cores=_usable_cores(),
        seconds=time.perf_counter() - start,
    )
