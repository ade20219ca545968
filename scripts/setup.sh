#!/usr/bin/env bash
# Create .venv and install posebridge with its dependencies from PyPI.
# torch + torchvision come from PyPI together (the default builds; they run on CPU when no GPU
# is present). Usage: bash scripts/setup.sh [--dev]   (--dev adds pytest, ruff, onnxruntime)
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
echo "posebridge installed in $(pwd)/.venv"
