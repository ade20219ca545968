"""Drawing head poses on frames: the face box and the head's x (red), y (green) and z (blue) axes."""

from __future__ import annotations

import cv2
import numpy as np

from posebridge.inference.crops import Box


def pose_axes_2d(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Image-plane directions (3 axes x (dx, dy)) of the head's axes for angles in degrees.

    Dataset convention (AFLW2000/300W_LP): the rotation is Rx(pitch) Ry(-yaw) Rz(roll); each column
    is one head axis; x and y of a column are its direction in the image (y pointing down).
    """
    p, y, r = np.radians([pitch, -yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rot = rx @ ry @ rz
    return rot[:2, :].T  # row i = (dx, dy) of axis i


def draw_pose(image: np.ndarray, box: Box, yaw: float, pitch: float, roll: float,
              label: str | None = None) -> np.ndarray:
    """Draw in place (and return) the box, the three axes from the box centre and an angle label."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    size = max(x1 - x0, y1 - y0) * 0.6
    thick = max(1, int(round(size / 60)))
    cv2.rectangle(image, (int(x0), int(y0)), (int(x1), int(y1)), (255, 255, 255), thick)
    colours = ((0, 0, 255), (0, 255, 0), (255, 0, 0))  # x red, y green, z blue (BGR)
    for (dx, dy), colour in zip(pose_axes_2d(yaw, pitch, roll), colours, strict=True):
        end = (int(round(cx + size * dx)), int(round(cy + size * dy)))
        cv2.line(image, (int(round(cx)), int(round(cy))), end, colour, thick + 1, cv2.LINE_AA)
    text = label if label is not None else f"y{yaw:+.0f} p{pitch:+.0f} r{roll:+.0f}"
    cv2.putText(image, text, (int(x0), max(12, int(y0) - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                max(0.4, size / 250), (255, 255, 255), max(1, thick), cv2.LINE_AA)
    return image
