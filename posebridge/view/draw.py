"""The camera preview: the frame shrunk to the page's width, the face box and the head's axes (from the
filtered angles, posebridge.formats.rotation's dataset convention; at rest x red points image-right, y green
up, z blue out of the face, as on the page's 3D head), mirrored
when the stream is, then JPEG-encoded. Runs in the page's thread, never in the frame loop."""

from __future__ import annotations

import cv2
import numpy as np

from posebridge.formats.protocol import PoseMessage
from posebridge.formats.rotation import dataset_matrix

AXIS_COLOURS = ((0, 0, 255), (0, 200, 0), (255, 80, 0))  # BGR: x red, y green, z blue


def shrink(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """A copy at most `width` wide (never enlarged) and the scale applied."""
    h, w = image.shape[:2]
    if w <= width:
        return image.copy(), 1.0
    scale = width / w
    return cv2.resize(image, (width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale


def draw_pose(image: np.ndarray, msg: PoseMessage, scale: float) -> None:
    """The message's face box and head axes on `image` (in place), scaled from frame pixels."""
    if msg.box is None:
        return
    x0, y0, x1, y1 = (c * scale for c in msg.box)
    size = max(x1 - x0, y1 - y0)
    thick = max(1, round(size / 90))
    colour = (255, 255, 255) if msg.tracked else (160, 160, 160)
    cv2.rectangle(image, (round(x0), round(y0)), (round(x1), round(y1)), colour, thick, cv2.LINE_AA)
    cx, cy, length = (x0 + x1) / 2, (y0 + y1) / 2, 0.6 * size
    rot = dataset_matrix(*msg.euler) * np.array([1.0, -1.0, 1.0])  # columns: head x, up (-y), z
    for axis in range(3):
        dx, dy = rot[0, axis], rot[1, axis]  # the head axis's direction in the image (y down)
        end = (round(cx + length * dx), round(cy + length * dy))
        cv2.line(image, (round(cx), round(cy)), end, AXIS_COLOURS[axis], thick + 1, cv2.LINE_AA)


def render_preview(image: np.ndarray, messages: list[PoseMessage], width: int, quality: int,
                   mirror: bool) -> bytes:
    """The preview JPEG of one frame with its published messages drawn."""
    out, scale = shrink(image, width)
    for msg in messages:
        draw_pose(out, msg, scale)
    if mirror:
        out = cv2.flip(out, 1)
    ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
