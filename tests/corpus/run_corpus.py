#!/usr/bin/env python
"""Run the malformed-input corpus: every case in a fresh subprocess, classified clean / crash / hang / silent /
unclear; exit 1 unless every case is clean.

    .venv/bin/python tests/corpus/run_corpus.py [--jobs 2] [--only PATTERN] [--json OUT] [--keep] [--list]

See README.md in this folder for what each class means and how to add a case.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import builders  # noqa: E402
from cases import CASES, CLEAN_TYPES, Case, Shared  # noqa: E402

CLASSES = ("clean", "crash", "hang", "silent", "unclear")
VERDICT = "CORPUS-VERDICT "
#: text that means the process died, whatever the case expected
CRASH_MARKERS = ("terminate called", "Segmentation fault", "double free", "AddressSanitizer", "MemoryError",
                 "SystemError", "Fatal Python error", "core dumped", "free(): invalid", "malloc(): ",
                 "corrupted size vs. prev_size", "stack smashing detected")
#: exit codes of a process killed by SIGABRT / SIGSEGV as a shell reports them
CRASH_CODES = (134, 139)

#: Sets the address-space limit, then execs the command: a limit set in ``preexec_fn`` would be unsafe here, as the
#: runner forks from several threads.
LIMITER = ("import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_AS, (n, n)); "
           "os.execv(sys.argv[2], sys.argv[2:])")

#: Put before every Python case's snippet; the snippet defines ``run()`` and the runner appends the call.
PRELUDE = '''
import json as _json
import os
import sys
from pathlib import Path

TMP = Path(os.environ["CORPUS_TMP"])
sys.path.insert(0, os.environ["CORPUS_DIR"])


class CheckFailed(Exception):
    """The data an ok case got back is not the data it put in."""


def check(condition, detail):
    if not condition:
        raise CheckFailed(detail)


def _verdict(**fields):
    sys.stdout.write("\\nCORPUS-VERDICT " + _json.dumps(fields, default=str) + "\\n")
    sys.stdout.flush()


def _run_case(run):
    try:
        run()
    except CheckFailed as exc:
        _verdict(raised=False, ok=False, detail=str(exc))
    except BaseException as exc:  # the corpus judges every exception, SystemExit and KeyboardInterrupt included
        _verdict(raised=True, type=type(exc).__name__, mro=[c.__name__ for c in type(exc).__mro__],
                 message=str(exc))
    else:
        _verdict(raised=False, ok=True)
'''


@dataclass
class Result:
    case: Case
    classification: str
    detail: str
    seconds: float
    returncode: int | None

    def record(self) -> dict[str, Any]:
        c = self.case
        return {"name": c.name, "category": c.category, "expect": c.expect, "classification": self.classification,
                "detail": self.detail, "seconds": round(self.seconds, 2), "returncode": self.returncode,
                "kind": "cli" if c.argv is not None else "python", "as_limit": c.as_limit, "timeout": c.timeout}


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


def _has_keywords(message: str, keywords: tuple[str | tuple[str, ...], ...], tmp: Path) -> list[str]:
    """The keywords (an item may be a tuple of alternatives) that ``message`` lacks, case-insensitively."""
    low = message.lower()
    missing = []
    for item in keywords:
        options = item if isinstance(item, tuple) else (item,)
        if not any(_fill(o, tmp).lower() in low for o in options):
            missing.append(" | ".join(options))
    return missing


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _crash(rc: int | None, text: str) -> str | None:
    if rc is not None and (rc < 0 or rc in CRASH_CODES):
        name = signal.Signals(-rc).name if rc < 0 and -rc in signal.Signals._value2member_map_ else str(rc)
        return f"killed by {name}" if rc < 0 else f"exit code {rc}"
    for marker in CRASH_MARKERS:
        if marker in text:
            line = next((ln for ln in text.splitlines() if marker in ln), marker)
            return f"{marker!r}: {_short(line)}"
    return None


def _judge_error(case: Case, raised_type: str, mro: list[str], message: str, tmp: Path) -> tuple[str, str]:
    """An exception an API snippet caught: (classification, detail)."""
    shown = f"{raised_type}: {_short(message)}"
    if raised_type in ("MemoryError", "SystemError"):
        return "crash", shown
    if case.expect == "ok":
        return "unclear", f"an ok case raised {shown}"
    allowed = CLEAN_TYPES + tuple(case.extra_types)
    if not set(mro) & set(allowed):
        return "unclear", f"wrong type {shown} (clean: {', '.join(allowed)})"
    if "incompatible function arguments" in message:
        return "unclear", f"binding signature error instead of a message: {shown}"
    if "Traceback" in message:
        return "unclear", f"a traceback inside the message: {shown}"
    if "\n" in message.strip():
        return "unclear", f"{message.strip().count(chr(10)) + 1}-line message: {shown}"
    missing = _has_keywords(message, case.keywords, tmp)
    if missing:
        return "unclear", f"message lacks {', '.join(repr(m) for m in missing)}: {shown}"
    return "clean", shown


def classify_python(case: Case, rc: int | None, out: str, err: str, tmp: Path) -> tuple[str, str]:
    crashed = _crash(rc, out + err)
    if crashed:
        return "crash", crashed
    lines = [ln for ln in out.splitlines() if ln.startswith(VERDICT)]
    if not lines:
        tail = _short(err.strip().splitlines()[-1] if err.strip() else out.strip()[-200:])
        return "unclear", f"no verdict (exit code {rc}): {tail}"
    verdict = json.loads(lines[-1][len(VERDICT):])
    if verdict["raised"]:
        outcome = _judge_error(case, verdict["type"], verdict["mro"], verdict["message"], tmp)
    elif not verdict["ok"]:
        outcome = ("silent", f"wrong data: {_short(verdict['detail'])}")
    elif case.expect == "error":
        outcome = ("silent", "no error raised")
    else:
        outcome = ("clean", "data checked")
    if outcome[0] == "clean" and rc != 0:
        return "unclear", f"exit code {rc} after the verdict: {_short(err.strip()[-200:])}"
    return outcome


def classify_cli(case: Case, rc: int | None, out: str, err: str, tmp: Path) -> tuple[str, str]:
    text = out + err
    crashed = _crash(rc, text)
    if crashed:
        return "crash", crashed
    if "Traceback" in text:
        line = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
        return "crash", f"Python traceback: {_short(line)}"
    error_lines = [ln for ln in err.splitlines() if re.search(r"\berror:", ln, re.IGNORECASE)]
    if case.expect == "ok":
        if rc != 0:
            return "unclear", f"an ok case failed (exit code {rc}): {_short(error_lines[-1] if error_lines else err)}"
        missing = [s for s in case.stdout_has if _fill(s, tmp) not in out]
        if missing:
            return "silent", f"exit code 0 but stdout lacks {', '.join(map(repr, missing))}"
        return "clean", "output checked"
    if rc == 0:
        if error_lines:
            return "unclear", f"exit code 0 with error text: {_short(error_lines[-1])}"
        return "silent", f"exit code 0: {_short(out.strip().splitlines()[-1] if out.strip() else 'no output')}"
    if not error_lines:
        return "unclear", f"exit code {rc} without an error line: {_short(err.strip()[-200:] or out.strip()[-200:])}"
    if len(error_lines) > 1:
        return "unclear", f"{len(error_lines)} error lines: {_short(' / '.join(error_lines))}"
    last = next(ln for ln in reversed(err.splitlines()) if ln.strip())
    if last != error_lines[0]:
        return "unclear", f"the error continues over several lines: {_short(error_lines[0])} / {_short(last)}"
    missing = _has_keywords(error_lines[0], case.keywords, tmp)
    if missing:
        return "unclear", f"message lacks {', '.join(repr(m) for m in missing)}: {_short(error_lines[0])}"
    return "clean", _short(error_lines[0])


def _command(case: Case, tmp: Path) -> list[str]:
    if case.argv is not None:
        loaderbench = Path(sys.executable).with_name("loaderbench")
        command = [str(loaderbench), *(_fill(a, tmp) for a in case.argv)]
    else:
        script = tmp / "case.py"
        script.write_text(PRELUDE + "\n" + textwrap.dedent(case.snippet) + "\n\n_run_case(run)\n")
        command = [sys.executable, str(script)]
    if case.as_limit:
        command = [sys.executable, "-c", LIMITER, str(case.as_limit), *command]
    return command


def run_case(case: Case, root: Path, shared: Shared, build_lock: threading.Lock) -> Result:
    tmp = root / re.sub(r"[^A-Za-z0-9_.-]+", "_", case.name)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    if case.build is not None:
        try:
            with build_lock:  # builders share cached base datasets; libraries writing them are not all thread-safe
                case.build(tmp, shared)
        except Exception as exc:  # noqa: BLE001 - a broken case is reported, the corpus goes on
            return Result(case, "unclear", f"the case's build failed: {type(exc).__name__}: {_short(str(exc))}",
                          time.perf_counter() - start, None)
    env = {k: v for k, v in os.environ.items() if k not in ("LOADERBENCH_DEBUG", "RANK", "WORLD_SIZE")}
    env.update(CORPUS_TMP=str(tmp), CORPUS_DIR=str(HERE), PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1",
               **{builders.TEMPLATES_ENV: str(shared.templates)}, **case.env)
    start = time.perf_counter()
    proc = subprocess.Popen(_command(case, tmp), cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=case.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the case's whole process group: DataLoader workers too
        out, err = proc.communicate()
        seconds = time.perf_counter() - start
        last = _short((err.strip().splitlines() or [""])[-1])
        return Result(case, "hang", f"no exit within {case.timeout:.0f}s" + (f" (last stderr: {last})" if last else ""),
                      seconds, None)
    seconds = time.perf_counter() - start
    (tmp / "stdout.txt").write_text(out)
    (tmp / "stderr.txt").write_text(err)
    classify = classify_cli if case.argv is not None else classify_python
    classification, detail = classify(case, proc.returncode, out, err, tmp)
    return Result(case, classification, detail, seconds, proc.returncode)


def select(pattern: str | None) -> list[Case]:
    if not pattern:
        return list(CASES)
    if any(ch in pattern for ch in "*?["):
        return [c for c in CASES if fnmatch.fnmatch(c.name, pattern) or fnmatch.fnmatch(c.category, pattern)]
    return [c for c in CASES if pattern in c.name or pattern == c.category]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--only", metavar="PATTERN",
                        help="cases whose name contains PATTERN, or whose name/category matches it as a glob")
    parser.add_argument("--json", metavar="OUT", help="write every result to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder with each case's input and output")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)

    cases = select(args.only)
    if args.list:
        for case in cases:
            print(f"{case.category:14s} {case.expect:11s} {case.name}")
        print(f"{len(cases)} case(s)")
        return 0
    if not cases:
        print(f"corpus: no case matches {args.only!r}", file=sys.stderr)
        return 2
    try:
        builders.self_check()  # the OME-Arrow rows the cases break are exactly what ome-arrow writes
    except AssertionError as exc:
        print(f"corpus: cannot run: {exc} (update tests/corpus/builders.py for this ome-arrow)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="loaderbench-corpus-"))
    started = time.perf_counter()
    try:
        shared = Shared(root / "_shared", builders.capture_templates)
        results: list[Result] = []
        lock = threading.Lock()
        printing = threading.Lock()

        def one(case: Case) -> Result:
            result = run_case(case, root, shared, lock)
            with printing:
                print(f"{result.classification:7s} {case.name}  [{case.category}, {result.seconds:.1f}s]  "
                      f"{result.detail}", flush=True)
            return result

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(one, cases))
    finally:
        if args.keep:
            print(f"corpus: inputs and outputs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    counts = {name: sum(r.classification == name for r in results) for name in CLASSES}
    summary = f"corpus: tried {len(results)} / " + " / ".join(f"{name} {counts[name]}" for name in CLASSES)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"summary": {"tried": len(results), **counts, "seconds": round(time.perf_counter() - started, 1)},
                   "cases": [r.record() for r in results]}
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(tmp, out)
    print(summary)
    return 0 if counts["clean"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
