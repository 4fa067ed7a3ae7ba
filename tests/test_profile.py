"""The pipeline profiler: stage API, shares and Amdahl figures on synthetic stages of known duration, AU, and a tiny
real ``loaderbench profile`` run writing every output.

Synthetic stages sleep, and record how long each sleep really took (a sleep overshoots by however late the scheduler
wakes it, which on two busy cores is milliseconds): the profiler's figures are checked against those recorded times,
not against the asked ones, so a loaded machine cannot fail a correct profiler.

Stated tolerances (the arithmetic itself is exact):
- a synthetic stage's share is within ``SHARE_TOL`` (absolute) of its recorded duration over the recorded step;
- in every step the named stages add up to the measured step time within ``ADD_UP_TOL`` (relative);
- AU on a synthetic loop is within ``SHARE_TOL`` of compute / (compute + data).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from loaderbench.profile import decoders as decoders_module
from loaderbench.profile.cli import options_from_args, register
from loaderbench.profile.decoders import DecoderUnavailable, decoder_status, make_decoder
from loaderbench.profile.output import COVERAGE_TOLERANCE, SUMMARY
from loaderbench.profile.report import profile_sections
from loaderbench.profile.runner import ProfileOptions, run_profile
from loaderbench.profile.stages import (
    ProfileError,
    SampleTimes,
    StageTimer,
    StepRecord,
    accelerator_utilisation,
    amdahl_ceiling,
    amdahl_speedup,
    breakdown,
    breakdown_steps,
)

SHARE_TOL = 0.03
ADD_UP_TOL = 0.05
#: per-sample sleeps (ms) of the synthetic dataset, and the main loop's "forward" sleep per batch
STAGE_MS = {"read": 2.0, "decode": 6.0, "transform": 12.0}
FORWARD_MS = 20.0
BATCH = 2


def _sleep_ms(ms: float) -> float:
    """Sleep about ``ms``; return the milliseconds it really took."""
    start = time.perf_counter()
    time.sleep(ms / 1000)
    return (time.perf_counter() - start) * 1000


class SleepyDataset(Dataset):
    """Samples whose stages sleep for known times; ``first_extra_ms`` slows the very first sample only.

    ``slept[index * len(STAGE_MS) + k]`` is how long stage ``k`` of sample ``index`` really slept, written by whichever
    process ran it (forked DataLoader workers inherit the shared array)."""

    def __init__(self, timer: StageTimer, n: int, first_extra_ms: float = 0.0) -> None:
        self.timer = timer
        self.n = n
        self.first_extra_ms = first_extra_ms
        self.slept = multiprocessing.RawArray("d", max(n, 1) * len(STAGE_MS))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, SampleTimes]:
        with self.timer.sample() as times:
            for k, (name, ms) in enumerate(STAGE_MS.items()):
                with self.timer.stage(name):
                    extra = self.first_extra_ms if index == 0 and name == "read" else 0.0
                    self.slept[index * len(STAGE_MS) + k] = _sleep_ms(ms + extra)
        return torch.zeros(4), times

    def slept_ms(self, name: str, first_sample: int = 0) -> np.ndarray:
        """The recorded sleeps of stage ``name``, one per sample from ``first_sample`` on."""
        k = list(STAGE_MS).index(name)
        return np.asarray(self.slept[k:: len(STAGE_MS)][first_sample:self.n])


def _run_sleepy(num_workers: int, steps: int = 8, compute: str = "forward", compute_ms: float = FORWARD_MS,
                first_extra_ms: float = 0.0) -> tuple[StageTimer, SleepyDataset, np.ndarray]:  # fmt: skip
    """Runs the loop; returns the timer, the dataset (with its recorded sleeps) and the main loop's recorded
    ``compute`` sleeps, one per step."""
    timer = StageTimer()
    dataset = SleepyDataset(timer, BATCH * steps, first_extra_ms)
    loader = DataLoader(dataset, batch_size=BATCH, num_workers=num_workers, collate_fn=timer.collate)
    computed = []
    for _ in timer.iterate(loader):
        with timer.stage(compute):
            computed.append(_sleep_ms(compute_ms))
    return timer, dataset, np.asarray(computed)


# ----------------------------------------------------------------------------------------------- Amdahl and shares


def test_amdahl_figures() -> None:
    assert amdahl_ceiling(0.0) == 1.0
    assert amdahl_ceiling(0.5) == pytest.approx(2.0)
    assert amdahl_ceiling(0.41) == pytest.approx(1.695, abs=1e-3)  # the "41 %: at most 1.7x"
    assert amdahl_ceiling(1.0) == math.inf
    assert amdahl_speedup(0.5, 2.0) == pytest.approx(4 / 3)
    assert amdahl_speedup(0.05, 1e9) == pytest.approx(amdahl_ceiling(0.05), rel=1e-6)
    assert amdahl_speedup(0.3, 1.0) == pytest.approx(1.0)
    with pytest.raises(ProfileError):
        amdahl_ceiling(1.5)
    with pytest.raises(ProfileError):
        amdahl_speedup(0.5, 0.0)


def test_breakdown_of_totals() -> None:
    rows = {r.stage: r for r in breakdown({"decode": 41.0, "forward": 50.0}, total_ns=100.0)}
    assert rows["decode"].share == pytest.approx(0.41)
    assert rows["decode"].amdahl_ceiling == pytest.approx(1 / 0.59)
    assert rows["other"].share == pytest.approx(0.09)
    assert sum(r.share for r in rows.values()) == pytest.approx(1.0)
    with pytest.raises(ProfileError, match="empty"):
        breakdown({})
    with pytest.raises(ProfileError, match="zero recorded time"):
        breakdown({"decode": 0.0, "forward": 5.0})
    with pytest.raises(ProfileError, match="more than the total"):
        breakdown({"decode": 10.0}, total_ns=5.0)


# ----------------------------------------------------------------------------------------------- synthetic stages


def test_serial_shares_recover_known_durations() -> None:
    timer, dataset, computed = _run_sleepy(num_workers=0)
    result = timer.breakdown(skip_first=1)
    assert not result.parallel and result.steps == 7 and result.samples == 7 * BATCH
    slept = {name: dataset.slept_ms(name, first_sample=BATCH).sum() for name in STAGE_MS}
    slept["forward"] = computed[1:].sum()
    expected = {name: ms / sum(slept.values()) for name, ms in slept.items()}
    for name, share in expected.items():
        row = result.row(name)
        assert row.share == pytest.approx(share, abs=SHARE_TOL), name
        assert row.amdahl_ceiling == pytest.approx(1 / (1 - row.share))
        assert abs(row.amdahl_ceiling - amdahl_ceiling(share)) < 0.1, name
    transform_p50 = float(np.median(dataset.slept_ms("transform", first_sample=BATCH)))
    assert result.row("transform").per_sample_p50_ms == pytest.approx(transform_p50, abs=1.0)
    # The asked durations are still what dominates: a profiler that swapped stages would be far off.
    assert result.row("transform").share > result.row("decode").share > result.row("read").share
    assert sum(r.share for r in result.rows) == pytest.approx(1.0, abs=1e-9)
    assert result.coverage >= 1 - ADD_UP_TOL


def test_stage_times_add_up_to_each_step() -> None:
    timer, _, _ = _run_sleepy(num_workers=0, steps=6)
    for step in timer.steps[1:]:
        named = sum(sum(s.values()) for s in step.samples) + (step.collate_ns or 0) + sum(step.main.values())
        assert named <= step.step_ns
        assert (step.step_ns - named) / step.step_ns < ADD_UP_TOL
        assert step.wait_ns + sum(step.main.values()) <= step.step_ns


def test_parallel_reports_worker_shares_and_data_wait() -> None:
    timer, dataset, _ = _run_sleepy(num_workers=2, steps=8, compute_ms=5.0)
    result = timer.breakdown(skip_first=1)
    assert result.parallel
    # The DataLoader yields batches in order, so the steps counted hold every sample but the first batch's.
    slept = {name: dataset.slept_ms(name, first_sample=BATCH).sum() for name in STAGE_MS}
    for name, ms in slept.items():
        assert result.share(name, "worker") == pytest.approx(ms / sum(slept.values()), abs=SHARE_TOL), name
    scopes = {(r.stage, r.scope) for r in result.rows}
    assert ("data_wait", "step") in scopes and ("decode", "step") not in scopes
    # Two workers each need 40 ms a batch while the loop spends 5 ms: the main process mostly waits.
    assert result.data_wait_share > 0.5


def test_accelerator_utilisation_on_a_known_loop() -> None:
    timer, dataset, computed = _run_sleepy(num_workers=0, steps=6, compute="compute", compute_ms=60.0,
                                           first_extra_ms=300.0)  # fmt: skip
    au = accelerator_utilisation(timer.steps, "compute", skip_first=1)
    data_ms = sum(dataset.slept_ms(name, first_sample=BATCH).sum() for name in STAGE_MS)
    assert au == pytest.approx(computed[1:].sum() / (computed[1:].sum() + data_ms), abs=SHARE_TOL)
    # The slow first step is excluded; counting it would drag AU well down.
    with_first = accelerator_utilisation(timer.steps, "compute", skip_first=0)
    assert with_first < au - 0.05
    with pytest.raises(ProfileError, match="no 'forward' stage"):
        accelerator_utilisation(timer.steps, "forward")
    with pytest.raises(ProfileError, match="at least one step"):
        accelerator_utilisation(timer.steps[:1], "compute")


# ----------------------------------------------------------------------------------------------- the stage API


def test_context_manager_and_decorator() -> None:
    timer = StageTimer()

    @timer.timed("decode")
    def decode(value: int) -> int:
        """Doubles."""
        time.sleep(0.002)
        return value * 2

    assert decode(21) == 42 and decode.__name__ == "decode" and decode.__doc__ == "Doubles."
    with timer.stage("read"):
        time.sleep(0.001)
    assert len(timer.loose["decode"]) == 1 and timer.loose["decode"][0] >= 2_000_000
    assert timer.loose["read"][0] >= 1_000_000
    with timer.sample() as times:
        decode(1)
        decode(2)
        with timer.stage("map_load"):
            pass
    assert set(times) == {"decode", "map_load"} and times["decode"] >= 4_000_000
    assert len(timer.loose["decode"]) == 1  # inside a sample nothing goes to ``loose``


def test_stage_misuse_is_a_clear_error() -> None:
    timer = StageTimer()
    with pytest.raises(ProfileError, match="must not nest"), timer.stage("a"), timer.stage("b"):
        pass
    with timer.stage("a"):  # the failed nesting left no stage open
        pass
    for bad in ("", "  ", "data_wait", "other"):
        with pytest.raises(ProfileError):
            timer.stage(bad).__enter__()
    with pytest.raises(ProfileError, match="inside another sample"), timer.sample(), timer.sample():
        pass


def test_timer_is_per_thread() -> None:
    timer = StageTimer()
    seen: dict[int, SampleTimes] = {}

    def work(k: int) -> None:
        with timer.sample() as times:
            with timer.stage(f"s{k}"):
                time.sleep(0.002)
        seen[k] = times

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: set(v) for k, v in seen.items()} == {k: {f"s{k}"} for k in range(4)}


def test_empty_dataset_and_zero_length_stage_give_clear_errors() -> None:
    timer = StageTimer()
    loader = DataLoader(SleepyDataset(timer, 0), batch_size=2, collate_fn=timer.collate)
    assert list(timer.iterate(loader)) == []
    with pytest.raises(ProfileError, match="empty"):
        timer.breakdown()
    step = StepRecord(step_ns=1_000_000, wait_ns=500_000, samples=[{"decode": 0}], collate_ns=10, main={},
                      worker_id=None, size=1)  # fmt: skip
    with pytest.raises(ProfileError, match="'decode' has zero recorded time"):
        breakdown_steps([step])
    with pytest.raises(ProfileError, match="empty dataset"):
        ProfileOptions(n_images=0).validated()


# ----------------------------------------------------------------------------------------------- decoders


def test_missing_decoder_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "JPEG only" in (decoder_status("turbo", "png") or "")
    assert decoder_status("pil", "png") is None

    def broken() -> None:
        raise ImportError("No module named 'nothing'")

    monkeypatch.setattr(decoders_module, "_simplejpeg", broken)
    monkeypatch.setattr(decoders_module, "_pyturbojpeg", broken)
    reason = decoder_status("turbo", "jpeg")
    assert reason is not None and "pip install simplejpeg" in reason and "nothing" in reason
    with pytest.raises(DecoderUnavailable):
        make_decoder("turbo", "jpeg")


# ----------------------------------------------------------------------------------------------- a tiny real run

TINY = {"n_images": 6, "height": 48, "width": 48, "resize": 32, "batch_size": 2, "steps": 2, "repeats": 2,
        "compute_ms": 5.0}  # fmt: skip


def test_tiny_profile_writes_every_output(tmp_path: Path) -> None:
    options = ProfileOptions(out=tmp_path / "out", data_dir=tmp_path / "data", workers=(0, 1), prefetch=(2,), **TINY)
    results = run_profile(options)
    out = tmp_path / "out"
    for name in ("profile_stages.parquet", "profile_ab.parquet", "profile_au.parquet", "plots/profile.png", SUMMARY):
        assert (out / name).is_file(), name
    stages = results.stages
    base = stages[stages["role"] == "base"]
    assert set(base["stage"]) >= {"read", "decode", "transform", "map_load", "collate", "forward"}
    assert base["share"].sum() == pytest.approx(1.0, abs=1e-6)
    assert (base["coverage_min"] >= 1 - COVERAGE_TOLERANCE).all()  # named stages explain the step
    assert set(stages[stages["role"] == "par_base"]["scope"]) == {"step", "worker"}
    ab = results.ab
    assert set(ab["experiment"]) == {"maps", "decoder", "workers", "headroom"}
    ram = ab[(ab["experiment"] == "maps") & (ab["variant"] == "ram")]
    assert len(ram) == 2 and (ram["preload_s"] > 0).all() and (ram["cache_mb"] > 0).all()
    assert ram["predicted_speedup"].notna().all() and ram["observed_speedup"].notna().all()
    assert ram[ram["num_workers"] == 1]["worker_pss_mb"].iloc[0] > 0
    au = results.au
    assert au["cached"].sum() == 1 and (au["au_pct"] > 0).all() and (au["au_pct"] <= 100).all()
    assert any("of the step: at most" in line for line in results.recommendations)
    assert any(line.startswith("RAM pre-load") for line in results.recommendations)
    assert any("Accelerator utilisation" in line for line in results.recommendations)
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["recommendations"] == results.recommendations
    assert summary["environment"]["versions"]["torch"] and "au" in summary
    sections = profile_sections(out)
    assert [title for title, _ in sections][0] == "Pipeline profile: where the time goes"
    assert "data:image/png;base64," in sections[0][1]
    assert profile_sections(tmp_path) == []


def test_cli_without_turbo_reports_it_and_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise ImportError("no <turbo> here")

    monkeypatch.setattr(decoders_module, "_simplejpeg", broken)
    monkeypatch.setattr(decoders_module, "_pyturbojpeg", broken)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([
        "profile", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), "--n-images", "4",
        "--size", "48", "--resize", "32", "--batch-size", "2", "--steps", "2", "--repeats", "1", "--workers", "1",
        "--prefetch", "2", "--compute-ms", "5", "--decoder", "turbo", "--quiet",
    ])  # fmt: skip
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "turbo decoder not measured" in printed and "Recommendations" in printed
    assert "PIL used instead" in printed
    html = "".join(body for _, body in profile_sections(tmp_path / "out"))
    assert "&lt;turbo&gt;" in html and "<turbo>" not in html  # reasons are escaped
    report = (tmp_path / "out" / "report.html").read_text()  # the command re-renders the shared report
    assert "Pipeline profile: where the time goes" in report and "No track results" not in report


def test_cli_parses_every_flag() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["profile", "--quick", "--size", "320x240", "--workers", "2", "--model", "large",
                              "--au-threshold", "80", "--format", "png"])  # fmt: skip
    options = options_from_args(args)
    assert (options.height, options.width, options.workers, options.model) == (320, 240, (2,), "large")
    assert options.au_threshold_pct == 80 and options.image_format == "png" and options.n_images == 24
    assert options.validated()[0].workers == (0, 2)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["profile", "--help"])
    assert exc.value.code == 0
    with pytest.raises(ProfileError, match="--au-threshold"):
        ProfileOptions(au_threshold_pct=0).validated()


def test_the_documented_example_runs(tmp_path: Path) -> None:
    """docs/profile.md's stage-API example, run as written (in a fresh interpreter, so workers can pickle it)."""
    import re
    import subprocess
    import sys

    doc = (Path(__file__).resolve().parents[1] / "docs" / "profile.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "decode" in done.stdout and "data_wait" in done.stdout and "AU of the forward pass" in done.stdout
