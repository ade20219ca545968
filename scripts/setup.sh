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
EXTRA="" LEAN="--no-compile"  # the runtime: modules are compiled when first imported, not all at once
if [ "${1:-}" = "--dev" ]; then EXTRA="[dev]" LEAN=""; fi
.venv/bin/python -m pip install -q $LEAN --upgrade pip
.venv/bin/python -m pip install -q $LEAN -e ".${EXTRA}"
if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
    echo "replacing opencv-python (GUI build) by opencv-python-headless in .venv"
    .venv/bin/python -m pip uninstall -q -y opencv-python
    SPEC=$(.venv/bin/python -c "from importlib.metadata import requires
print(next(r for r in requires('posebridge') if r.startswith('opencv-python-headless')))")
    .venv/bin/python -m pip install -q --force-reinstall --no-deps "$SPEC"
fi
if [ -z "$EXTRA" ] && .venv/bin/python -m pip show -q setuptools >/dev/null 2>&1; then
    # Python 3.11's venv brings setuptools 65 (9 MB); nothing at run time uses it (3.12+ venvs have none)
    .venv/bin/python -m pip uninstall -q -y setuptools
fi
echo "posebridge installed in $(pwd)/.venv ($(du -sm .venv | cut -f1) MB)"
