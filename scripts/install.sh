#!/usr/bin/env bash
# Create ./.venv and install kdtui into it (editable).  Usage: scripts/install.sh [extra]
#   scripts/install.sh        the app and the engine
#   scripts/install.sh test   ... plus the test tools
# On a machine without torch and without an NVIDIA GPU, a CPU build of torch goes in first,
# so pip does not pull several GB of CUDA wheels; a machine with a GPU gets the normal
# (CUDA) torch from the package index, and an existing torch is never replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "kdtui install: NVIDIA GPU found, installing torch with CUDA"
        pip install torch
    else
        echo "kdtui install: no GPU found, installing the CPU build of torch"
        pip install "torch==2.13.0"
    fi
fi
if [ $# -gt 0 ]; then pip install -e ".[$1]"; else pip install -e .; fi
echo "kdtui install: done (.venv/bin/kdtui)"
