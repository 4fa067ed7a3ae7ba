"""Image peers (issue 12): every peer x variant gives the reference pixels (shuffle off: exactly, in order; shuffle
on: every image exactly once), and the driver turns any outcome into a row."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
import textwrap
import threading
import types
from pathlib import Path

import numpy as np
import ome_arrow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from loaderbench.code_lines import source_lines
from loaderbench.datagen import build_ome_table, generate_images
from loaderbench.loaders.peers import IMAGE_PEERS, PeerUnavailable, driver, peer_module
from loaderbench.loaders.peers.workload import ImageWorkload, reference_images, stored_images

N, C, H, W = 48, 3, 16, 16
N_ZSTD = 20
BATCH = 10  # 48 rows: four full batches and a short one


def _describe(peer: str) -> ImageWorkload:
    """A stand-in workload for listing a peer's variants at collection time (same settings as the real ones)."""
    return ImageWorkload(name="tiny", parquet="", lance=None, n=N, channels=C, height=H, width=W, dtype="uint8",
                         batch_size=BATCH)


def _peer_cases() -> list:
    """(peer, variant) for every peer module present; a peer whose module is not written yet is one skipped case."""
    cases = []
    for peer in IMAGE_PEERS:
        if importlib.util.find_spec(f"loaderbench.loaders.peers.{peer}") is None:
            cases.append(pytest.param(peer, None, id=f"{peer}-missing"))
            continue
        module = peer_module(peer)
        cases += [pytest.param(peer, variant, id=f"{peer}-{variant}") for variant in module.variants(_describe(peer))]
    return cases


def _skip_unless_available(peer: str, variant: str | None) -> types.ModuleType:
    if variant is None:
        pytest.skip(f"loaderbench/loaders/peers/{peer}.py does not exist yet")
    module = peer_module(peer)
    reason = module.unavailable()
    if reason:
        pytest.skip(f"{peer} unavailable: {reason}")
    return module


@pytest.fixture(scope="module")
def workloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ImageWorkload]:
    """``planes``: ome-arrow's default layout, in Parquet (several row groups) and Lance; ``zstd``: zstd byte chunks
    (Parquet only: the Lance peer copies it itself)."""
    import lance

    root = tmp_path_factory.mktemp("image_peers")
    images = generate_images(N, H, W, "uint8", C, seed=3)
    table = build_ome_table(images)
    pq.write_table(table, root / "planes.parquet", row_group_size=20)
    lance.write_dataset(table, str(root / "planes.lance"))
    planes = ImageWorkload(name="tiny_planes", parquet=str(root / "planes.parquet"), lance=str(root / "planes.lance"),
                           n=N, channels=C, height=H, width=W, dtype="uint8", batch_size=BATCH, seed=5, epochs=1,
                           workdir=str(root / "cache_planes"))
    rows = [ome_arrow.from_numpy(image.reshape(1, C, 1, H, W), chunk_encoding="bytes", chunk_compression="zstd",
                                 dtype_meta="uint8") for image in images[:N_ZSTD]]
    zstd_table = pa.table({"row_id": pa.array(range(N_ZSTD), pa.int64()),
                           "ome_image": pa.array([row.as_py() for row in rows], type=rows[0].type)})
    pq.write_table(zstd_table, root / "zstd.parquet")
    zstd = dataclasses.replace(planes, name="tiny_zstd", parquet=str(root / "zstd.parquet"), lance=None, n=N_ZSTD,
                               workdir=str(root / "cache_zstd"))
    return {"planes": planes, "zstd": zstd, "images": images}


def test_reference_is_the_generated_images(workloads) -> None:
    images = workloads["images"]
    assert np.array_equal(stored_images(workloads["planes"]), images)
    assert np.array_equal(stored_images(workloads["zstd"]), images[:N_ZSTD])
    reference = reference_images(workloads["planes"])
    assert reference.dtype == np.float32 and np.array_equal(reference, images.astype(np.float32) / np.float32(255))


def test_workload_json_round_trip(workloads) -> None:
    planes = workloads["planes"]
    assert ImageWorkload.from_json(planes.to_json()) == planes
    with pytest.raises(ValueError, match="unknown workload fields: colour"):
        ImageWorkload.from_json(planes.to_json()[:-1] + ', "colour": 1}')


