"""The virtual pinhole camera: image size, field of view, where the head sits in front of it, and the
projection of scan points to pixels (x right, y down), shared by the renderer and the truth.

The camera sits at the origin looking down -z (OpenGL's eye frame). A head placed at `offset` (fractions
of the frame: (0, 0) centres the face, +-0.5 puts its centre on the left/right or top/bottom edge) and
`distance_m` metres has its scan-frame points moved by `placement`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from posebridge.offline.render.posing import UNIT_M

FACE_CENTRE = np.array([0.0, 1.0, 1.6])  # between the eyes and the mouth, model units


@dataclass(frozen=True)
class Camera:
    width: int = 640
    height: int = 480
    fov_y_deg: float = 40.0  # vertical field of view (a typical webcam's is 35-50 degrees)

    @property
    def focal_px(self) -> float:
        return (self.height / 2.0) / math.tan(math.radians(self.fov_y_deg) / 2.0)

    def projection(self, near: float = 0.5, far: float = 200.0) -> np.ndarray:
        """OpenGL projection matrix (row-major; transpose before handing it to GL as column-major)."""
        f = 1.0 / math.tan(math.radians(self.fov_y_deg) / 2.0)
        aspect = self.width / self.height
        return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                         [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
                         [0, 0, -1, 0]], np.float64)

    def placement(self, offset: tuple[float, float], distance_m: float) -> np.ndarray:
        """Translation (model units) that puts FACE_CENTRE at `offset` (frame fractions, x right, y
        down) and `distance_m` in front of the camera."""
        depth = distance_m / UNIT_M
        x = offset[0] * self.width * depth / self.focal_px
        y = -offset[1] * self.height * depth / self.focal_px
        return np.array([x, y, -depth]) - FACE_CENTRE

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) eye-frame points -> (N, 2) pixel coordinates (x right, y down, pixel centres at
        +0.5, as OpenGL rasterises)."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        z = -p[:, 2]
        u = self.width / 2.0 + self.focal_px * p[:, 0] / z
        v = self.height / 2.0 - self.focal_px * p[:, 1] / z
        return np.stack([u, v], -1)
