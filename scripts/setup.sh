#!/usr/bin/env bash
# Create .venv and install posebridge from PyPI.
#   bash scripts/setup.sh          the runtime only: ONNX Runtime, headless OpenCV, ZeroMQ, ... (no PyTorch,
#                                  no SciPy/Matplotlib: `posebridge[eval]`; about 250 MB in .venv)
#   bash scripts/setup.sh --dev    everything the tests use: the runtime + posebridge[dev] (torch, train,
#                                  eval, convert, dlib extras, pytest, ruff, hypothesis, playwright; torch +
#                                  torchvision from PyPI, CUDA builds that also run on a CPU-only machine)
# The face detector's model (BlazeFace, converted to ONNX, Apache-2.0) and the head-pose model ship inside
# the package: nothing is downloaded but the packages. A .venv made before the switch to headless OpenCV
# has opencv-python, which installs the same cv2 folder: it is replaced by opencv-python-headless.
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
if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
    echo "replacing opencv-python (GUI build) by opencv-python-headless in .venv"
    .venv/bin/python -m pip uninstall -q -y opencv-python
    .venv/bin/python -m pip install -q --force-reinstall --no-deps "opencv-python-headless>=4.8,<5"
fi
echo "posebridge installed in $(pwd)/.venv ($(du -sm .venv | cut -f1) MB)"
