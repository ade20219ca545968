"""Box helpers shared by the detectors and the tracker: shrink a frame for detection, clip a box to the
frame, IoU, non-maximum suppression, and option checks."""

from __future__ import annotations

import cv2
import numpy as np

from posebridge.errors import ConfigError
from posebridge.faces.base import FaceBox


def shrink(image: np.ndarray, input_width: int | None) -> tuple[np.ndarray, float]:
    """The image resized so its width is at most `input_width`, and the factor back to frame pixels."""
    w = image.shape[1]
    if not input_width or w <= input_width:
        return image, 1.0
    scale = input_width / w
    size = (input_width, max(1, round(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, 1.0 / scale


def clip_box(box: FaceBox, shape: tuple[int, ...]) -> FaceBox:
    h, w = shape[:2]
    box.x0, box.x1 = float(np.clip(box.x0, 0, w)), float(np.clip(box.x1, 0, w))
    box.y0, box.y1 = float(np.clip(box.y0, 0, h)), float(np.clip(box.y1, 0, h))
    return box


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 when their union is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: list[FaceBox], threshold: float = 0.3) -> list[FaceBox]:
    """Keep the best-scoring box of each overlapping group (IoU above `threshold`)."""
    kept: list[FaceBox] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if all(iou(b.box, k.box) <= threshold for k in kept):
            kept.append(b)
    return kept


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"faces.options.{name}: expected an integer >= {minimum}, got {value!r}")
    return value
