"""Face detection and tracking: frames in, face boxes (with stable ids when tracked) out."""

from posebridge.faces.base import FaceBox, FaceDetector, create_detector, register_detector

__all__ = ["FaceBox", "FaceDetector", "create_detector", "register_detector"]
