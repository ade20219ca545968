"""OpenCV's own log output quieted for a block (probing cameras, loading a model that OpenCV would warn
about), through `cv2.getLogLevel`/`cv2.setLogLevel`, which every OpenCV 4 build has (`cv2.utils.logging`
is missing from some, e.g. opencv-python-headless 4.10)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2

SILENT, ERROR = 0, 2  # OpenCV's LOG_LEVEL_SILENT and LOG_LEVEL_ERROR


@contextlib.contextmanager
def opencv_log_level(level: int = ERROR) -> Iterator[None]:
    """Within the block OpenCV logs only at `level` and above; the previous level is restored."""
    get, put = getattr(cv2, "getLogLevel", None), getattr(cv2, "setLogLevel", None)
    if get is None or put is None:  # pragma: no cover - not an OpenCV 4 build
        yield
        return
    prev = get()
    put(level)
    try:
        yield
    finally:
        put(prev)
