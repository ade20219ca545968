"""YuNet (OpenCV's cv2.FaceDetectorYN) from a user-supplied ONNX file; never downloaded."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import ConfigError, InputFileError
from posebridge.faces.base import FaceBox, register_detector
from posebridge.faces.geometry import clip_box, shrink
from posebridge.opencv_quiet import SILENT, opencv_log_level


@register_detector("yunet")
class YuNetDetector:
    """YuNet (cv2.FaceDetectorYN) from a user-supplied ONNX file; gives 5 landmarks per face
    (right eye, left eye, nose tip, right and left mouth corners)."""

    name = "yunet"

    def __init__(
        self,
        model_path: str | None = None,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        input_width: int | None = None,
    ) -> None:
        if not model_path:
            raise ConfigError("faces.options.model_path: the yunet detector needs a YuNet .onnx file "
                              "(it is never downloaded); set faces.options.model_path")
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise InputFileError(path, "YuNet model file not found")
        try:
            with opencv_log_level(SILENT):
                self._net = cv2.FaceDetectorYN.create(
                    str(path), "", (320, 320), score_threshold, nms_threshold, top_k
                )
        except cv2.error as exc:
            reasons = re.findall(r"\(-\d+:[^)]*\) (.+)", str(exc))
            why = (reasons[-1] if reasons else "unknown error").strip()[:120]
            raise InputFileError(path, f"OpenCV cannot load this YuNet model: {why} (dynamic-shape exports "
                                       "do not load; use a fixed-size one)") from None
        self.model_path, self.input_width = str(path), input_width
        self._size: tuple[int, int] | None = None

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        small, k = shrink(image_bgr, self.input_width)
        size = (small.shape[1], small.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, faces = self._net.detect(small)
        boxes = []
        for f in faces if faces is not None else []:
            x, y, w, h = (float(v) * k for v in f[:4])
            marks = np.asarray(f[4:14], np.float64).reshape(5, 2) * k
            face = FaceBox(x, y, x + w, y + h, float(f[14]), landmarks=marks, detector=self.name)
            boxes.append(clip_box(face, image_bgr.shape))
        return sorted(boxes, key=lambda b: -b.score)
