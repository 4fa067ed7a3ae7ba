#!/usr/bin/env bash
# Sets up everything loaderbench needs on a fresh Debian 12 machine (root): Debian build packages, a venv
# with torch pinned to the CPU wheel, the Python dependencies, and loaderbench itself (builds the C++ core).
# Safe to re-run: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LOADERBENCH_VENV:-.venv}
PYTHON=${PYTHON:-python3}
# clang + libclang-rt-14-dev: `make fuzz` / `make fuzz-ci` (libFuzzer and the sanitizer runtimes clang links).
# libtiff-dev: native TIFF reads; nlohmann-json3-dev, libblosc-dev, zlib1g-dev: native OME-Zarr reads.
DEBIAN_PACKAGES=(g++ cmake make libgtest-dev libzstd-dev liblz4-dev clang libclang-rt-14-dev
                 libtiff-dev nlohmann-json3-dev libblosc-dev zlib1g-dev)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
"$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null \
  || "${PIP[@]}" install torch==2.13.0
echo "setup: installing loaderbench and its dependencies (builds the C++ core)"
"${PIP[@]}" install ".[test]"
# TileDB-SOMA (a sparse benchmark backend) without its declared scanpy dependency, which loaderbench never uses
# and which would pull numba, llvmlite, scikit-learn and statsmodels. Optional: the sparse benchmark reports the
# backend as unavailable if this step fails.
"$VENV/bin/python" -c "import tiledbsoma" 2>/dev/null \
  || { "${PIP[@]}" install attrs more-itertools shapely pyarrow-hotfix \
       && "${PIP[@]}" install --no-deps tiledbsoma==2.3.0 somacore==1.0.29; } \
  || echo "setup: tiledbsoma not installed - the sparse benchmark will report it as unavailable"
# Debian's Chromium: tests/test_report_browser.py renders report.html in it (skipped, saying why, without it).
bash scripts/setup_chromium.sh || echo "setup: chromium not installed - the browser test will be skipped"
# The sparse peers: tiledbsoma-ml, cellxgene-census' ExperimentDataPipe, and annbatch in its own Python >= 3.12
# virtual environment (.venv-annbatch) where such an interpreter exists.
bash scripts/setup_sparse_peers.sh "$VENV"
# The image peers (Hugging Face datasets, LitData, WebDataset, SPDL; lance.torch comes with pylance), pinned; a peer
# that fails to install is reported and its benchmark rows say why.
bash scripts/setup_image_peers.sh "$VENV"
"$VENV/bin/python" -c "import loaderbench._core, torch; print('setup: ok (torch', torch.__version__ + ')')"
