"""Which detection belongs to which tracked face: IoU matching of detections to the tracks' boxes, and
the box arithmetic the tracker's association step needs (centres, shifts, the model ROI's middle)."""

from __future__ import annotations

from collections.abc import Sequence

from posebridge.faces.base import FaceBox
from posebridge.faces.geometry import iou

Box = tuple[float, float, float, float]


def match(tracks: Sequence[Box | None], models: Sequence[bool], dets: Sequence[Box],
          threshold: float) -> list[tuple[int, int]]:
    """(track, detection) index pairs by descending IoU, each used once, IoU at least `threshold`
    (`tracks` entries may be None: not matchable). A model-followed track's box is the pose model's ROI,
    larger than a detector box and possibly drifted: a detection whose centre lies inside it matches it
    too. For the handful of faces in a webcam frame this is the same assignment as the Hungarian method,
    without SciPy."""

    def score(t: Box, model: bool, d: Box) -> float:
        s = iou(t, d)
        if model and t[0] <= (d[0] + d[2]) / 2 <= t[2] and t[1] <= (d[1] + d[3]) / 2 <= t[3]:
            s = max(s, threshold)
        return s

    scored = sorted(((score(t, m, d), i, j) for i, (t, m) in enumerate(zip(tracks, models, strict=True))
                     if t is not None for j, d in enumerate(dets)), reverse=True)
    used_t, used_d, pairs = set(), set(), []
    for s, i, j in scored:
        if s < threshold:
            break
        if i in used_t or j in used_d:
            continue
        used_t.add(i)
        used_d.add(j)
        pairs.append((i, j))
    return pairs


def inside_middle(point: tuple[float, float], box: Box) -> bool:
    """Whether `point` lies in the middle half (in each direction) of `box`."""
    x0, y0, x1, y1 = box
    qx, qy = (x1 - x0) / 4, (y1 - y0) / 4
    return x0 + qx <= point[0] <= x1 - qx and y0 + qy <= point[1] <= y1 - qy


def centre(box: FaceBox) -> tuple[float, float]:
    return ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)


def shifted(box: FaceBox, dx: float, dy: float) -> Box:
    return (box.x0 + dx, box.y0 + dy, box.x1 + dx, box.y1 + dy)