@pytest.mark.parametrize(("peer", "variant"), _peer_cases())
def test_peer_epochs_are_the_reference(peer: str, variant: str | None, workloads) -> None:
    module = _skip_unless_available(peer, variant)
    for key, shuffle in (("planes", False), ("planes", True), ("zstd", True)):
        # Unshuffled, file order is checked in one process: DataLoader workers of an IterableDataset (LitData,
        # WebDataset) hand their batches over in turn, so with workers an unshuffled epoch is complete but
        # interleaved. Shuffled epochs run with the workers the variants use.
        workers = {"num_workers": (0,)} if not shuffle else {}
        workload = dataclasses.replace(workloads[key], shuffle=shuffle, **workers)
        cache = workload.cache_dir(module.NAME)
        settings = module.variants(workload)[variant]
        module.prepare(workload, cache)
        loader = module.build_loader(workload, cache, settings)
        first = driver.check_epoch(workload, loader)  # raises unless pixel-exact / every image exactly once
        if shuffle and key == "planes":  # (zstd: two batches, which a batch-order shuffle may leave as they were)
            reference = torch.from_numpy(reference_images(workload))
            assert not torch.equal(first, reference), f"{peer}/{variant}: shuffle=True gave the file order"
        if key == "planes" and not shuffle:
            # a second iter() is the next epoch, again complete
            driver.check_epoch(workload, loader)
        assert isinstance(module.shuffle_note(settings), str)


def test_driver_rows_end_to_end(workloads) -> None:
    workload = workloads["planes"]
    for peer, variant in (("expert_torch", "uint8_preloaded"), ("native", "documented")):
        row = driver.run_peer(peer, variant, workload, timeout_s=240)
        assert row["status"] == "ok", row
        assert (row["peer"], row["variant"], row["workload"]) == (peer, variant, workload.name)
        assert row["samples_per_s_min"] <= row["samples_per_s"] <= row["samples_per_s_max"]
        assert row["samples_per_s"] > 0 and len(row["epoch_s"]) == workload.epochs
        assert row["ttfb_s"] > 0 and row["prepare_s"] >= 0
        assert row["peak_uss_mb"] > 0 and row["peak_pss_mb"] > 0
        assert row["user_code_lines"] > 0
        assert row["settings"] == peer_module(peer).variants(workload)[variant]
        assert row["shuffle_note"] == ""
        assert {"numpy", "torch", "pyarrow"} <= set(row["versions"]) and row["versions"]["torch"] == torch.__version__
        assert row["cpu_count"] >= 1


def _fake_peer(**functions) -> types.SimpleNamespace:
    defaults = {"NAME": "fake", "DISTRIBUTIONS": (), "unavailable": lambda: None,
                "variants": lambda workload: {"plain": {}}, "prepare": lambda workload, cache: None,
                "shuffle_note": lambda settings: "", "holds_dataset": lambda settings: False}
    return types.SimpleNamespace(**{**defaults, **functions})


def _run_fake(monkeypatch, tmp_path: Path, workload: ImageWorkload, module: types.SimpleNamespace) -> dict:
    monkeypatch.setattr(driver, "peer_module", lambda name: module)
    # prepare normally runs in a child process, which would not see the fake peer
    monkeypatch.setattr(driver, "_prepare_in_child",
                        lambda *args: driver.run_in_this_process("fake", "plain", str(path), prepare_only=True))
    path = tmp_path / "workload.json"
    path.write_text(dataclasses.replace(workload, workdir=str(tmp_path / "cache")).to_json())
    return driver.run_in_this_process("fake", "plain", str(path))


def test_unavailable_peer_gives_an_unavailable_row(monkeypatch, tmp_path: Path, workloads) -> None:
    workload = workloads["planes"]
    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(unavailable=lambda: "fakelib is not installed"))
    assert (row["status"], row["reason"]) == ("unavailable", "fakelib is not installed")

    def missing_library(workload, cache, settings):
        raise ImportError("No module named 'fakelib'")

    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(build_loader=missing_library))
    assert (row["status"], row["reason"]) == ("unavailable", "ImportError: No module named 'fakelib'")

    def lacking(workload, cache, settings):
        raise PeerUnavailable("fakelib 0.1 cannot shuffle")

    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(build_loader=lacking))
    assert (row["status"], row["reason"]) == ("unavailable", "PeerUnavailable: fakelib 0.1 cannot shuffle")


