"""Built-in face detectors. `benchmarks/bench_detectors.py` and `benchmarks/bench_blazeface.py` measure
them (docs/detectors.md, docs/blazeface.md); "default" is the first of DEFAULT_ORDER that is installed.

- `blazeface`: MediaPipe's BlazeFace short-range model in ONNX Runtime (converted to ONNX, it ships with
  posebridge; `posebridge models pull blazeface` converts it again); its misses and cost on
  AFLW2000-dev are in docs/detectors.md and docs/blazeface.md.
- `haar`: OpenCV Haar cascades, frontal then profile (both directions), from opencv-python.
- `dlib_hog`: dlib's HOG + linear SVM frontal detector (5 sub-models incl. half-profiles), PyPI `dlib-bin`.
- `yunet`: OpenCV's YuNet CNN via cv2.FaceDetectorYN; needs a user-supplied `model_path`
  (e.g. face_detection_yunet_2023mar.onnx / yunet_s_640_640.onnx); it is never downloaded.

All take `input_width`: frames wider than this are shrunk before detection (boxes are mapped back to
the frame), trading small-face recall for speed.
"""

from __future__ import annotations

import logging

from posebridge import validation as v
from posebridge.errors import ConfigError
from posebridge.faces import blazeface, dlib_hog, haar, yunet  # noqa: F401  (registers them)
from posebridge.faces.base import DETECTORS, FaceDetector
from posebridge.faces.geometry import iou, nms
from posebridge.faces.haar import PROFILE_TAG

__all__ = ["DEFAULT_DETECTOR", "DEFAULT_ORDER", "PROFILE_TAG", "available", "create_detector",
           "default_detector", "iou", "nms"]

log = logging.getLogger(__name__)

DEFAULT_ORDER = ("blazeface", "dlib_hog", "haar")  # measured best first (docs/detectors.md)
DEFAULT_DETECTOR = DEFAULT_ORDER[0]
HOW_TO_INSTALL = {"blazeface": "posebridge models pull blazeface",
                  "dlib_hog": "pip install 'posebridge[dlib]'"}
_warned: set[str] = set()


def available(name: str) -> bool:
    """Whether a detector can run here: its package imports and its model file is installed (yunet
    still needs its `model_path`)."""
    if name == "blazeface":
        from posebridge.faces.blazeface_model import model_path

        try:
            model_path("short")
        except ConfigError:
            return False
        return True
    if name == "dlib_hog":
        import importlib.util

        return importlib.util.find_spec("dlib") is not None
    return True


def default_detector(quiet: bool = False) -> str:
    """The first installed detector of DEFAULT_ORDER; says once, in one line, what is missing and which
    detector is used instead."""
    for name in DEFAULT_ORDER:
        if available(name):
            return name
        if not quiet and name not in _warned:
            _warned.add(name)
            rest = DEFAULT_ORDER[DEFAULT_ORDER.index(name) + 1:]
            following = next((n for n in rest if available(n)), "haar")
            log.warning("face detector %s is not installed (%s); using %s", name, HOW_TO_INSTALL[name],
                        following)
    return DEFAULT_ORDER[-1]


def create_detector(name: str = "default", **options: object) -> FaceDetector:
    """A detector by name ("default" = the measured best that works offline)."""
    if name == "default":
        name = default_detector(quiet=bool(options))
    if name not in DETECTORS:
        choices = ", ".join(sorted(DETECTORS))
        raise ConfigError(f"faces.detector: unknown detector {name!r}; choose from {choices}")
    factory = DETECTORS[name]
    v.check_options(factory, options,
                    lambda key, valid: f"faces.options.{key}: unknown option for the {name} detector "
                                       f"(valid: {valid})")
    return factory(**options)
