"""Which tracked face to publish: the largest and most central, sticky so two similar faces do not
flicker."""

from __future__ import annotations

import numpy as np

from posebridge.faces.base import FaceBox


def primary_score(face: FaceBox, frame_size: tuple[int, int]) -> float:
    """Bigger and more central is better: box side x (1 - 0.5 x distance from the frame centre as a
    fraction of the half-diagonal), so a face at the corner counts as half its size."""
    w, h = frame_size
    cx, cy = (face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2
    d = np.hypot(cx - w / 2, cy - h / 2) / max(np.hypot(w / 2, h / 2), 1e-6)
    return float(np.sqrt(max(face.width, 0.0) * max(face.height, 0.0)) * (1.0 - 0.5 * min(d, 1.0)))


def primary(faces: list[FaceBox], frame_size: tuple[int, int], prefer_id: int | None = None,
            switch_ratio: float = 1.0) -> FaceBox | None:
    """The face to publish: the largest / nearest the centre (see `primary_score`). With `prefer_id`,
    that face stays primary unless another scores `switch_ratio` times higher (no flicker between two
    similar faces)."""
    if not faces:
        return None
    best = max(faces, key=lambda f: primary_score(f, frame_size))
    if prefer_id is not None and best.face_id != prefer_id:
        current = next((f for f in faces if f.face_id == prefer_id), None)
        if current is not None and primary_score(best, frame_size) < switch_ratio * primary_score(
            current, frame_size
        ):
            return current
    return best