def test_failing_peers_give_error_rows(monkeypatch, tmp_path: Path, workloads) -> None:
    workload = workloads["planes"]

    def broken(workload, cache, settings):
        raise RuntimeError("disk on fire\nsecond line")

    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(build_loader=broken))
    assert (row["status"], row["reason"]) == ("error", "RuntimeError: disk on fire second line")

    def short_epoch(workload, cache, settings):
        return [torch.zeros(BATCH, C, H, W)]  # one batch: not the whole epoch

    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(build_loader=short_epoch))
    assert row["status"] == "error" and "warm-up epoch gave 10 rows, the workload has 48" in row["reason"]

    def out_of_range(workload, cache, settings):
        return [torch.full((BATCH, C, H, W), 255.0)]

    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(build_loader=out_of_range))
    assert row["status"] == "error" and "outside [0, 1]" in row["reason"]


def test_timed_epochs_run_without_the_sampler_or_a_pass_over_the_values(monkeypatch, tmp_path: Path,
                                                                         workloads) -> None:
    """Reading USS and a pass over every value both take CPU from a loader's background threads but not from one
    that works inside ``next()``: the warm-up epoch is checked whole under the sampler, the timed epochs are not."""
    workload = dataclasses.replace(workloads["planes"], epochs=2)
    seen = {"aminmax": 0, "sampler_in_timed": 0}
    aminmax = torch.aminmax

    def counting_aminmax(*args, **kwargs):
        seen["aminmax"] += 1
        return aminmax(*args, **kwargs)

    monkeypatch.setattr(torch, "aminmax", counting_aminmax)

    class Loader:
        epochs = 0

        def __iter__(self):
            Loader.epochs += 1
            if Loader.epochs > 1:  # a timed epoch
                seen["sampler_in_timed"] += any(t.name == "loaderbench-memory" for t in threading.enumerate())
            for start in range(0, N, BATCH):
                yield torch.zeros(min(BATCH, N - start), C, H, W)

    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(build_loader=lambda w, c, s: Loader()))
    assert row["status"] == "ok", row
    assert Loader.epochs == 3 and len(row["epoch_s"]) == 2
    assert seen == {"aminmax": 5, "sampler_in_timed": 0}  # five batches of the warm-up epoch


def test_run_peer_never_raises(workloads) -> None:
    row = driver.run_peer("expert_torch", "no_such_variant", workloads["planes"], timeout_s=120)
    assert row["status"] == "error" and "no variant 'no_such_variant'" in row["reason"]
    crashed = driver._run_driver([sys.executable, "-c", "import os; os.abort()"], {"peer": "x"}, timeout_s=60)
    assert crashed["status"] == "error" and "killed by SIGABRT" in crashed["reason"]
    slow = driver._run_driver([sys.executable, "-c", "import time; time.sleep(60)"], {"peer": "x"}, timeout_s=1)
    assert (slow["status"], slow["reason"]) == ("error", "timed out after 1 s")


def test_user_code_lines_skip_docstrings_comments_and_blanks() -> None:
    def sample(x):
        """A docstring
        over two lines."""
        # a comment

        y = (x +  # trailing comment
             1)
        return y

    assert source_lines(textwrap.dedent(inspect.getsource(sample))) == 4


# ----------------------------------------------------------------------------------------------- cold workloads

#: the peers whose every variant holds the whole dataset in memory after its build (a cold page cache never reaches
#: them), and native's in-memory variants
IN_MEMORY_PEERS = ("seed_dataloader", "expert_torch", "spdl")
IN_MEMORY_NATIVE = {("native", "documented"), ("native", "tuned")}


