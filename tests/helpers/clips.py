"""Video clips written for tests with OpenCV from the demo's public-domain portrait."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers.paths import PORTRAIT


def still_clip(path: Path, seconds: float, fps: float = 30.0) -> Path:
    """A 640x480 clip of the demo's public-domain portrait standing still (MJPG), with camera noise."""
    import cv2

    face = cv2.imread(str(PORTRAIT))
    canvas = np.full((480, 640, 3), 120, np.uint8)
    face = cv2.resize(face, (400, 400), interpolation=cv2.INTER_AREA)
    canvas[40:440, 120:520] = face
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    rng = np.random.default_rng(0)
    noise = [rng.integers(-3, 4, canvas.shape, dtype=np.int16) for _ in range(8)]
    for i in range(int(seconds * fps)):
        writer.write(np.clip(canvas.astype(np.int16) + noise[i % 8], 0, 255).astype(np.uint8))
    writer.release()
    return path
