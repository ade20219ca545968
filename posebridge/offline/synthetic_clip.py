"""Synthetic clips for benchmarks and tests: a picture moved across a 640x480 frame, written with
OpenCV. `open_writer`, `paste` and `add_noise` are the pieces; `make_clip` is `posebridge bench`'s clip
(a face drifting and turning slightly, like a head in front of a webcam)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import InputFileError

CLIP_SIZE = (640, 480)


def open_writer(path: str | os.PathLike, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An mp4v writer at `path` (its folder made); InputFileError when OpenCV cannot write there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise InputFileError(path, "OpenCV cannot write an mp4v video here")
    return writer


def paste(frame: np.ndarray, picture: np.ndarray, m: np.ndarray) -> np.ndarray:
    """`picture` warped by the 2x3 affine `m` onto `frame` (in place; only where the picture lands)."""
    h, w = frame.shape[:2]
    ih, iw = picture.shape[:2]
    mask = cv2.warpAffine(np.full((ih, iw), 255, np.uint8), m, (w, h))
    warped = cv2.warpAffine(picture, m, (w, h), flags=cv2.INTER_LINEAR)
    frame[mask > 0] = warped[mask > 0]
    return frame


def add_noise(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """`frame` with Gaussian pixel noise of `sigma` grey levels (float32 sum, clipped to uint8)."""
    noisy = frame.astype(np.float32) + rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def drawn_face(size: tuple[int, int] = CLIP_SIZE) -> np.ndarray:
    """A plain drawn face (skin ellipse, eyes, brows, nose, mouth, hair) that Haar cascades detect."""
    w, h = size
    img = np.full((h, w, 3), (90, 110, 120), np.uint8)
    cx, cy = w // 2, h // 2
    cv2.ellipse(img, (cx, cy), (80, 105), 0, 0, 360, (140, 170, 215), -1)
    for sx in (-1, 1):
        cv2.ellipse(img, (cx + sx * 32, cy - 25), (18, 9), 0, 0, 360, (240, 240, 240), -1)
        cv2.circle(img, (cx + sx * 32, cy - 25), 7, (40, 30, 20), -1)
        cv2.line(img, (cx + sx * 14, cy - 48), (cx + sx * 52, cy - 50), (40, 40, 60), 6)
    cv2.line(img, (cx, cy - 15), (cx - 8, cy + 22), (100, 120, 170), 4)
    cv2.ellipse(img, (cx, cy + 50), (30, 10), 0, 0, 180, (60, 60, 150), -1)
    cv2.ellipse(img, (cx, cy - 95), (85, 40), 0, 180, 360, (30, 30, 40), -1)
    return cv2.GaussianBlur(img, (5, 5), 0)


def default_face() -> tuple[np.ndarray, str]:
    """The BIWI sample frame (a real 640x480 face) when ../shared is present, else the drawn face."""
    from posebridge.paths import shared_data

    biwi = shared_data("biwi-sample", "frame_00003_rgb.png")
    img = cv2.imread(str(biwi)) if biwi.is_file() else None
    if img is not None:
        return img, str(biwi)
    return drawn_face(), "drawn face"


def make_clip(path: str | os.PathLike, face: np.ndarray | None = None, frames: int = 300, fps: float = 30.0,
              size: tuple[int, int] = CLIP_SIZE) -> Path:
    """A video of `face` (a frame-sized image) drifting and turning slightly, like a head in front of a
    webcam. Written with OpenCV (mp4v); returns the path."""
    path = Path(path)
    if face is None:
        face, _ = default_face()
    face = cv2.resize(face, size, interpolation=cv2.INTER_AREA) if face.shape[1::-1] != size else face
    writer = open_writer(path, fps, size)
    w, h = size
    for i in range(frames):
        t = i / fps
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 6.0 * math.sin(2 * math.pi * t / 3.0), 1.0)
        m[0, 2] += 25.0 * math.sin(2 * math.pi * t / 4.0)
        m[1, 2] += 10.0 * math.sin(2 * math.pi * t / 5.0)
        writer.write(cv2.warpAffine(face, m, size, borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return path
