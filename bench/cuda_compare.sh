#!/usr/bin/env bash
# CUDA comparison from a fresh environment, one command (NOT YET RUN ON A GPU):
#   bash bench/cuda_compare.sh [--quick] [--reps N]
# Creates $VENV (default .venv-cuda) in the repository root, installs this package
# without its CPU mlx dependency, MLX's CUDA backend, CUDA torch, snnTorch,
# SpikingJelly (--no-deps: its metadata would pull torchvision/torchaudio), triton
# when pip finds one, and mlx-snn 0.5.0 into bench/.peers; then runs
# bench/cuda_compare.py, which writes bench/results/cuda_compare-cuda-<host>.json/.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-cuda}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --upgrade pip
python -m pip install --no-deps -e .
python -m pip install numpy matplotlib "mlx[cuda13]"
python -m pip install torch
python -m pip install snntorch
python -m pip install --no-deps spikingjelly loguru tqdm
python -m pip install triton || echo "triton not installed: SpikingJelly uses its torch path"
python -m pip install --target bench/.peers --no-deps mlx-snn==0.5.0
python -c "import mlx.core as mx; print('mlx device:', mx.default_device())"
python bench/cuda_compare.py "$@"