def test_every_variant_says_whether_it_holds_the_dataset(workloads) -> None:
    cold = dataclasses.replace(workloads["planes"], page_cache="cold")
    held, expected = set(), set(IN_MEMORY_NATIVE)
    for peer in IMAGE_PEERS:
        module = peer_module(peer)
        for variant, settings in module.variants(cold).items():
            answer = module.holds_dataset(settings)
            assert isinstance(answer, bool), (peer, variant)
            if answer:
                held.add((peer, variant))
            if peer in IN_MEMORY_PEERS:
                expected.add((peer, variant))
    assert held == expected
    assert "streaming" in peer_module("native").variants(cold)
    assert "streaming" not in peer_module("native").variants(workloads["planes"])  # warm: the in-memory ones only
    with pytest.raises(ValueError, match="page_cache must be one of warm, cold, got 'lukewarm'"):
        dataclasses.replace(cold, page_cache="lukewarm")


@pytest.mark.parametrize("shuffle", [False, True])
def test_native_streaming_variant_is_the_reference(workloads, shuffle: bool) -> None:
    """The streaming loader reads the Parquet file's row groups (20 rows each here) a block at a time."""
    workload = dataclasses.replace(workloads["planes"], page_cache="cold", shuffle=shuffle)
    module = peer_module("native")
    settings = module.variants(workload)["streaming"]
    loader = module.build_loader(workload, workload.cache_dir("native"), settings)
    first = driver.check_epoch(workload, loader)
    second = driver.check_epoch(workload, loader)
    if shuffle:
        assert not torch.equal(first, second), "each iter() is the next epoch, shuffled anew"
        assert "block shuffle" in module.shuffle_note(settings)


def test_a_cold_workload_evicts_before_the_build_and_every_timed_epoch(monkeypatch, tmp_path: Path,
                                                                     workloads) -> None:
    workload = dataclasses.replace(workloads["planes"], page_cache="cold", epochs=2)
    events: list[str] = []
    monkeypatch.setattr(driver, "evict_sources", lambda w, peer: events.append("evict") or "cold")

    class Loader:
        def __iter__(self):
            events.append("iter")
            for start in range(0, N, BATCH):
                yield torch.zeros(min(BATCH, N - start), C, H, W)

    def build(w, c, s):
        events.append("build")
        return Loader()

    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(build_loader=build))
    assert row["status"] == "ok", row
    assert events == ["evict", "build", "iter", "evict", "iter", "evict", "iter"]
    assert (row["page_cache"], row["page_cache_measured"]) == ("cold", ["cold"] * 3)

    events.clear()
    row = _run_fake(monkeypatch, tmp_path, dataclasses.replace(workload, page_cache="warm"),
                    _fake_peer(build_loader=build))
    assert events == ["build", "iter", "iter", "iter"] and row["page_cache_measured"] == []

    row = _run_fake(monkeypatch, tmp_path, workload, _fake_peer(build_loader=build,
                                                                holds_dataset=lambda settings: True))
    assert (row["status"], row["reason"]) == ("skipped", driver.NOT_STREAMING)


def test_evict_sources_drops_every_file_the_peer_may_read(workloads) -> None:
    from loaderbench import page_cache

    workload = dataclasses.replace(workloads["planes"], page_cache="cold")
    (workload.cache_dir("native") / "copy.bin").write_bytes(b"x" * 65536)
    for path in workload.source_paths("native"):
        page_cache.warm(path)
    assert driver.evict_sources(workload, "native") == "cold"
    for path in workload.source_paths("native"):
        assert page_cache.resident_fraction(path) <= page_cache.COLD_THRESHOLD, path


def test_driver_rows_on_a_cold_workload(workloads) -> None:
    workload = dataclasses.replace(workloads["planes"], page_cache="cold", epochs=2)
    row = driver.run_peer("native", "streaming", workload, timeout_s=240)
    assert row["status"] == "ok", row
    assert row["page_cache"] == "cold" and row["page_cache_measured"] == ["cold"] * 3
    assert row["settings"]["streaming"] is True and "block shuffle" in row["shuffle_note"]
    skipped = driver.run_peer("expert_torch", "zero_copy", workload, timeout_s=240)
    assert (skipped["status"], skipped["reason"]) == ("skipped", driver.NOT_STREAMING)
