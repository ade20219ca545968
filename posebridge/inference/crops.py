"""Face box -> square crop -> normalised batch, with each model's crop convention (NumPy + OpenCV only).

`crop_square` cuts a box straight to the network's input size in one affine warp (large faces are
area-shrunk first so the warp does not alias); `to_batch` turns crops into the float32 NCHW batch.
"""

from __future__ import annotations

import os
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
    """Cut `box` out of `image` (zero padding outside the frame) and resize to size x size: one bilinear
    warp, sub-pixel exact. warpAffine does not anti-alias, so a box more than twice the output size is
    first halved as often as needed with exact 2x2 area averaging (OpenCV's fast path), leaving the
    warp a scale in [0.5, 1)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1e-3)
    scale = size / side
    a, bx, by = 1.0, 0.0, 0.0  # a pixel u of the (possibly halved) image is frame pixel a * u + b
    if scale < 0.5:
        h, w = image.shape[:2]
        ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        ix1, iy1 = min(int(np.ceil(x1)) + 1, w), min(int(np.ceil(y1)) + 1, h)
        if ix1 - ix0 >= 4 and iy1 - iy0 >= 4:
            image, bx, by = image[iy0:iy1, ix0:ix1], float(ix0), float(iy0)
            while scale * a < 0.5 and image.shape[0] >= 4 and image.shape[1] >= 4:
                hh, ww = image.shape[0] // 2, image.shape[1] // 2
                image = cv2.resize(image[: 2 * hh, : 2 * ww], (ww, hh), interpolation=cv2.INTER_AREA)
                bx, by = bx + a / 2, by + a / 2  # the new pixel u covers old pixels 2u, 2u+1
                a *= 2.0
    # frame x -> output (x - x0) * scale; with x = a * u + b for the image actually warped
    m = np.array([[a * scale, 0.0, (bx - x0) * scale], [0.0, a * scale, (by - y0) * scale]], dtype=np.float64)
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


def load_crops(paths: Sequence[os.PathLike], size: int) -> list[np.ndarray]:
    """Face crops (images already cut to a face ROI) resized to size x size, BGR uint8."""
    from posebridge.errors import InputFileError
    from posebridge.imagefiles import read_image

    crops = []
    for p in paths:
        img = read_image(p)
        if img is None:
            raise InputFileError(p, "not a readable image")
        crops.append(crop_square(img, (0, 0, img.shape[1], img.shape[0]), size))
    return crops
