"""Built-in face detectors. The daemon issue's measurement (docs/detectors.md) picks DEFAULT_DETECTOR."""

from __future__ import annotations

import cv2
import numpy as np

from posebridge.faces.base import FaceBox, register_detector

DEFAULT_DETECTOR = "haar"


@register_detector("haar")
class HaarDetector:
    """OpenCV Haar cascades (frontal + profile, both directions), shipped with opencv-python 4.x."""

    name = "haar"

    def __init__(self, min_size: int = 40, scale_factor: float = 1.1, min_neighbors: int = 5) -> None:
        base = cv2.data.haarcascades
        self.frontal = cv2.CascadeClassifier(base + "haarcascade_frontalface_default.xml")
        self.profile = cv2.CascadeClassifier(base + "haarcascade_profileface.xml")
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        found = cascade.detectMultiScale(
            gray, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size)
        )
        return [tuple(map(int, r)) for r in found]

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        gray = cv2.equalizeHist(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY))
        w_img = gray.shape[1]
        rects = self._run(self.frontal, gray)
        if not rects:
            rects = self._run(self.profile, gray)
            rects += [(w_img - x - w, y, w, h) for x, y, w, h in self._run(self.profile, cv2.flip(gray, 1))]
        boxes = [FaceBox(x, y, x + w, y + h, 1.0, detector=self.name) for x, y, w, h in rects]
        return sorted(boxes, key=lambda b: -b.width * b.height)
