"""dlib's HOG + linear SVM frontal face detector (PyPI `dlib-bin`), with a Haar-profile fallback."""

from __future__ import annotations

import numpy as np

from posebridge.errors import ConfigError
from posebridge.faces.base import FaceBox, register_detector
from posebridge.faces.geometry import clip_box, positive_int, shrink
from posebridge.faces.haar import HaarDetector


@register_detector("dlib_hog")
class DlibHogDetector:
    """dlib's HOG frontal face detector (from PyPI `dlib-bin`). `upsample` doubles the image that many
    times to find faces smaller than ~80 px (slow); `threshold` shifts the SVM decision (negative finds
    more faces, with more false alarms). With `profile_fallback`, a frame where HOG finds nothing is
    searched with OpenCV's Haar profile cascades (shrunk to `profile_input_width`); those boxes carry
    detector "haar_profile" (PROFILE_TAG)."""

    name = "dlib_hog"

    def __init__(
        self,
        upsample: int = 0,
        threshold: float = 0.0,
        input_width: int | None = None,
        profile_fallback: bool = True,
        profile_input_width: int | None = 320,
        profile_scale_factor: float = 1.1,
    ) -> None:
        try:
            import dlib
        except ImportError:
            raise ConfigError("faces.detector: dlib_hog needs dlib, which this install does not have: "
                              "pip install 'posebridge[dlib]'") from None
        self._detector = dlib.get_frontal_face_detector()
        self.upsample = positive_int("upsample", upsample, 0)
        self.threshold, self.input_width = float(threshold), input_width
        self._profile = (HaarDetector(input_width=profile_input_width, scale_factor=profile_scale_factor)
                         if profile_fallback else None)

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        small, k = shrink(image_bgr, self.input_width)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        rects, scores, _ = self._detector.run(rgb, self.upsample, self.threshold)
        boxes = [clip_box(FaceBox(r.left() * k, r.top() * k, (r.right() + 1) * k, (r.bottom() + 1) * k,
                                  float(s), detector=self.name), image_bgr.shape)
                 for r, s in zip(rects, scores, strict=True)]
        if not boxes and self._profile is not None:
            return self._profile.detect_profiles(image_bgr)
        return sorted(boxes, key=lambda b: -b.score)
