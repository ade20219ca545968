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

from posebridge.faces import dlib_hog, haar, yunet  # noqa: F401  (registers them)
from posebridge.faces.geometry import iou, nms
from posebridge.faces.haar import PROFILE_TAG

__all__ = ["DEFAULT_DETECTOR", "FALLBACK_DETECTOR", "PROFILE_TAG", "available", "iou", "nms"]

DEFAULT_DETECTOR = "dlib_hog"  # measured: docs/detectors.md (yunet is better but needs a model file)
FALLBACK_DETECTOR = "haar"  # when the default's package is missing: opencv-python alone


def available(name: str) -> bool:
    """Whether a detector's package can be imported (yunet still needs its model file)."""
    if name == "dlib_hog":
        import importlib.util

        return importlib.util.find_spec("dlib") is not None
    return True
