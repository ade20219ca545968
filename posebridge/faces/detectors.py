"""Built-in face detectors. `benchmarks/bench_detectors.py` measures them (docs/detectors.md) and picks
DEFAULT_DETECTOR: the best one that works offline from installed packages alone.

- `haar`: OpenCV Haar cascades, frontal then profile (both directions), from opencv-python.
- `dlib_hog`: dlib's HOG + linear SVM frontal detector (5 sub-models incl. half-profiles), PyPI `dlib-bin`.
- `yunet`: OpenCV's YuNet CNN via cv2.FaceDetectorYN; needs a user-supplied `model_path`
  (e.g. face_detection_yunet_2023mar.onnx / yunet_s_640_640.onnx); it is never downloaded.

All take `input_width`: frames wider than this are shrunk before detection (boxes are mapped back to
the frame), trading small-face recall for speed.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import ConfigError, InputFileError
from posebridge.faces.base import FaceBox, register_detector

DEFAULT_DETECTOR = "dlib_hog"  # measured: docs/detectors.md (yunet is better but needs a model file)
FALLBACK_DETECTOR = "haar"  # when the default's package is missing: opencv-python alone
PROFILE_TAG = "haar_profile"  # FaceBox.detector of boxes from the Haar profile cascades (own ROI map)


def available(name: str) -> bool:
    """Whether a detector's package can be imported (yunet still needs its model file)."""
    if name == "dlib_hog":
        import importlib.util

        return importlib.util.find_spec("dlib") is not None
    return True


def _shrink(image: np.ndarray, input_width: int | None) -> tuple[np.ndarray, float]:
    """The image resized so its width is at most `input_width`, and the factor back to frame pixels."""
    w = image.shape[1]
    if not input_width or w <= input_width:
        return image, 1.0
    scale = input_width / w
    size = (input_width, max(1, round(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, 1.0 / scale


def _clip(box: FaceBox, shape: tuple[int, ...]) -> FaceBox:
    h, w = shape[:2]
    box.x0, box.x1 = float(np.clip(box.x0, 0, w)), float(np.clip(box.x1, 0, w))
    box.y0, box.y1 = float(np.clip(box.y0, 0, h)), float(np.clip(box.y1, 0, h))
    return box


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: list[FaceBox], threshold: float = 0.3) -> list[FaceBox]:
    """Keep the best-scoring box of each overlapping group (IoU above `threshold`)."""
    kept: list[FaceBox] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if all(iou(b.box, k.box) <= threshold for k in kept):
            kept.append(b)
    return kept


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"faces.options.{name}: expected an integer >= {minimum}, got {value!r}")
    return value


@register_detector("haar")
class HaarDetector:
    """OpenCV Haar cascades: frontal; if nothing frontal is found, profile (left and mirrored right).
    Runs on the frame shrunk to 320 px wide by default (measured: better recall, fewer false boxes
    and half the time of the full 640x480 frame; `min_size` stays in frame pixels).

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
        self.min_size = _positive_int("min_size", min_size)
        self.min_neighbors = _positive_int("min_neighbors", min_neighbors, 0)
        self.scale_factor, self.profile, self.input_width = scale_factor, profile, input_width

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray, min_px: int) -> list[tuple]:
        rects, _, weights = cascade.detectMultiScale3(
            gray, self.scale_factor, self.min_neighbors, minSize=(min_px, min_px), outputRejectLevels=True
        )
        return [(*map(int, r), float(s)) for r, s in zip(rects, np.ravel(weights), strict=True)]

    def _prepare(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float, int]:
        small, k = _shrink(image_bgr, self.input_width)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        return gray, k, max(20, round(self.min_size / k))

    def _profiles(self, gray: np.ndarray, min_px: int) -> list[tuple]:
        """Profile-cascade rects, tagged PROFILE_TAG: their boxes frame a turned face differently from
        frontal ones, so they get their own ROI map (posebridge.faces.roi_map)."""
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
            raise ConfigError("faces.detector: dlib_hog needs the `dlib-bin` package "
                              "(pip install dlib-bin)") from None
        self._detector = dlib.get_frontal_face_detector()
        self.upsample = _positive_int("upsample", upsample, 0)
        self.threshold, self.input_width = float(threshold), input_width
        self._profile = (HaarDetector(input_width=profile_input_width, scale_factor=profile_scale_factor)
                         if profile_fallback else None)

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        small, k = _shrink(image_bgr, self.input_width)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        rects, scores, _ = self._detector.run(rgb, self.upsample, self.threshold)
        boxes = [_clip(FaceBox(r.left() * k, r.top() * k, (r.right() + 1) * k, (r.bottom() + 1) * k, float(s),
                               detector=self.name), image_bgr.shape)
                 for r, s in zip(rects, scores, strict=True)]
        if not boxes and self._profile is not None:
            return self._profile.detect_profiles(image_bgr)
        return sorted(boxes, key=lambda b: -b.score)


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
        prev = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, nms_threshold, top_k
            )
        except cv2.error as exc:
            reasons = re.findall(r"\(-\d+:[^)]*\) (.+)", str(exc))
            why = (reasons[-1] if reasons else "unknown error").strip()[:120]
            raise InputFileError(path, f"OpenCV cannot load this YuNet model: {why} (dynamic-shape exports "
                                       "do not load; use a fixed-size one)") from None
        finally:
            cv2.utils.logging.setLogLevel(prev)
        self.model_path, self.input_width = str(path), input_width
        self._size: tuple[int, int] | None = None

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        small, k = _shrink(image_bgr, self.input_width)
        size = (small.shape[1], small.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, faces = self._net.detect(small)
        boxes = []
        for f in faces if faces is not None else []:
            x, y, w, h = (float(v) * k for v in f[:4])
            marks = np.asarray(f[4:14], np.float64).reshape(5, 2) * k
            boxes.append(_clip(FaceBox(x, y, x + w, y + h, float(f[14]), landmarks=marks, detector=self.name),
                               image_bgr.shape))
        return sorted(boxes, key=lambda b: -b.score)
