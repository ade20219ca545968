"""Frame sources: camera, video file, image folder, recorded session; one interface."""

from posebridge.sources.base import Frame, FrameSource

__all__ = ["Frame", "FrameSource"]
