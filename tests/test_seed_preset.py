"""The ``seed`` preset is the seed's configuration, and its runs are printed beside the seed's published figures."""

from __future__ import annotations

import pandas as pd

from loaderbench.config import load_config
from loaderbench.seed_figures import TRACK1_P95_MS, is_seed_run, seed_comparison_lines


def test_the_seed_preset_is_the_seeds_configuration() -> None:
    cfg = load_config("seed")
    assert (cfg.data.n_images, cfg.data.sizes, cfg.data.dtype, cfg.data.seed) == (1000, [[100, 100]], "uint8", 42)
    assert (cfg.getitem.repeats, cfg.getitem.samples, cfg.getitem.warmup) == (3, 100, 10)
    assert (cfg.dataloader.batch_sizes, cfg.dataloader.num_workers, cfg.dataloader.batches) == ([1, 4, 16], [0, 2, 4],
                                                                                                 50)
    e = cfg.end_to_end
    assert (e.steps, e.batch_size, e.num_workers, e.shuffle, e.transform) == (50, 16, 2, True, "normalize")
    assert (cfg.conversion.samples, cfg.conversion.warmup, cfg.conversion.repeats) == (100, 10, 3)
    assert is_seed_run(cfg.to_dict())
    assert not is_seed_run(load_config("quick").to_dict())


def test_seed_comparison_lines_put_ours_beside_the_seeds() -> None:
    getitem = pd.DataFrame(
        [{"format": "parquet", "loader": "naive", "access": "random", "transform": t, "p95_ms": v, "repeat": r}
         for t, v in (("none", 0.5), ("normalize", 0.7)) for r in range(3)]
    )
    end_to_end = pd.DataFrame([{"format": "lance", "loader": "preloaded", "step_p50_ms": 90.0,
                                "data_wait_fraction": 0.01}])
    lines = seed_comparison_lines(getitem, end_to_end)
    seed_p95 = TRACK1_P95_MS[("parquet", "random")]
    assert any(f"p95 0.600 ms (seed's: {seed_p95:.2f} ms, ours/seed's {0.6 / seed_p95:.2f})" in line for line in lines)
    assert any("Track 3 lance preloaded: step p50 90.0 ms (seed's: 78.6 ms), data wait 1.0% (seed's: 38.1%)" in line
               for line in lines)
    assert seed_comparison_lines(None, None) == []
