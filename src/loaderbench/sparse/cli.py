"""``loaderbench sparse generate | read-chunks | data-loader``: ``register(subparsers)`` adds them to the main CLI.

Errors are raised as exceptions with one clear message (``ValueError`` subclasses for bad block specs and bad input
files); the main CLI prints them as one line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DEFAULT_BLOCK_SPECS = {"quick": ["8192 / [8, 256]"], "full": [
    "8192 / [1, 512]", "16384 / [1,1024]", "32768 / [1,2048]", "65536 / [1,2048]", "131072 / [1,2048]",
]}
DEFAULT_METHODS = ("np.array,scipy.csr,native,native_streaming,torch,scdataset,annbatch,annbatch_collection,"
                   "tiledbsoma_ml,tiledbsoma_ml_docs,cellxgene_census")
#: --peers: the native loaders beside every peer (``sparse.peers.PEERS``; the seed's np.array and scipy.csr are
#: methods, not peers)
NATIVE_LOADERS = "native,native_streaming"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("quick", "full"), default="quick",
                        help="generated data size: quick (20,000 cells, default) or full (1,000,000 cells)")
    parser.add_argument("--input", metavar="PATH",
                        help="your own .h5ad (a CSR matrix; any anndata version) or SOMA-like COO .parquet "
                        "(soma_dim_0, soma_dim_1, soma_data) instead of generated data")
    parser.add_argument("--matrix", default="X", metavar="NAME",
                        help="with an --input .h5ad: the CSR matrix to read: X (default), raw.X or layers/NAME")
    parser.add_argument("--n-cells", type=int, metavar="N",
                        help="with an --input .parquet: the number of cells (default: its shape metadata, else the "
                        "largest soma_dim_0 + 1)")
    parser.add_argument("--n-genes", type=int, metavar="N",
                        help="with an --input .parquet: the number of genes (default: its shape metadata, else the "
                        "largest soma_dim_1 + 1)")
    parser.add_argument("--data-dir", default="data", metavar="DIR", help="where generated data is cached (data)")
    parser.add_argument("--out", default="results", metavar="DIR", help="results directory (results)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _dataset(args: argparse.Namespace, formats: list[str] | None = None) -> Any:
    from loaderbench.progress import Progress  # noqa: PLC0415
    from loaderbench.sparse.datagen import prepare_sparse_dataset  # noqa: PLC0415

    progress = Progress(quiet=args.quiet)
    dataset = prepare_sparse_dataset(args.preset, args.data_dir, args.input, formats, progress, args.n_genes,
                                     n_cells=args.n_cells, matrix=args.matrix)
    for note in dataset.notes:  # what was inferred or converted from the user's file: shown even with --quiet
        print(f"{dataset.name}: {note}")
    return dataset, progress


def _render(out_dir: str) -> Any:
    """Re-render ``report.html`` so the new rows appear beside any other results in ``out_dir``."""
    from loaderbench.report import render_report  # noqa: PLC0415

    return render_report(out_dir)["html"]


def cmd_generate(args: argparse.Namespace) -> int:
    from loaderbench.results import atomic_write_bytes  # noqa: PLC0415

    dataset, _ = _dataset(args, args.formats)
    record = dataset.record()
    for name, reason in dataset.skipped.items():
        print(f"{name}: not written ({reason})")
    for name, path in dataset.paths.items():
        print(f"{name}: {path}")
    print(f"{dataset.n_obs} cells x {dataset.n_vars} genes, {dataset.nnz} non-zeros")
    atomic_write_bytes(Path(args.out) / "sparse_dataset.json", (json.dumps(record, indent=2) + "\n").encode())
    return 0


def cmd_read_chunks(args: argparse.Namespace) -> int:
    from loaderbench.results import write_track  # noqa: PLC0415
    from loaderbench.sparse import READ_CHUNKS_TRACK  # noqa: PLC0415
    from loaderbench.sparse.read_chunks import DEFAULT_CHUNK_SIZE, run_read_chunks, summary_table  # noqa: PLC0415

    levels = [args.shuffle] if args.shuffle else [0, 1, 2]
    formats = ["parquet", "soma"] if "tiledbsoma" in args.backend else ["parquet"]
    dataset, progress = _dataset(args, formats)
    df = run_read_chunks(dataset, args.chunk_size or [DEFAULT_CHUNK_SIZE], levels, args.backend, args.repeats,
                         args.seed, progress)
    path = write_track(args.out, READ_CHUNKS_TRACK, df)
    print("\nMedian elapsed per reader (columns: shuffle strategy):")
    print(summary_table(df))
    print(f"\nWrote {path}; section in {_render(args.out)}")
    return 0


def cmd_data_loader(args: argparse.Namespace) -> int:
    from loaderbench.sparse.blocks import parse_block_specs  # noqa: PLC0415
    from loaderbench.sparse.data_loader import append_epochs, expand_settings, run_data_loader  # noqa: PLC0415
    from loaderbench.sparse.plots import speed_vs_memory  # noqa: PLC0415
    from loaderbench.sparse.report import sparse_table  # noqa: PLC0415

    specs = parse_block_specs(args.block_specs or DEFAULT_BLOCK_SPECS[args.preset])
    if args.peers and args.method is not None:
        raise SystemExit("loaderbench sparse data-loader: give --peers or -m/--method, not both")
    if args.peers:
        from loaderbench.sparse.peers import PEERS  # noqa: PLC0415 - the peers import torch: not for --help

        chosen = ",".join([NATIVE_LOADERS, *PEERS])
    else:
        chosen = args.method or DEFAULT_METHODS
    methods = [m.strip() for m in chosen.split(",") if m.strip()]
    settings = expand_settings(specs, methods, batch_size=args.batch_size, shuffle=args.shuffle, seed=args.seed,
                               threads=args.threads, workers=args.workers)
    dataset, progress = _dataset(args)
    df = run_data_loader(dataset, settings, epochs=args.epochs, max_batches=args.max_batches,
                         include_first_batch=args.include_first_batch, gc_freq=args.gc_freq,
                         isolate=not args.in_process, progress=progress)
    path = append_epochs(args.out, df)
    plot = speed_vs_memory(df, args.out)
    if not df.empty:  # the table of this run: every loader, the fastest marked
        print("\n" + sparse_table(df))
    print(f"\nAppended {len(df)} epoch row(s) to {path}" + (f"; plot {plot}" if plot else "")
          + f"; section in {_render(args.out)}")
    return 0


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``sparse`` and its sub-commands to the main parser's sub-parsers."""
    sparse = subparsers.add_parser(
        "sparse", help="sparse cell x gene benchmark (arrayloader-benchmarks): generate, read-chunks, data-loader",
        description="Single-cell count matrices (cells x genes, ~90% zeros) loaded into dense torch batches: "
        "storage layout, shuffle strategy, block/chunk sizes and conversion method against speed and memory.")
    sub = sparse.add_subparsers(dest="sparse_command", required=True, metavar="SUBCOMMAND")

    gen = sub.add_parser("generate", help="generate (or convert --input) and cache the matrix in every format",
                         description="Generate the seeded counts matrix (cached by config hash) as SOMA-like COO "
                         "Parquet, .h5ad, annbatch-style Zarr and TileDB-SOMA; or check --input and convert it.")
    _common(gen)
    gen.add_argument("--formats", nargs="+", choices=("parquet", "h5ad", "zarr", "soma"), metavar="FMT",
                     help="formats to write (default all: parquet h5ad zarr soma)")
    gen.set_defaults(func=cmd_generate)

    read = sub.add_parser("read-chunks", help="time the seed's four chunk readers under three shuffle strategies",
                          description="Read every chunk of cells with read_table, read_blockwise_table, "
                          "read_blockwise_scipy_coo and read_blockwise_scipy_csr; print and record each elapsed "
                          "time (sparse_read_chunks.parquet).")
    _common(read)
    read.add_argument("-s", "--shuffle", action="count", default=0,
                      help="-s: intra-chunk shuffle, -ss: global shuffle (default: all three strategies)")
    read.add_argument("-c", "--chunk-size", type=int, action="append", metavar="N",
                      help="cells per chunk (repeatable; default 10000, the seed's)")
    read.add_argument("--backend", nargs="+", choices=("parquet", "tiledbsoma"), default=["parquet", "tiledbsoma"],
                      help="what to read: the COO Parquet and/or the TileDB-SOMA array (default both)")
    read.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (default 3)")
    read.add_argument("--seed", type=int, default=0, help="shuffle seed")
    read.set_defaults(func=cmd_read_chunks)

    dl = sub.add_parser("data-loader", help="epochs of dense batches per block spec x method; speed vs memory",
                        description="Run epochs for every block spec x method (and peer); append one row per epoch "
                        "to sparse_epochs.parquet and draw plots/sparse_speed_vs_memory.png. Block specs: 'C' "
                        "(chunk size), 'NxC' (N chunks of C rows), 'B / K' or 'B / [a, b]' (B-row blocks in K = a, "
                        "2a ... b chunks).")
    _common(dl)
    dl.add_argument("-b", "--block-specs", action="append", metavar="SPEC",
                    help="block spec (repeatable); default quick: '8192 / [8, 256]', full: the seed's five")
    dl.add_argument("-B", "--batch-size", type=int, default=1024, help="cells per batch (default 1024)")
    dl.add_argument("-E", "--epochs", type=int, default=3, help="epochs per configuration (default 3)")
    dl.add_argument("--peers", action="store_true",
                    help="the peer table: the native loaders and every peer (torch, scDataset, annbatch, "
                    "tiledbsoma-ml, cellxgene-census; their documented and matched settings), with samples/s, first "
                    "batch, peak memory and lines of user code, the fastest marked")
    dl.add_argument("-m", "--method", default=None,
                    help=f"comma-separated methods and peers (default {DEFAULT_METHODS}; also "
                    "annbatch_collection_zarrpython). Peers: torch, scdataset, annbatch (matched settings over "
                    "cells.zarr, in its own Python >= 3.12 venv), annbatch_collection (its docs: pre-shuffled "
                    "collection, 32 x 256), tiledbsoma_ml (matched), tiledbsoma_ml_docs (its defaults: 64 x 1024), "
                    "cellxgene_census (the seed's ExperimentDataPipe)")
    dl.add_argument("-n", "--max-batches", type=int, default=0, help="stop an epoch after N batches (0: no limit)")
    dl.add_argument("--include-first-batch", action="store_true",
                    help="count the first batch (start-up) in samples/s (default: timed apart, as the seed)")
    dl.add_argument("-g", "--gc-freq", type=int, default=10, help="gc.collect() every N batches (0: never)")
    dl.add_argument("--shuffle", choices=("block", "none", "random"), default="block", help="row order (block)")
    dl.add_argument("--threads", type=_ints, default=[1, 2], metavar="N,N", help="native threads (1,2)")
    dl.add_argument("--workers", type=_ints, default=[0, 2], metavar="N,N",
                    help="DataLoader workers of the torch, scDataset, tiledbsoma_ml and cellxgene_census peers (0,2)")
    dl.add_argument("--seed", type=int, default=0, help="shuffle seed")
    dl.add_argument("--in-process", action="store_true",
                    help="run every configuration in this process (default: a fresh process each, so that peak "
                    "memory is its own)")
    dl.set_defaults(func=cmd_data_loader)
    return sparse
