"""Face box -> square crop -> normalised batch, with each model's crop convention (NumPy + OpenCV only).

`crop_square` cuts a box straight to the network's input size in one affine warp (large faces are
area-shrunk first so the warp does not alias); `to_batch` turns crops into the float32 NCHW batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from posebridge.faces.base import ROI_TAG
from posebridge.inference.meta import CropSpec, ModelMeta

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def square_box(box: Box, margin: float) -> Box:
    """Enlarge a box by `margin` x its width/height on each side, then square it about its centre."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(w, h) * (1.0 + 2.0 * margin)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def zoom_box(box: Box, factor: float) -> Box:
    """The same box scaled by `factor` about its centre (> 1 shows more around the face)."""
    if factor == 1.0:
        return box
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * factor / 2, (y1 - y0) * factor / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def roi_3ddfa(landmarks_xy: np.ndarray) -> Box:
    """3DDFA's ROI: a square centred on the landmarks' bounding box, side sqrt(2) x its longer side."""
    pts = np.asarray(landmarks_xy, dtype=np.float64).reshape(2, -1)
    x0, y0 = pts.min(axis=1)
    x1, y1 = pts.max(axis=1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = np.sqrt(2.0) * max(x1 - x0, y1 - y0)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def apply_offset(roi: Box, offset) -> Box:
    """The ROI a box head's (dx, dy, log_scale) points to, relative to the ROI the crop was cut from."""
    x0, y0, x1, y1 = roi
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2 + float(offset[0]) * side, (y0 + y1) / 2 + float(offset[1]) * side
    half = side * float(np.exp(np.clip(offset[2], -1.0, 1.0))) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def face_roi(box: Box, spec: CropSpec, detector: str = "", yaw: float | None = None) -> Box:
    """The crop box a model expects for a face-detector box.

    For the "3ddfa" protocol the detector box is mapped to the landmark ROI with offsets fitted per
    detector (posebridge.inference.roi_map), falling back to the checkpoint's own `box_map`. A detector's box
    slides sideways on the face as the head turns, so a map with a `dx_yaw` term shifts the centre by
    dx_yaw * sin(yaw) box widths when the face's yaw is known (`yaw`, degrees: an earlier estimate).
    A box tagged ROI_TAG already is the model's ROI and is returned as it is.
    """
    if detector == ROI_TAG:
        return box
    if spec.protocol == "3ddfa":
        m = box_map(spec, detector)  # centre offsets and side as fractions of the box
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        dx = m.get("dx", 0.0) + (m.get("dx_yaw", 0.0) * np.sin(np.radians(yaw)) if yaw is not None else 0.0)
        cx = (x0 + x1) / 2 + dx * w
        cy = (y0 + y1) / 2 + m.get("dy", 0.0) * h
        side = m.get("scale", np.sqrt(2.0)) * max(w, h)
        return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return square_box(box, spec.margin)


def box_map(spec: CropSpec, detector: str = "") -> dict[str, float]:
    """The detector box -> ROI map for `detector`: its fitted map, else the checkpoint's own."""
    from posebridge.inference.roi_map import box_map_for

    return box_map_for(detector) or dict(spec.box_map)


def roi_uses_yaw(spec: CropSpec, detector: str = "") -> bool:
    """Whether the ROI for this detector's boxes depends on the face's yaw (see `face_roi`)."""
    return spec.protocol == "3ddfa" and bool(box_map(spec, detector).get("dx_yaw"))


def crop_square(image: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Cut `box` out of `image` (zero padding outside the frame) and resize to size x size."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1e-3)
    scale = size / side
    sx = sy = scale
    ox, oy = x0, y0  # the output pixel u maps to (u / s + o) in `image`
    if scale < 0.5:
        # warpAffine samples bilinearly with no anti-aliasing (INTER_AREA is not supported there), so a
        # large face is first shrunk with area averaging to about twice the output resolution.
        h, w = image.shape[:2]
        ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        ix1, iy1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
        if ix1 - ix0 >= 2 and iy1 - iy0 >= 2:
            nw, nh = max(1, round((ix1 - ix0) * 2 * scale)), max(1, round((iy1 - iy0) * 2 * scale))
            image = cv2.resize(image[iy0:iy1, ix0:ix1], (nw, nh), interpolation=cv2.INTER_AREA)
            fx, fy = nw / (ix1 - ix0), nh / (iy1 - iy0)  # shrink factors of the sub-image
            sx, sy = scale / fx, scale / fy
            ox, oy = (x0 - ix0) * fx, (y0 - iy0) * fy
    # Affine map from the box to the output square: sub-pixel exact, padding handled by warpAffine.
    m = np.array([[sx, 0.0, -ox * sx], [0.0, sy, -oy * sy]], dtype=np.float64)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def to_batch(crops: Sequence[np.ndarray], meta: ModelMeta) -> np.ndarray:
    """BGR uint8 crops (already size x size) -> float32 NCHW batch in the model's colour order and
    normalisation: (pixel / 255 - mean) / std, as one multiply-add per pixel."""
    scale, bias = _normalisation(meta)
    arr = np.stack([np.asarray(c) for c in crops]) if len(crops) != 1 else np.asarray(crops[0])[None]
    if meta.color == "rgb":
        arr = arr[..., ::-1]
    out = arr.astype(np.float32) * scale + bias  # (N, H, W, 3)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


_NORM_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _normalisation(meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    key = (tuple(meta.mean), tuple(meta.std))
    if key not in _NORM_CACHE:
        std = np.asarray(meta.std, np.float32)
        mean = np.asarray(meta.mean, np.float32)
        _NORM_CACHE[key] = (1.0 / (255.0 * std)).astype(np.float32), (-mean / std).astype(np.float32)
    return _NORM_CACHE[key]
