#!/usr/bin/env bash
# Create ./.venv and install kdtui into it (editable).  Usage: scripts/install.sh [extra]
#   scripts/install.sh        the app and the engine
#   scripts/install.sh test   ... plus the test tools
# On a machine without torch and without an NVIDIA GPU, a CPU build of torch goes in first,
# so pip does not pull several GB of CUDA wheels; a machine with a GPU gets the normal
# (CUDA) torch from the package index, and an existing torch is never replaced.
# The test extra also wants munge and Slurm's daemons, for the throw-away cluster of
# tests/test_slurm.py: run as root where apt-get exists (CI: a clean Debian 12), it installs
# them once (munge slurmctld slurmd slurm-client); elsewhere, or with KDTUI_INSTALL_SLURM=0,
# it leaves them out and those tests skip, saying why.
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
has() { PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }
if [ "${1:-}" = test ] && ! { has munged && has slurmctld && has slurmd && has sbatch; }; then
    if [ "$(id -u)" = 0 ] && has apt-get && [ "${KDTUI_INSTALL_SLURM:-1}" != 0 ]; then
        echo "kdtui install: installing munge and Slurm (apt) for the Slurm tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
    else
        echo "kdtui install: munge/Slurm not installed, so the Slurm tests will skip (as root: apt-get install munge slurmctld slurmd slurm-client)"
    fi
fi
echo "kdtui install: done (.venv/bin/kdtui)"
