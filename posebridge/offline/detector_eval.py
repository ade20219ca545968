"""Detector evaluation helpers (benchmarks/bench_detectors.py and tests): the 640x480 canvas, the
match rule against a landmark box, and |yaw| buckets."""

from __future__ import annotations

import numpy as np

from posebridge.faces.base import FaceBox

Box = tuple[float, float, float, float]

CANVAS = (640, 480)  # width, height of a webcam frame
YAW_BUCKETS = ((0.0, 30.0), (30.0, 60.0), (60.0, 180.0))
BUCKET_NAMES = ("0-30", "30-60", "60-90+")
SIDE_RATIO = (0.5, 2.5)


def to_canvas(image: np.ndarray, size: tuple[int, int] = CANVAS) -> tuple[np.ndarray, tuple[int, int]]:
    """`image` centred on a black `size` canvas (shrunk first if it does not fit); returns the canvas
    and the (dx, dy) offset of the image's pixels. AFLW2000's 450x450 images are pasted unscaled."""
    w, h = size
    ih, iw = image.shape[:2]
    if iw > w or ih > h:
        raise ValueError(f"image {iw}x{ih} does not fit a {w}x{h} canvas")
    dx, dy = (w - iw) // 2, (h - ih) // 2
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas[dy : dy + ih, dx : dx + iw] = image
    return canvas, (dx, dy)


def shift(box: Box, dx: float, dy: float) -> Box:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def matches(det: FaceBox | Box, truth: Box) -> bool:
    """A detection finds the face when it contains the centre of the landmark box and its size
    (sqrt of its area) is 0.5-2.5x the landmark box's longer side (a box around the whole head, or
    one on just the eyes, still counts; a box on the background around the face does not)."""
    x0, y0, x1, y1 = det.box if isinstance(det, FaceBox) else det
    cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
    if not (x0 <= cx <= x1 and y0 <= cy <= y1):
        return False
    side = np.sqrt(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))
    ref = max(truth[2] - truth[0], truth[3] - truth[1], 1e-6)
    return SIDE_RATIO[0] <= side / ref <= SIDE_RATIO[1]


def yaw_bucket(yaw: float) -> int:
    a = abs(yaw)
    for i, (lo, hi) in enumerate(YAW_BUCKETS):
        if lo <= a < hi:
            return i
    return len(YAW_BUCKETS) - 1
