"""The face-detector interface and registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

ROI_TAG = "roi"  # FaceBox.detector of a box that already is the pose model's ROI (box-head tracking)


@dataclass
class FaceBox:
    """A face in pixel coordinates of the frame it was found in."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    face_id: int = -1  # stable id assigned by the tracker; -1 when untracked
    landmarks: np.ndarray | None = None  # (K, 2) if the detector gives them
    detector: str = ""  # name of the detector that produced the box (crop ROI maps are per detector)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


class FaceDetector(Protocol):
    name: str

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        """All faces in a BGR frame, best first."""
        ...


DETECTORS: dict[str, Callable[..., FaceDetector]] = {}


def register_detector(name: str) -> Callable:
    def deco(factory: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
        DETECTORS[name] = factory
        return factory

    return deco
