"""OpenCV Haar cascades (frontal, then profile both ways) from opencv-python: the detector that needs
nothing but OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

from posebridge.errors import ConfigError, InputFileError
from posebridge.faces.base import FaceBox, register_detector
from posebridge.faces.geometry import nms, positive_int, shrink

PROFILE_TAG = "haar_profile"  # FaceBox.detector of boxes from the Haar profile cascades (own ROI map)


@register_detector("haar")
class HaarDetector:
    """OpenCV Haar cascades: frontal; if nothing frontal is found, profile (left and mirrored right).
    Runs on the frame shrunk to 320 px wide by default (better recall, fewer false boxes and less time
    than the full 640x480 frame: docs/detectors.md; `min_size` stays in frame pixels).

    `profile`: "fallback" (default: only when no frontal face), "always", or "never". Scores are the
    cascade's final-stage weights (higher = more confident); overlapping boxes are merged by NMS.
    """

    name = "haar"

    def __init__(
        self,
        min_size: int = 40,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        profile: str = "fallback",
        input_width: int | None = 320,
    ) -> None:
        base = cv2.data.haarcascades
        self.frontal = cv2.CascadeClassifier(base + "haarcascade_frontalface_default.xml")
        self.profile_cascade = cv2.CascadeClassifier(base + "haarcascade_profileface.xml")
        if self.frontal.empty() or self.profile_cascade.empty():
            raise InputFileError(base, "OpenCV's Haar cascade files are missing from this opencv-python")
        if profile not in ("fallback", "always", "never"):
            raise ConfigError(f"faces.options.profile: expected fallback|always|never, got {profile!r}")
        if not scale_factor > 1.0:
            raise ConfigError(f"faces.options.scale_factor: must be > 1, got {scale_factor!r}")
        self.min_size = positive_int("min_size", min_size)
        self.min_neighbors = positive_int("min_neighbors", min_neighbors, 0)
        self.scale_factor, self.profile, self.input_width = scale_factor, profile, input_width

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray, min_px: int) -> list[tuple]:
        rects, _, weights = cascade.detectMultiScale3(
            gray, self.scale_factor, self.min_neighbors, minSize=(min_px, min_px), outputRejectLevels=True
        )
        return [(*map(int, r), float(s)) for r, s in zip(rects, np.ravel(weights), strict=True)]

    def _prepare(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float, int]:
        small, k = shrink(image_bgr, self.input_width)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        return gray, k, max(20, round(self.min_size / k))

    def _profiles(self, gray: np.ndarray, min_px: int) -> list[tuple]:
        """Profile-cascade rects, tagged PROFILE_TAG: their boxes frame a turned face differently from
        frontal ones, so they get their own ROI map (posebridge.inference.roi_map)."""
        w_img = gray.shape[1]
        rects = self._run(self.profile_cascade, gray, min_px)
        rects += [(w_img - x - w, y, w, h, s)
                  for x, y, w, h, s in self._run(self.profile_cascade, cv2.flip(gray, 1), min_px)]
        return [(*r, PROFILE_TAG) for r in rects]

    def _boxes(self, rects: list[tuple], k: float) -> list[FaceBox]:
        boxes = [FaceBox(x * k, y * k, (x + w) * k, (y + h) * k, s, detector=tag)
                 for x, y, w, h, s, tag in rects]
        return sorted(nms(boxes, 0.3), key=lambda b: -b.width * b.height)

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        gray, k, min_px = self._prepare(image_bgr)
        rects = [(*r, self.name) for r in self._run(self.frontal, gray, min_px)]
        if self.profile == "always" or (self.profile == "fallback" and not rects):
            rects += self._profiles(gray, min_px)
        return self._boxes(rects, k)

    def detect_profiles(self, image_bgr: np.ndarray) -> list[FaceBox]:
        """Only the profile cascades (left and mirrored right)."""
        gray, k, min_px = self._prepare(image_bgr)
        return self._boxes(self._profiles(gray, min_px), k)
