"""From measurements to answers: the stage, A/B and AU tables, and plain recommendations.

Predictions use Amdahl's law on shares measured in the same run: a stage taking ``s`` of the step made ``k`` times
faster speeds the step up ``1 / ((1 - s) + s / k)``, at most ``1 / (1 - s)`` (the ceiling). With workers, the
stage's share is of the workers' time; the loader it speeds up only helps the part of the step spent waiting for
data, so the prediction is Amdahl on the data wait with the loader's own Amdahl speedup.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from loaderbench.profile.records import COMPUTE, MODEL, LoopResult, ProfileRun
from loaderbench.profile.stages import (
    DATA_WAIT,
    LOADER_OVERHEAD,
    OTHER,
    STEP,
    WORKER,
    ProfileError,
    amdahl_ceiling,
    amdahl_speedup,
)

#: an A/B gain below this is within run-to-run noise: not worth the change
MEANINGFUL_GAIN = 1.05
#: what would make each stage cheaper, for the recommendations
REMEDY = {
    "read": "faster storage or caching the files",
    "decode": "a faster decoder",
    "transform": "cheaper transforms",
    "map_load": "faster map loading",
    "collate": "a cheaper collate",
    "forward": "a faster model or accelerator",
    COMPUTE: "a faster accelerator",
    LOADER_OVERHEAD: "less DataLoader overhead",
    OTHER: "less work in the loop body",
    DATA_WAIT: "a faster loader",
}
#: the data-loading part of a step, as the workers sweep and head-room rows name it
DATA = "data loading"


def pct(share: float) -> str:
    """``0.413`` -> ``"41 %"`` (one decimal under 10 %)."""
    if share is None or not math.isfinite(share):
        return "-"
    value = share * 100
    return f"{value:.1f} %" if abs(value) < 10 else f"{value:.0f} %"


def times(factor: float) -> str:
    """A speedup as people read it: ``1.7×``, ``1.05×`` (two decimals below 1.2), ``-`` when unknown."""
    if factor is None or not math.isfinite(factor):
        return "∞×" if factor == math.inf else "-"
    if factor >= 10:
        return f"{factor:.0f}×"
    return f"{factor:.2f}×" if factor < 1.2 else f"{factor:.1f}×"


def _nanmedian(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else math.nan


def _nanmin(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.min()) if values.size else math.nan


def _nanmax(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.max()) if values.size else math.nan


def _config_columns(run: ProfileRun, loop: LoopResult) -> dict[str, Any]:
    spec, options = loop.spec, run.options
    return {
        "config": spec.label,
        "compute": f"{options.model} model" if spec.compute == MODEL else f"sleep {options.compute_ms:g} ms",
        "num_workers": spec.num_workers,
        "prefetch_factor": spec.prefetch_factor,
        "maps": spec.maps,
        "decoder": spec.decoder,
        "cached": spec.cached,
    }


def _data_columns(run: ProfileRun) -> dict[str, Any]:
    options = run.options
    return {
        "image_format": options.image_format,
        "image_size": f"{options.height}x{options.width}",
        "resize": options.resize,
        "n_images": options.n_images,
        "batch_size": options.batch_size,
        "steps": options.steps,
        "repeats": options.repeats,
    }


def stages_table(run: ProfileRun) -> pd.DataFrame:
    """One row per loop x scope x stage: per-sample p50/mean ms (all timed samples), per-batch ms, share (median
    across repeats, with min/max) and its Amdahl ceiling, plus the loop's step time, throughput and coverage."""
    rows = []
    for role, loop in run.loops.items():
        pooled = loop.pooled
        coverage = np.asarray([r.breakdown.coverage for r in loop.repeats])
        for stage in pooled.rows:
            shares = loop.shares(stage.stage, stage.scope)
            share = stage.share  # pooled over every timed step of every repeat: the shares add up to 1
            rows.append(
                {
                    "role": role,
                    **_config_columns(run, loop),
                    "mode": "parallel" if pooled.parallel else "serial",
                    "scope": stage.scope,
                    "stage": stage.stage,
                    "kind": stage.kind,
                    "per_sample_p50_ms": stage.per_sample_p50_ms,
                    "per_sample_mean_ms": stage.per_sample_mean_ms,
                    "per_batch_ms": stage.per_batch_ms,
                    "share": share,
                    "share_min": _nanmin(shares),
                    "share_max": _nanmax(shares),
                    "amdahl_ceiling": amdahl_ceiling(share) if math.isfinite(share) else math.nan,
                    "step_p50_ms": pooled.step_p50_ms,
                    "step_mean_ms": pooled.step_mean_ms,
                    "samples_per_s": loop.median("samples_per_s"),
                    "coverage": float(np.median(coverage)),
                    "coverage_min": float(coverage.min()),
                    **_data_columns(run),
                }
            )
    return pd.DataFrame(rows)


