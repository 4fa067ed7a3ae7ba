#!/usr/bin/env bash
# Installs the libraries of the image peers (src/loaderbench/loaders/peers/) into a venv, pinned.
#   scripts/setup_image_peers.sh [VENV]     (default .venv; called by scripts/setup.sh)
# Safe to re-run: a peer whose pinned packages already import is skipped. Never touches torch: packages that
# declare torch/torchvision are installed with --no-deps and their other requirements named explicitly. A peer that
# fails to install is reported on one line and skipped (its benchmark rows say "unavailable: <reason>").
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-.venv}
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)
[ -x "$PY" ] || { echo "setup: no python at $PY (run scripts/setup.sh first)" >&2; exit 1; }
torch_before=$("$PY" -c "import torch; print(torch.__version__)" 2>/dev/null || echo "none")

# has DIST==VERSION ... : true when every named distribution is installed at exactly that version
has() {
  "$PY" - "$@" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(any(version(name) != want for name, want in (spec.split("==") for spec in sys.argv[1:])))
EOF
}

# peer NAME CHECK_IMPORT INSTALL_FUNCTION DIST==VERSION...: install unless present, then check that it imports
peer() {
  local name=$1 check=$2 install=$3
  shift 3
  if has "$@" && "$PY" -c "$check" >/dev/null 2>&1; then
    echo "setup: $name already installed"
    return 0
  fi
  if "$install" && "$PY" -c "$check" >/dev/null 2>&1; then
    echo "setup: $name installed ($*)"
  else
    echo "setup: $name not installed - its rows will say why"
  fi
}

LITDATA=litdata==0.2.76
# LitData declares torch and torchvision; torchvision cannot sit beside the CPU torch here and LitData imports
# without it, so: its other requirements, then LitData itself with --no-deps.
install_litdata() {
  # boto3 moves in lockstep with botocore (same version number); match the botocore already in the venv (another
  # dependency pins it) rather than move it
  local botocore
  botocore=$("$PY" -c "import botocore; print(botocore.__version__)" 2>/dev/null || echo "1.43.117")
  # filelock, numpy, requests, urllib3 and tifffile come with loaderbench's own dependencies: named unpinned, pip
  # keeps the versions installed
  "${PIP[@]}" install "boto3==$botocore" lightning-utilities==0.15.3 obstore==0.12.1 \
    filelock numpy requests "urllib3>=1.26" tifffile \
    && "${PIP[@]}" install --no-deps "$LITDATA"
}

WEBDATASET=webdataset==1.0.2
install_webdataset() {
  "${PIP[@]}" install braceexpand==0.1.7 numpy pyyaml && "${PIP[@]}" install --no-deps "$WEBDATASET"
}

SPDL=(spdl==0.8.0 spdl-core==0.8.0 spdl-io==0.8.0)
install_spdl() {
  "${PIP[@]}" install --no-deps "${SPDL[@]}"
}

# hf_datasets peer (lines from the framework helper): datasets pulls no torch and keeps pyarrow / numpy as installed
DATASETS=datasets==5.2.0
install_datasets() {
  "${PIP[@]}" install "$DATASETS"
}

peer litdata "import litdata; from litdata import optimize, StreamingDataset, StreamingDataLoader" \
  install_litdata "$LITDATA"
peer webdataset "import webdataset" install_webdataset "$WEBDATASET"
peer spdl "import spdl.pipeline, spdl.source" install_spdl "${SPDL[@]}"
peer hf_datasets "import datasets" install_datasets "$DATASETS"
# lance_torch uses pylance (lance.torch), a core dependency installed by scripts/setup.sh

torch_after=$("$PY" -c "import torch; print(torch.__version__)" 2>/dev/null || echo "none")
if [ "$torch_after" != "$torch_before" ]; then
  echo "setup: torch changed from $torch_before to $torch_after while installing the image peers" >&2
  exit 1
fi
