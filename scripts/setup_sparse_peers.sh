#!/usr/bin/env bash
# The sparse benchmark's peer loaders (loaderbench sparse data-loader, benchmarks/sparse_loader.py):
#  - in loaderbench's venv (.venv): tiledbsoma-ml 0.1.0 (with numba/llvmlite, which it imports) and cellxgene-census
#    1.17.0 (its ExperimentDataPipe: the last release that has it; torchdata 0.9.0 DataPipes, scikit-learn), all
#    torch-dependent ones with --no-deps so that torch is never changed;
#  - annbatch 0.3.1 + zarrs 0.2.3 in their own venv (.venv-annbatch) on a Python >= 3.12 interpreter (annbatch
#    requires it), without torch: annbatch yields scipy batches there and loaderbench densifies them.
# Optional and safe to re-run: it installs only what is missing; a peer that cannot be installed is reported by the
# benchmark as "unavailable: <reason>". Expects scripts/setup.sh to have made .venv (with tiledbsoma 2.3.0).
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-${LOADERBENCH_VENV:-.venv}}
ANNBATCH_VENV=${LOADERBENCH_ANNBATCH_VENV:-.venv-annbatch}
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
torch_version() { "$VENV/bin/python" -c "import torch; print(torch.__version__)" 2>/dev/null; }
torch_before=$(torch_version)

# tiledbsoma-ml: declares torch and numba; it imports numba (its CSR kernels), so numba and llvmlite are pinned to
# releases built for the numpy in .venv (numba 0.68 supports numpy <= 2.5).
"$VENV/bin/python" -c "import tiledbsoma_ml" 2>/dev/null \
  || "${PIP[@]}" install --no-deps tiledbsoma-ml==0.1.0 numba==0.68.1 llvmlite==0.50.0 \
  || echo "setup_sparse_peers: tiledbsoma-ml not installed - the benchmark will report it as unavailable"

# cellxgene-census 1.18.0 no longer has experimental.ml.ExperimentDataPipe; 1.17.0 does. Its declared deps
# (tiledbsoma, s3fs, anndata, requests) are already in .venv; the pipe needs torchdata < 0.10 and scikit-learn.
"$VENV/bin/python" -c "import cellxgene_census.experimental.ml" 2>/dev/null \
  || { "${PIP[@]}" install --no-deps cellxgene-census==1.17.0 torchdata==0.9.0 \
       && "${PIP[@]}" install --no-deps scikit-learn==1.9.1 joblib==1.6.0 threadpoolctl==3.8.0 narwhals==2.29.0; } \
  || echo "setup_sparse_peers: cellxgene-census not installed - the benchmark will report it as unavailable"

if [ "$(torch_version)" != "$torch_before" ]; then
  echo "setup_sparse_peers: torch changed from $torch_before to $(torch_version) - this must not happen" >&2
  exit 1
fi

# A Python >= 3.12 for annbatch: python3.1x on PATH (a pyenv shim that is not active fails the check), else pyenv's.
is_312() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
PY312=""
for candidate in python3.14 python3.13 python3.12; do
  if command -v "$candidate" >/dev/null && is_312 "$candidate"; then PY312=$(command -v "$candidate"); break; fi
done
if [ -z "$PY312" ]; then
  PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
  for candidate in $(ls -d "$PYENV_ROOT"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV); do
    if is_312 "$candidate"; then PY312=$candidate; break; fi
  done
fi
if [ -z "$PY312" ]; then
  echo "setup_sparse_peers: no Python >= 3.12 interpreter - annbatch will be reported as unavailable"
  exit 0
fi
if ! "$ANNBATCH_VENV/bin/python" -c "import annbatch, zarrs" 2>/dev/null; then
  echo "setup_sparse_peers: creating $ANNBATCH_VENV with $PY312 ($("$PY312" -V 2>&1)) for annbatch"
  [ -x "$ANNBATCH_VENV/bin/python" ] || "$PY312" -m venv "$ANNBATCH_VENV"
  "$ANNBATCH_VENV/bin/python" -m pip --disable-pip-version-check -q install annbatch==0.3.1 zarrs==0.2.3 \
    || echo "setup_sparse_peers: annbatch not installed - the benchmark will report it as unavailable"
fi
"$ANNBATCH_VENV/bin/python" -c "
import importlib.util, sys, annbatch, zarrs
assert importlib.util.find_spec('torch') is None, 'torch must not be in the annbatch venv'
print('setup_sparse_peers: annbatch', annbatch.__version__, 'zarrs', zarrs.__version__, 'on Python', sys.version.split()[0])
" || echo "setup_sparse_peers: annbatch venv unusable - the benchmark will report annbatch as unavailable"