def _stage_mean_ms(loop: LoopResult, stage: str) -> float:
    scope = WORKER if loop.pooled.parallel else STEP
    try:
        return loop.pooled.row(stage, scope).per_sample_mean_ms
    except ProfileError:
        return math.nan


def _stage_share(loop: LoopResult, stage: str) -> float:
    scope = WORKER if loop.pooled.parallel else STEP
    try:
        return loop.pooled.row(stage, scope).share
    except ProfileError:
        return math.nan


def _observed(loop: LoopResult, baseline: LoopResult) -> tuple[float, float, float]:
    """Median, min and max across rounds of the speedup in samples/s (ratios within a round: same machine state)."""
    paired = loop.values("samples_per_s") / baseline.values("samples_per_s")
    return _nanmedian(paired), _nanmin(paired), _nanmax(paired)


def _with_preload(run: ProfileRun, loop: LoopResult, baseline: LoopResult) -> float:
    """Speedup over one epoch (every image once) counting the pre-load, as the seed timed it; median across rounds."""
    epoch = run.options.n_images
    variant_s = epoch / loop.values("samples_per_s") + np.nan_to_num(loop.values("preload_s"))
    base_s = epoch / baseline.values("samples_per_s") + np.nan_to_num(baseline.values("preload_s"))
    return _nanmedian(base_s / variant_s)


def _memory(loop: LoopResult) -> dict[str, float]:
    return {
        name: loop.median(name)
        for name in ("preload_s", "cache_mb", "preload_uss_mb", "peak_uss_mb", "peak_pss_mb", "worker_uss_mb",
                     "worker_pss_mb")
    }  # fmt: skip


