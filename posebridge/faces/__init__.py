"""Face detection and tracking: frames in, face boxes (with stable ids when tracked) out. Detectors are
made by name with `posebridge.faces.detectors.create_detector`."""

from posebridge.faces.base import FaceBox, FaceDetector, register_detector

__all__ = ["FaceBox", "FaceDetector", "register_detector"]
