"""The ``peers`` track's rows, fastest mark, verdict, plot, HTML and terminal table, on synthetic peer results (the
peers themselves are exercised in test_image_peers.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from loaderbench.config import ConfigError, load_config
from loaderbench.report import render_report
from loaderbench.report.terminal import summary_table
from loaderbench.results import medians, peer_verdict, write_track
from loaderbench.tracks.peers import _rows, mark_fastest, peer_names


def _target() -> SimpleNamespace:
    dataset = SimpleNamespace(name="data-100x100", height=100, width=100, channels=1, dtype="uint8", n_images=256)
    module = SimpleNamespace(INFO=SimpleNamespace(kind="table", label="Parquet (pyarrow)"))
    return SimpleNamespace(dataset=dataset, format_name="parquet", module=module, label="Parquet (pyarrow)",
                           kind="table")


WORKLOAD = SimpleNamespace(name="data-100x100:parquet", n=300_000, batch_size=32, epochs=3, shuffle=True,
                           page_cache="warm")


def _ok(peer: str, variant: str, rates: list[float]) -> dict:
    epoch_s = [WORKLOAD.n / rate for rate in rates]
    return {"peer": peer, "variant": variant, "status": "ok", "epoch_s": epoch_s, "ttfb_s": 0.05,
            "prepare_s": 0.0, "peak_uss_mb": 120.0, "peak_pss_mb": 130.0, "user_code_lines": 12,
            "shuffle_note": "", "settings": {"num_workers": 0}, "versions": {"torch": "2.13.0"}}


@pytest.fixture
def frame() -> pd.DataFrame:
    results = [
        _ok("native", "documented", [300_000.0, 310_000.0, 290_000.0]),
        _ok("expert_torch", "uint8_preloaded", [200_000.0, 210_000.0, 190_000.0]),
        _ok("hf_datasets", "documented", [20_000.0, 21_000.0, 19_000.0]),
        {"peer": "spdl", "variant": "", "status": "unavailable", "reason": "spdl is not installed"},
    ]
    rows = [row for result in results for row in _rows(_target(), result, WORKLOAD)]
    return mark_fastest(pd.DataFrame(rows))


def test_one_row_per_epoch_and_fastest_marked(frame: pd.DataFrame) -> None:
    assert len(frame) == 3 * 3 + 1
    assert frame.loc[frame["fastest"], "loader"].unique().tolist() == ["native"]
    table = medians("peers", frame)
    native = table[table["loader"] == "native"].iloc[0]
    assert native["samples_per_s"] == 300_000.0
    assert native["samples_per_s_min"] == 290_000.0 and native["samples_per_s_max"] == 310_000.0
    assert native["first_batch_ms"] == pytest.approx(50.0)


def test_verdict_names_the_strongest_other_and_missing_peers(frame: pd.DataFrame) -> None:
    lines = peer_verdict(medians("peers", frame))
    assert any("fastest native / documented" in line for line in lines)
    assert any("1.50x the strongest other loader, expert_torch / uint8_preloaded" in line for line in lines)
    assert any("spdl unavailable: spdl is not installed" in line for line in lines)


def test_no_peer_ran_is_said() -> None:
    rows = _rows(_target(), {"peer": "spdl", "variant": "", "status": "error", "reason": "boom"}, WORKLOAD)
    frame = mark_fastest(pd.DataFrame(rows))
    assert not frame["fastest"].any()
    assert peer_verdict(medians("peers", frame))[0] == "data-100x100: no peer ran."


def test_report_and_terminal_show_the_peer_table(frame: pd.DataFrame, tmp_path: Path) -> None:
    write_track(tmp_path, "peers", frame)
    out = render_report(tmp_path)
    assert (tmp_path / "plots" / "peers.png").stat().st_size > 0
    html = Path(out["html"]).read_text()
    assert "Peers: the loaders users could pick instead" in html and "spdl is not installed" in html
    text = summary_table(tmp_path)
    assert "native / documented" in text and "* fastest" in text
    assert "1.50x the strongest other loader" in text


def test_peer_names_checked() -> None:
    assert "expert_torch" in peer_names([])
    assert peer_names(["native"]) == ["native"]
    with pytest.raises(ConfigError, match="unknown peer"):
        peer_names(["nope"])


def test_peers_config_is_validated(tmp_path: Path) -> None:
    cfg = load_config("quick", overrides={"tracks": ["peers"]})
    assert cfg.peers.batch_size == 32 and cfg.peers.epochs == 3
    bad = tmp_path / "bad.toml"
    bad.write_text("[peers]\nepochs = 0\n")
    with pytest.raises(ConfigError, match="peers.epochs"):
        load_config("quick", config_file=bad)


def test_warm_and_cold_are_compared_apart(tmp_path: Path) -> None:
    """A cold workload runs only the streaming loaders: its fastest mark and verdict are its own, not the warm one's."""
    warm, cold = WORKLOAD, SimpleNamespace(**{**vars(WORKLOAD), "page_cache": "cold"})
    results = [
        (_ok("native", "tuned", [300_000.0] * 3), warm),
        (_ok("expert_torch", "uint8_preloaded", [200_000.0] * 3), warm),
        (_ok("native", "streaming", [40_000.0] * 3), cold),
        (_ok("lance_torch", "documented", [10_000.0] * 3), cold),
        ({"peer": "expert_torch", "variant": "uint8_preloaded", "status": "skipped",
          "reason": "holds the whole dataset in memory"}, cold),
    ]
    frame = mark_fastest(pd.DataFrame([row for result, w in results for row in _rows(_target(), result, w)]))
    fastest = frame[frame["fastest"]].groupby("page_cache")["variant"].first().to_dict()
    assert fastest == {"warm": "tuned", "cold": "streaming"}
    lines = peer_verdict(medians("peers", frame))
    assert "data-100x100: native (native / tuned) is 1.50x the strongest other loader" in " ".join(lines)
    assert any(line.startswith("data-100x100 (cold page cache): native (native / streaming) is 4.00x the strongest "
                               "other loader, lance_torch / documented") for line in lines)
    assert any("(cold page cache): expert_torch / uint8_preloaded skipped: holds the whole dataset" in line
               for line in lines)
    write_track(tmp_path, "peers", frame)
    render_report(tmp_path)
    text = summary_table(tmp_path)
    assert "data-100x100 (cold)" in text and "page cache cold): native 40,000 samples/s is 4.00x" in text
