"""Native sparse loader vs its peers on the same cell x gene data: samples/s and peak memory.

Every loader yields dense float32 ``[4096, genes]`` batches in the same block-shuffle order quality: chunks of
``chunk_size`` contiguous cells, ``chunks_per_block`` chunks shuffled together (quick: 16 x 1,024 cells; full:
64 x 1,024). Each configuration runs in a fresh Python process (``loaderbench.sparse.measure``), so its peak memory
(PSS of the process and its DataLoader workers, over set-up and all epochs) is its own. samples/s is the median over
the epochs after the first (the first pays allocation and worker start-up), whole epochs timed (first batch included).

Peers (``loaderbench.sparse.peers``): the torch DataLoader over in-memory CSR rows (0 and 2 workers), scDataset over
the backed .h5ad (0 and 2 workers), annbatch in its own Python >= 3.12 venv (matched settings over the sharded Zarr;
its docs' pre-shuffled collection, 32 x 256 chunks, with and without the zarrs codec pipeline), tiledbsoma-ml's
ExperimentDataset (matched; its defaults 64 x 1024, 0 and 2 workers) and cellxgene-census' ExperimentDataPipe (the
seed's loader, matched) over the TileDB-SOMA experiment. A peer that cannot run here is a row with its reason. The
seed's methods (np.array, scipy.csr) are measured too and reported as raw figures.

Two workloads, each its own peer table: the generated data (or ``--input``), then a real cell x gene matrix, scanpy's
``pbmc68k_reduced`` ``raw.X`` (700 cells x 765 genes, taken from the scanpy wheel with ``pip download``; batches of
64, block shuffle 32 x 4, 20 epochs: ``REAL_CHUNKING``; ``gc.collect()`` as often per cell as in the first), whose
figures are in ``other_workloads`` (or its reason, when the wheel cannot be downloaded; ``--no-real`` skips it).

Prints the peer table (samples/s, time to first batch, peak USS/PSS, status or reason) and, last, one JSON line:
``p5_speedup_vs_best_peer`` = native samples/s / the best peer's, the peak memory of each, the raw figures,
``target`` (2), ``met`` (speedup >= target at no more peak memory than that peer) and the hardware. The native side
is the fastest native configuration whose peak PSS is no more than the best peer's (the in-memory loader, which
holds the whole CSR, or the streaming loader, which holds the blocks in flight); when none is, the fastest one.

    python benchmarks/sparse_loader.py --mode quick     # ~20,000 cells; a few minutes
    python benchmarks/sparse_loader.py --mode full      # 1,000,000 cells; long, needs a large machine
    python benchmarks/sparse_loader.py --only annbatch,tiledbsoma_ml   # the native rows and these peers only
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from loaderbench import example_data
from loaderbench.progress import Progress
from loaderbench.results import collect_environment
from loaderbench.sparse.datagen import prepare_sparse_dataset
from loaderbench.sparse.measure import RunSpec, run_spec_isolated
from loaderbench.sparse.methods import LoaderSettings
from loaderbench.sparse.peers import docs_settings

TARGET = 2.0
BATCH = 4096
MODES = {
    "quick": {"chunk_size": 1024, "chunks_per_block": 16, "epochs": 8},
    "full": {"chunk_size": 1024, "chunks_per_block": 64, "epochs": 3},
}
#: (label, method, extra settings); the native row compared is the first one: 2 threads (this machine's cores)
#: assembling each batch on demand (prefetch 0, one batch buffer: the leanest memory; the loop here does no work
#: between batches for a prefetch to overlap with). The default (2 batches ahead) is measured beside it.
NATIVE = [("native x2 prefetch 0", "native", {"num_threads": 2, "prefetch": 0}),
          ("native x2", "native", {"num_threads": 2}),
          ("native streaming x2", "native_streaming", {"num_threads": 2})]
PEERS = [("torch w0", "torch", {"num_workers": 0}), ("torch w2", "torch", {"num_workers": 2}),
         ("scdataset w0", "scdataset", {"num_workers": 0}), ("scdataset w2", "scdataset", {"num_workers": 2}),
         ("annbatch matched", "annbatch", {}),
         ("annbatch docs", "annbatch_collection", {}),
         ("annbatch docs, zarr-python", "annbatch_collection_zarrpython", {}),
         ("tiledbsoma_ml matched w0", "tiledbsoma_ml", {"num_workers": 0}),
         ("tiledbsoma_ml docs w0", "tiledbsoma_ml_docs", {"num_workers": 0}),
         ("tiledbsoma_ml docs w2", "tiledbsoma_ml_docs", {"num_workers": 2}),
         ("cellxgene_census w0", "cellxgene_census", {"num_workers": 0})]
SEED_METHODS = [("np.array", "np.array", {}), ("scipy.csr", "scipy.csr", {})]
#: gc.collect() every this many batches of BATCH cells (the seed's rate); other batch sizes keep its rate per cell
GC_FREQ = 10
#: the real matrix's workload (700 cells): 22 chunks of 32 cells, 4 per block, batches of 64 (annbatch needs a block
#: of whole batches), more epochs (an epoch is 11 batches)
REAL_CHUNKING = {"chunk_size": 32, "chunks_per_block": 4, "epochs": 20, "batch_size": 64}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return {"status": rows[0]["status"], "reason": rows[0]["reason"]}
    warm = [r["samples_per_s"] for r in ok if r["repeat"] > 0] or [r["samples_per_s"] for r in ok]
    return {
        "status": "ok",
        "samples_per_s": statistics.median(warm),
        "samples_per_s_min": min(warm),
        "samples_per_s_max": max(warm),
        "epochs_samples_per_s": [round(r["samples_per_s"], 1) for r in ok],
        "peak_pss_mb": max(max(r["peak_pss_mb"], r["setup_peak_pss_mb"]) for r in ok),
        "peak_uss_mb": max(max(r["peak_uss_mb"], r["setup_peak_uss_mb"]) for r in ok),
        "epoch_peak_pss_mb": max(r["peak_pss_mb"] for r in ok),
        "first_batch_ms": ok[0]["first_batch_ms"],  # epoch 0: start-up (workers, first block, JIT) included
        "first_batch_ms_warm": statistics.median(r["first_batch_ms"] for r in ok[1:]) if len(ok) > 1 else math.nan,
        "setup_s": ok[0]["setup_s"],
        "chunking": f"{ok[0]['chunk_size']}x{ok[0]['chunks_per_block']}",
    }


def pick_native(figures: dict[str, dict[str, Any]], best_peer: dict[str, Any] | None) -> str:
    """The native configuration compared: the fastest whose peak PSS is at most the best peer's, else the fastest
    (or the first, when none ran)."""
    ran = [label for label, _, _ in NATIVE if figures[label]["status"] == "ok"]
    if not ran:
        return NATIVE[0][0]
    lean = [label for label in ran if best_peer is None or figures[label]["peak_pss_mb"] <= best_peer["peak_pss_mb"]]
    return max(lean or ran, key=lambda label: figures[label]["samples_per_s"])


def print_table(figures: dict[str, dict[str, Any]], native: dict[str, Any], workload: str) -> None:
    """Every loader's figures as one table (peers that cannot run: their reason)."""
    print(f"\n{workload}")
    print(f"{'loader':30s} {'chunking':>10s} {'samples/s':>11s} {'native x':>9s} {'1st batch ms':>13s} "
          f"{'warm 1st ms':>12s} {'peak USS':>9s} {'peak PSS':>9s}  status")
    for label, f in figures.items():
        if f["status"] != "ok":
            print(f"{label:30s} {'':>10s} {'':>11s} {'':>9s} {'':>13s} {'':>12s} {'':>9s} {'':>9s}  "
                  f"{f['status']}: {f['reason']}")
            continue
        ratio = native["samples_per_s"] / f["samples_per_s"] if native.get("status") == "ok" else math.nan
        print(f"{label:30s} {f['chunking']:>10s} {f['samples_per_s']:>11,.0f} {ratio:>9.2f} "
              f"{f['first_batch_ms']:>13,.0f} {f['first_batch_ms_warm']:>12,.0f} {f['peak_uss_mb']:>8,.0f}M "
              f"{f['peak_pss_mb']:>8,.0f}M  ok")


