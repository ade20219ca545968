"""Image files: which files of a folder are images (natural name order), reading one, and picking an
even sample. Used by the sources (and through the folder source by `estimate`), face-crop loading
(posebridge.inference.crops), ONNX verification and int8 calibration."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import InputFileError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def natural_key(path: Path) -> list:
    """`img2.png` sorts before `img10.png`."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike, limit: int | None = None, what: str = "folder") -> list[Path]:
    """Image files directly in `folder` (or its `images/` subfolder), in natural name order. One-line
    InputFileError when the folder is missing or has no images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, f"{what} not found" if not folder.exists() else "not a folder")
    if not any(is_image_name(p) for p in folder.iterdir()) and (folder / "images").is_dir():
        folder = folder / "images"
    paths = sorted((p for p in folder.iterdir() if is_image_name(p) and p.is_file()), key=natural_key)
    if not paths:
        raise InputFileError(folder, f"no images ({', '.join(IMAGE_SUFFIXES)}) in the {what}")
    return paths[:limit] if limit else paths


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """BGR uint8 image, or None if the file cannot be read or decoded (grey images become BGR)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def evenly(paths: Sequence[Path], n: int) -> list[Path]:
    """`n` paths spread evenly over the sorted list (deterministic, covers the whole folder)."""
    if n >= len(paths):
        return list(paths)
    idx = np.linspace(0, len(paths) - 1, n).round().astype(int)
    return [paths[i] for i in idx]
