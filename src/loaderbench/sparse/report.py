"""The sparse benchmark's sections of ``report.html``: ``sparse_sections(out_dir)`` gives ``(title, html)`` pairs
for ``render_html(out_dir, extra_sections=...)``. Each html is self-contained (the PNG inline as base64) and every
value from the data is escaped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.report.html import embedded_png, html_table
from loaderbench.report.html import escape_html as _e
from loaderbench.results import read_track
from loaderbench.sparse import EPOCHS_TRACK, READ_CHUNKS_TRACK, RUN_TRACK
from loaderbench.sparse.data_loader import per_config
from loaderbench.sparse.methods import NATIVE_METHODS
from loaderbench.sparse.plots import speed_vs_memory
from loaderbench.sparse.read_chunks import READERS, SHUFFLES, summary_table


def _number(value: Any, digits: int = 0) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value)
    return "–" if number != number else f"{number:,.{digits}f}"


def _td(text: str, numeric: bool = False) -> str:
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def epoch_rows(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every epoch row on disk: ``sparse_epochs.parquet`` (the command) and ``sparse.parquet`` (the track)."""
    frames = [read_track(out_dir, name) for name in (EPOCHS_TRACK, RUN_TRACK)]
    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _speed_section(out_dir: Path, epochs: pd.DataFrame) -> str:
    parts = []
    png = speed_vs_memory(epochs, out_dir)
    if png is not None:
        parts.append(embedded_png(png, "speed vs memory", ""))
    table = per_config(epochs)
    ok = table[table["status"] == "ok"].sort_values(["block_size", "chunks_per_block", "loader"])
    rows = []
    for _, r in ok.iterrows():
        how = (f"{int(r['num_threads'])} threads" if r["loader"] in NATIVE_METHODS else
               f"{int(r['num_workers'])} workers" if r["loader"] in ("torch", "scdataset") else "")
        name = _e(r["loader"]) + (' <span class="best-mark" title="fastest">★ fastest</span>'
                                  if bool(r.get("fastest")) else "")
        lines = r.get("user_code_lines")
        rows.append([_td(name), _td(_e(how)), _td(_e(r["block_spec"])), _td(_number(r["block_size"]), True),
                     _td(_number(r["batch_size"]), True), _td(_e(r["shuffle"])),
                     _td(_number(r["samples_per_s"]), True), _td(_number(r["peak_pss_mb"]), True),
                     _td(_number(r["peak_uss_mb"]), True), _td(_number(r["first_batch_ms"]), True),
                     _td(_number(r["epochs"]), True),
                     _td("-" if lines is None or pd.isna(lines) else _number(lines), True)])
    if rows:
        header = ["loader", "parallelism", "block spec (chunks x rows)", "block rows", "batch", "shuffle",
                  "samples/s (median, warm epochs)", "peak PSS MiB", "peak USS MiB", "first batch ms", "epochs",
                  "user code lines"]
        parts.append(html_table(header, rows))
    missing = table[table["status"] != "ok"].drop_duplicates(["loader", "status", "reason"])
    if not missing.empty:
        items = "".join(f"<li><b>{_e(r['loader'])}</b> ({_e(r['status'])}): {_e(r['reason'])}</li>"
                        for _, r in missing.iterrows())
        parts.append(f'<div class="warn"><p>Peers or methods without figures:</p><ul>{items}</ul></div>')
    parts.append('<p class="note">One point per configuration: median samples/s over the epochs after the first '
                 "(the first epoch pays allocation and start-up), peak PSS of the process and its DataLoader workers "
                 "over all epochs. Block spec NxC: N chunks of C contiguous cells shuffled together.</p>")
    return "".join(parts)


def _read_chunks_section(df: pd.DataFrame) -> str:
    ok = df[df["status"] == "ok"] if "status" in df else df
    parts = []
    if not ok.empty:
        table = ok.pivot_table(index=["format", "chunk_size", "reader"], columns="shuffle", values="elapsed_s",
                               aggfunc="median")
        shuffles = [s for s in SHUFFLES.values() if s in table.columns]
        order = sorted(table.index, key=lambda k: (k[0], k[1], READERS.index(k[2]) if k[2] in READERS else 99))
        rows = []
        for (fmt, chunk, reader), values in table.loc[order].iterrows():
            rows.append([_td(_e(fmt)), _td(_number(chunk), True), _td(_e(reader)),
                         *(_td(_number(values[s], 2), True) for s in shuffles)])
        parts.append(html_table(["format", "chunk size", "reader", *(f"{s} (s)" for s in shuffles)], rows))
    missing = df[df["status"] != "ok"] if "status" in df else df.iloc[0:0]
    for _, r in missing.iterrows():
        parts.append(f'<p class="warn">{_e(r["format"])}: {_e(r["reason"])}</p>')
    parts.append('<p class="note">Elapsed seconds to read every chunk of cells (median over repeats). Shuffle: '
                 "none; intra-chunk (ids permuted inside each chunk, the seed's -s); "
                 "global (all ids permuted, -ss).</p>")
    return "".join(parts)


def sparse_sections(out_dir: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(title, html)`` for each sparse result present in ``out_dir`` (none when there are none)."""
    out = Path(out_dir)
    sections = []
    epochs = epoch_rows(out)
    if not epochs.empty:
        sections.append(("Sparse cell x gene loading: speed vs memory", _speed_section(out, epochs)))
    chunks = read_track(out, READ_CHUNKS_TRACK)
    if chunks is not None and not chunks.empty:
        sections.append(("Sparse: reading chunks with three shuffle strategies", _read_chunks_section(chunks)))
    return sections


def sparse_table(epochs: pd.DataFrame) -> str:
    """Epoch rows as the terminal's table: one line per configuration, the fastest of each dataset marked."""
    table = per_config(epochs)
    columns = [c for c in ("dataset", "loader", "block_spec", "num_threads", "num_workers", "samples_per_s",
                           "first_batch_ms", "peak_uss_mb", "peak_pss_mb", "user_code_lines", "status")
               if c in table]
    shown = table[columns].assign(fastest=table["fastest"].map({True: "* fastest", False: ""}))
    return ("== Sparse data loader [sparse] (median samples/s over warm epochs, first batch ms, peak USS/PSS MiB "
            "incl. workers, lines of user code) ==\n"
            + shown.to_string(index=False, float_format=lambda v: f"{v:,.0f}"))


def sparse_terminal(out_dir: str | os.PathLike[str]) -> list[str]:
    """The same results as plain-text blocks for the terminal summary."""
    out = Path(out_dir)
    blocks = []
    epochs = epoch_rows(out)
    if not epochs.empty:
        blocks.append(sparse_table(epochs))
    chunks = read_track(out, READ_CHUNKS_TRACK)
    if chunks is not None and not chunks.empty:
        blocks.append("== Sparse read-chunks [sparse_read_chunks] (median elapsed; columns: shuffle) ==\n"
                      + summary_table(chunks))
    return blocks