def measure_workload(dataset: Any, chunking: dict[str, int], peers: list, progress: Progress) -> dict[str, Any]:
    """Every native configuration, peer and seed method on ``dataset`` (each in a fresh process), the table printed;
    the figures and the native / best-peer ratio."""
    paths = {k: str(v) for k, v in dataset.paths.items()}
    batch = chunking["batch_size"]
    figures: dict[str, dict[str, Any]] = {}
    for label, method, extra in (*NATIVE, *peers, *SEED_METHODS):
        settings = docs_settings(LoaderSettings(method=method, chunk_size=chunking["chunk_size"],
                                                chunks_per_block=chunking["chunks_per_block"], batch_size=batch,
                                                shuffle="block", **extra))
        progress(f"{dataset.name}: {label}: {chunking['epochs']} epochs in a fresh process")
        spec = RunSpec(paths=paths, settings=settings, dataset=dataset.name, epochs=chunking["epochs"],
                       include_first_batch=True, gc_freq=max(1, GC_FREQ * BATCH // batch),
                       shape=(dataset.n_obs, dataset.n_vars))
        figures[label] = summarise(run_spec_isolated(spec))
        f = figures[label]
        if f["status"] == "ok":
            print(f"{label:30s} {f['samples_per_s']:>12,.0f} samples/s  peak PSS {f['peak_pss_mb']:>8,.0f} MiB  "
                  f"(epochs: {f['epochs_samples_per_s']})")
        else:
            print(f"{label:30s} {f['status']}: {f['reason']}")
    ran = {label: figures[label] for label, _, _ in peers if figures[label]["status"] == "ok"}
    best_label = max(ran, key=lambda k: ran[k]["samples_per_s"]) if ran else None
    native_label = pick_native(figures, ran[best_label] if best_label else None)
    native = figures[native_label]
    print_table(figures, native, f"{dataset.name} ({dataset.n_obs:,} cells x {dataset.n_vars:,} genes, "
                f"{dataset.nnz:,} non-zeros): batch {batch}, block shuffle {chunking['chunk_size']} x "
                f"{chunking['chunks_per_block']} (docs rows: their own chunking), {chunking['epochs']} epochs; "
                f"native x = {native_label} / each")
    speedup = math.nan
    met = False
    if best_label and native["status"] == "ok":
        best = ran[best_label]
        speedup = native["samples_per_s"] / best["samples_per_s"]
        met = speedup >= TARGET and native["peak_pss_mb"] <= best["peak_pss_mb"]
    return {
        "p5_speedup_vs_best_peer": round(speedup, 3) if speedup == speedup else None,
        "target": TARGET,
        "met": met,
        "native": native_label,
        "best_peer": best_label,
        "native_peak_pss_mb": round(native.get("peak_pss_mb", math.nan), 1),
        "best_peer_peak_pss_mb": round(ran[best_label]["peak_pss_mb"], 1) if best_label else None,
        "peak_pss_mb": {k: round(v["peak_pss_mb"], 1) for k, v in figures.items() if v["status"] == "ok"},
        "samples_per_s": {k: round(v["samples_per_s"], 1) for k, v in figures.items() if v["status"] == "ok"},
        "unavailable": {k: v["reason"] for k, v in figures.items() if v["status"] != "ok"},
        "native_speedup_vs_peer": {k: round(native["samples_per_s"] / v["samples_per_s"], 3)
                                   for k, v in ran.items() if native["status"] == "ok"},
        "native_peak_pss_le_peer": {k: native.get("peak_pss_mb", math.inf) <= v["peak_pss_mb"]
                                    for k, v in ran.items()},
        "first_batch_ms": {k: round(v["first_batch_ms"], 1) for k, v in figures.items() if v["status"] == "ok"},
        "raw": figures,
        "settings": {"batch_size": batch, "dtype": "float32", "output": "dense", "shuffle": "block",
                     "chunk_size": chunking["chunk_size"], "chunks_per_block": chunking["chunks_per_block"],
                     "epochs": chunking["epochs"], "rate": "median samples/s of epochs 1..N-1, whole epochs timed",
                     "gc_collect_every_batches": max(1, GC_FREQ * BATCH // batch),
                     "memory": "peak PSS of a fresh process + its workers, set-up and epochs"},
        "data": {"name": dataset.name, "n_obs": dataset.n_obs, "n_vars": dataset.n_vars, "nnz": dataset.nnz,
                 "source": dataset.source},
    }


def real_dataset(mode: str, data_dir: str, progress: Progress) -> Any:
    """scanpy's pbmc68k_reduced ``raw.X`` (700 cells x 765 genes, a real matrix) converted for every loader."""
    root = Path(data_dir)
    path = example_data.extract("pbmc68k", root / "wheels", root / "real")
    if path is None:
        raise example_data.ExampleDataUnavailable("the scanpy wheel has no pbmc68k_reduced.h5ad")
    return prepare_sparse_dataset(mode, data_dir, str(path), progress=progress, matrix="raw.X")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=tuple(MODES), default="quick")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--input", help="your own .h5ad or SOMA-like COO .parquet instead of generated data")
    parser.add_argument("--only", help="comma-separated peer methods to run (default: every peer)")
    parser.add_argument("--no-real", action="store_true",
                        help="skip the second workload, scanpy's pbmc68k_reduced (real cells; needs pip download)")
    args = parser.parse_args()
    only = {m.strip() for m in args.only.split(",")} if args.only else None
    peers = [p for p in PEERS if only is None or p[1] in only]
    progress = Progress()
    dataset = prepare_sparse_dataset(args.mode, args.data_dir, args.input, progress=progress)
    main_figures = measure_workload(dataset, {**MODES[args.mode], "batch_size": BATCH}, peers, progress)
    workloads: dict[str, Any] = {dataset.name: main_figures}  # each workload: its own peer table
    if not args.no_real:
        try:
            real = real_dataset(args.mode, args.data_dir, progress)
        except example_data.ExampleDataUnavailable as exc:
            progress(f"real matrix: unavailable: {exc}")
            workloads["pbmc68k_reduced"] = {"status": "unavailable", "reason": str(exc)}
        else:
            workloads[real.name] = measure_workload(real, REAL_CHUNKING, peers, progress)
    result = {
        "benchmark": "sparse_loader",
        "mode": args.mode,
        **main_figures,  # the first workload: the generated data (or --input)
        "other_workloads": {name: figures for name, figures in workloads.items() if name != dataset.name},
        "hardware": collect_environment()["hardware"],
    }
    print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
