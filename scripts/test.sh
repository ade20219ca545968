#!/usr/bin/env bash
# Set up everything the tests need from this repo's own files, then run lint and the test suite.
#   bash scripts/test.sh [pytest args...]
# Installs: .venv with posebridge[dev] (torch + torchvision from PyPI), and Debian's mono
# (mono-mcs, mono-runtime) for the Unity client's C# tests when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing Debian mono (mono-mcs, mono-runtime) for the Unity client tests"
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q mono-mcs mono-runtime >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