def _ab_row(
    run: ProfileRun, experiment: str, variant: str, loop: LoopResult | None, baseline: LoopResult, **fields: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {"experiment": experiment, "variant": variant, "baseline_config": baseline.spec.label}
    if loop is None:
        return {**row, "available": False, "is_baseline": False, **fields}
    observed, low, high = _observed(loop, baseline)
    return {
        **row,
        **_config_columns(run, loop),
        "available": True,
        "reason": None,
        "is_baseline": loop is baseline,
        "step_p50_ms": loop.pooled.step_p50_ms,
        "samples_per_s": loop.median("samples_per_s"),
        "samples_per_s_min": _nanmin(loop.values("samples_per_s")),
        "samples_per_s_max": _nanmax(loop.values("samples_per_s")),
        "observed_speedup": observed,
        "observed_speedup_min": low,
        "observed_speedup_max": high,
        "observed_speedup_with_preload": _with_preload(run, loop, baseline),
        **_memory(loop),
        **fields,
    }


def _stage_ab(
    run: ProfileRun, experiment: str, stage: str, baseline: tuple[str, LoopResult],
    variants: list[tuple[str, LoopResult]],
) -> list[dict[str, Any]]:  # fmt: skip
    """Baseline + variants of an experiment that changes one stage: predicted (Amdahl) vs observed."""
    base_variant, baseline = baseline
    share = _stage_share(baseline, stage)
    base_ms = _stage_mean_ms(baseline, stage)
    parallel = baseline.pooled.parallel
    wait = baseline.pooled.data_wait_share
    rows = [
        _ab_row(run, experiment, base_variant, baseline, baseline, stage=stage, stage_share=share,
                stage_speedup=1.0, amdahl_ceiling=math.nan, predicted_speedup=1.0, prediction="baseline")
    ]  # fmt: skip
    for variant, loop in variants:
        speedup = base_ms / _stage_mean_ms(loop, stage)
        if parallel:
            loader = amdahl_speedup(share, speedup)
            predicted = amdahl_speedup(wait, loader)
            ceiling = amdahl_speedup(wait, amdahl_ceiling(share)) if share < 1 else amdahl_ceiling(wait)
            how = (
                f"Amdahl on the data wait ({pct(wait)} of the step) with a loader speedup of {times(loader)}: {stage} "
                f"is {pct(share)} of the workers' time, stage speedup {times(speedup)}"
            )
        else:
            predicted = amdahl_speedup(share, speedup)
            ceiling = amdahl_ceiling(share)
            how = f"Amdahl: {stage} is {pct(share)} of the step, stage speedup {times(speedup)}"
        rows.append(_ab_row(run, experiment, variant, loop, baseline, stage=stage, stage_share=share,
                            stage_speedup=speedup, amdahl_ceiling=ceiling, predicted_speedup=predicted,
                            prediction=how))  # fmt: skip
    return rows


def ab_table(run: ProfileRun) -> pd.DataFrame:
    """The A/B experiments: ``maps`` (disk vs RAM, serial and with workers), ``decoder`` (PIL vs turbo),
    ``workers`` (the num_workers x prefetch_factor sweep on the emulated accelerator) and ``headroom`` (cached
    batches). Each variant: observed speedup over its baseline beside the Amdahl prediction and ceiling."""
    loops = run.loops
    rows: list[dict[str, Any]] = []
    base = loops["base"]
    rows += _stage_ab(run, "maps", "map_load", ("disk", base), [("ram", loops["ram"])])
    if "par_base" in loops:
        rows += _stage_ab(run, "maps", "map_load", ("disk", loops["par_base"]), [("ram", loops["par_ram"])])
    main_decoder = base.spec.decoder
    alt = "turbo" if main_decoder == "pil" else "pil"
    if "decoder_alt" in loops:
        rows += _stage_ab(run, "decoder", "decode", (main_decoder, base), [(alt, loops["decoder_alt"])])
    else:
        rows += _stage_ab(run, "decoder", "decode", (main_decoder, base), [])
        rows.append(_ab_row(run, "decoder", alt, None, base, reason=run.decoders[alt]["reason"],
                            decoder=alt, num_workers=0))  # fmt: skip
    rows += workers_rows(run)
    cached = loops["model_cached"]
    wait = base.pooled.data_wait_share
    ceiling = amdahl_ceiling(wait)
    rows.append(
        _ab_row(
            run,
            "headroom",
            "w0 (baseline)",
            base,
            base,
            stage=DATA,
            stage_share=wait,
            stage_speedup=1.0,
            amdahl_ceiling=math.nan,
            predicted_speedup=1.0,
            prediction="baseline",
        )
    )
    rows.append(
        _ab_row(
            run,
            "headroom",
            "cached batches",
            cached,
            base,
            stage=DATA,
            stage_share=wait,
            stage_speedup=math.inf,
            amdahl_ceiling=ceiling,
            predicted_speedup=ceiling,
            prediction=f"Amdahl ceiling: data loading ({pct(wait)} of the step) made free",
        )
    )
    return pd.DataFrame(rows)


def sweep_loops(run: ProfileRun) -> list[tuple[str, LoopResult]]:
    """The sweep's loops in order (``sweep:<workers>:<prefetch>`` roles)."""
    return [(role, loop) for role, loop in run.loops.items() if role.startswith("sweep:")]


def workers_rows(run: ProfileRun) -> list[dict[str, Any]]:
    """The sweep as A/B rows against ``num_workers=0``: Amdahl with ``min(workers, cores)`` loader processes."""
    sweep = sweep_loops(run)
    baseline = sweep[0][1]
    wait = baseline.pooled.data_wait_share
    ceiling = amdahl_ceiling(wait)
    rows = []
    for _, loop in sweep:
        workers = loop.spec.num_workers
        if workers == 0:
            rows.append(_ab_row(run, "workers", loop.spec.label, loop, baseline, stage=DATA, stage_share=wait,
                                stage_speedup=1.0, amdahl_ceiling=math.nan, predicted_speedup=1.0,
                                prediction="baseline"))  # fmt: skip
            continue
        parallel = min(workers, run.usable_cores)
        rows.append(_ab_row(
            run, "workers", loop.spec.label, loop, baseline, stage=DATA, stage_share=wait,
            stage_speedup=float(parallel), amdahl_ceiling=ceiling, predicted_speedup=amdahl_speedup(wait, parallel),
            prediction=f"Amdahl: data loading ({pct(wait)} of the step) spread over {parallel} process(es) "
            f"(min of workers and {run.usable_cores} usable cores); overlap with compute can beat it, up to the "
            "ceiling",
        ))  # fmt: skip
    return rows


def au_table(run: ProfileRun) -> pd.DataFrame:
    """Accelerator utilisation per sweep point and for cached batches (head-room): AU = compute time / wall time
    over the steps after the first, median across repeats with min/max; ``meets_threshold`` against the option."""
    options = run.options
    cached = run.loops["sleep_cached"]
    cached_sps = cached.median("samples_per_s")
    rows = []
    for role, loop in [*sweep_loops(run), ("sleep_cached", cached)]:
        au = loop.values("au")
        au_median = _nanmedian(au)
        rows.append(
            {
                "role": role,
                **_config_columns(run, loop),
                "compute_ms": options.compute_ms,
                "au_pct": au_median * 100,
                "au_pct_min": _nanmin(au) * 100,
                "au_pct_max": _nanmax(au) * 100,
                "threshold_pct": options.au_threshold_pct,
                "meets_threshold": bool(au_median * 100 >= options.au_threshold_pct),
                "samples_per_s": loop.median("samples_per_s"),
                "headroom_fraction": loop.median("samples_per_s") / cached_sps,
                "step_p50_ms": loop.pooled.step_p50_ms,
                "data_wait_share": loop.pooled.data_wait_share,
                "first_step_ms": loop.median("first_step_ms"),
                "peak_uss_mb": loop.median("peak_uss_mb"),
                "peak_pss_mb": loop.median("peak_pss_mb"),
                "worker_pss_mb": loop.median("worker_pss_mb"),
                **_data_columns(run),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- recommendations


def _verdict(row: pd.Series, gain: float, adopt: str, keep: str) -> str:
    """What to do after an A/B: adopt only a gain above the noise that held in every round, and say when the
    figures cannot be the stage's doing."""
    ceiling, observed = row["amdahl_ceiling"], row["observed_speedup"]
    low, high = row["observed_speedup_min"], row["observed_speedup_max"]
    if math.isfinite(ceiling) and observed > ceiling * MEANINGFUL_GAIN:
        return (
            f"inconclusive: observed beyond the Amdahl ceiling, so not the stage's doing (noise or other load on "
            f"the machine; re-run with more --steps / --repeats); {keep} until it holds"
        )
    if low < 1 < high:
        return f"{keep} (no consistent difference: {times(low)} to {times(high)} across rounds)"
    if math.isfinite(gain) and gain >= MEANINGFUL_GAIN and low > 1:
        return adopt
    if high < 1 and row["stage_speedup"] > 1:
        return f"{keep} (slower in every round although the stage got faster: something else outweighs the gain)"
    return keep


def _stage_lines(run: ProfileRun, stages: pd.DataFrame) -> list[str]:
    base = stages[(stages["role"] == "base") & (stages["scope"] == STEP)].sort_values("share", ascending=False)
    lines = []
    for _, row in base.iterrows():
        if row["share"] < 0.01 and row["kind"] != "sample":
            continue
        remedy = REMEDY.get(row["stage"], f"a faster {row['stage']}")
        lines.append(
            f"{row['stage']} is {pct(row['share'])} of the step: at most {times(row['amdahl_ceiling'])} from {remedy}"
        )
    head = (
        f"Where the time goes (num_workers=0, {run.options.model} model, {run.options.batch_size} images per "
        f"batch): stages account for {pct(float(base['coverage'].iloc[0]))} of the step"
    )
    return [head, *lines]


def _parallel_line(stages: pd.DataFrame) -> list[str]:
    par = stages[stages["role"] == "par_base"]
    if par.empty:
        return []
    wait = par[(par["scope"] == STEP) & (par["stage"] == DATA_WAIT)]["share"].iloc[0]
    worker = par[par["scope"] == WORKER].sort_values("share", ascending=False)
    parts = ", ".join(f"{r['stage']} {pct(r['share'])}" for _, r in worker.iterrows())
    return [
        f"With workers ({par['config'].iloc[0]}) the stages run in parallel in the workers: the main process "
        f"waits for data {pct(wait)} of the step; the workers' time goes to {parts}"
    ]


def _maps_lines(ab: pd.DataFrame) -> list[str]:
    lines = []
    for _, row in ab[(ab["experiment"] == "maps") & ~ab["is_baseline"].astype(bool)].iterrows():
        where = "num_workers=0" if row["num_workers"] == 0 else f"num_workers={row['num_workers']}"
        gain = row["observed_speedup_with_preload"]
        verdict = _verdict(row, min(gain, row["observed_speedup"]), "pre-load in RAM", "keep disk")
        memory = f"{row['cache_mb']:.0f} MB of maps"
        if math.isfinite(row.get("worker_uss_mb", math.nan)):
            memory += f", {row['worker_uss_mb']:.0f} MB USS / {row['worker_pss_mb']:.0f} MB PSS per worker"
        lines.append(
            f"RAM pre-load ({where}): observed {times(row['observed_speedup'])}, predicted "
            f"{times(row['predicted_speedup'])} (ceiling {times(row['amdahl_ceiling'])}: map_load is "
            f"{pct(row['stage_share'])} of the {'step' if row['num_workers'] == 0 else 'workers’ time'}, "
            f"stage speedup {times(row['stage_speedup'])} from RAM); pre-load {row['preload_s']:.2f} s, {memory}; "
            f"{times(gain)} over one epoch counting the pre-load: {verdict}"
        )
    return lines


def _decoder_lines(run: ProfileRun, ab: pd.DataFrame) -> list[str]:
    rows = ab[(ab["experiment"] == "decoder") & ~ab["is_baseline"].fillna(False).astype(bool)]
    lines = []
    for _, row in rows.iterrows():
        name = row["variant"]
        library = run.decoders[name]["library"]
        if not row["available"]:
            lines.append(f"{name} decoder not measured: {row['reason']}")
            continue
        keep = f"keep {run.loops['base'].spec.decoder}"
        verdict = _verdict(row, row["observed_speedup"], f"switch to {name}", keep)
        lines.append(
            f"{name} decoder ({library}): observed {times(row['observed_speedup'])}, predicted "
            f"{times(row['predicted_speedup'])} (ceiling {times(row['amdahl_ceiling'])}: decode is "
            f"{pct(row['stage_share'])} of the step, stage speedup {times(row['stage_speedup'])}): {verdict}"
        )
    return lines


def _workers_lines(run: ProfileRun, ab: pd.DataFrame) -> list[str]:
    rows = ab[(ab["experiment"] == "workers") & ~ab["is_baseline"].astype(bool)]
    if rows.empty:
        return []
    best = rows.loc[rows["observed_speedup"].idxmax()]
    lines = [
        f"Best loader setting on the emulated accelerator ({run.options.compute_ms:g} ms per step): "
        f"num_workers={best['num_workers']}, prefetch_factor={int(best['prefetch_factor'])}: "
        f"{times(best['observed_speedup'])} over num_workers=0 (Amdahl with {int(best['stage_speedup'])} loader "
        f"process(es): {times(best['predicted_speedup'])}; ceiling {times(best['amdahl_ceiling'])} with loading fully "
        f"hidden)"
    ]
    for workers, group in rows.groupby("num_workers"):
        if len(group) > 1:
            group = group.sort_values("prefetch_factor")
            low, high = group.iloc[0], group.iloc[-1]
            lines.append(
                f"prefetch_factor {int(low['prefetch_factor'])} -> {int(high['prefetch_factor'])} at num_workers="
                f"{workers}: {times(high['samples_per_s'] / low['samples_per_s'])}"
            )
    return lines


def _au_lines(run: ProfileRun, au: pd.DataFrame) -> list[str]:
    loader = au[~au["cached"].astype(bool)]
    cached = au[au["cached"].astype(bool)].iloc[0]
    best = loader.loc[loader["au_pct"].idxmax()]
    threshold = run.options.au_threshold_pct
    met = "meets" if best["meets_threshold"] else "is below"
    lines = [
        f"Accelerator utilisation (compute {run.options.compute_ms:g} ms per step, first step excluded): best "
        f"{best['au_pct']:.0f} % at {best['config']}, which {met} the {threshold:g} % threshold"
        + ("" if best["meets_threshold"] else ": the loader would starve this accelerator")
    ]
    zero = loader[loader["num_workers"] == 0]
    if not zero.empty and zero.iloc[0]["config"] != best["config"]:
        lines.append(f"AU with num_workers=0: {zero.iloc[0]['au_pct']:.0f} %")
    lines.append(
        f"Head-room (the same loop on cached batches, the most any loader change can reach): AU "
        f"{cached['au_pct']:.0f} %, {cached['samples_per_s']:.0f} samples/s; the best loader reaches "
        f"{pct(best['headroom_fraction'])} of that"
    )
    return lines


def _headroom_line(run: ProfileRun, ab: pd.DataFrame) -> list[str]:
    row = ab[(ab["experiment"] == "headroom") & ~ab["is_baseline"].astype(bool)].iloc[0]
    line = (
        f"A free loader (cached batches) would make the {run.options.model}-model loop "
        f"{times(row['observed_speedup'])} as fast at num_workers=0 (Amdahl ceiling from the data wait, "
        f"{pct(row['stage_share'])} of the step: {times(row['amdahl_ceiling'])})"
    )
    if row["observed_speedup"] > row["amdahl_ceiling"] * MEANINGFUL_GAIN:
        line += "; beyond the ceiling, so the model itself ran faster there: noise or other load on the machine"
    return [line]


def _noise_lines(run: ProfileRun) -> list[str]:
    """A warning when the baseline's throughput varied across rounds more than the gains the A/B can resolve."""
    values = run.loops["base"].values("samples_per_s")
    spread = (np.nanmax(values) - np.nanmin(values)) / np.nanmedian(values) if values.size > 1 else 0.0
    if spread <= MEANINGFUL_GAIN - 1:
        return []
    return [
        f"caution: the baseline's samples/s varied by {pct(spread)} (min to max) across {values.size} rounds; "
        f"A/B differences smaller than that are noise (a busy machine? more --steps / --repeats help)"
    ]


def recommendations(run: ProfileRun, stages: pd.DataFrame, ab: pd.DataFrame, au: pd.DataFrame) -> list[str]:
    """Plain sentences: each stage's share and ceiling, each A/B's observed vs predicted and what to do, the AU."""
    lines = [*(f"note: {note}" for note in run.notes), *_noise_lines(run)]
    lines += _stage_lines(run, stages)
    lines += _parallel_line(stages)
    lines += _headroom_line(run, ab)
    lines += _maps_lines(ab)
    lines += _decoder_lines(run, ab)
    lines += _workers_lines(run, ab)
    lines += _au_lines(run, au)
    return lines
