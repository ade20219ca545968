"""Frame sources: camera, video file, image folder, recorded session; one interface."""

from posebridge.sources.base import Frame, FrameSource, SourceBase
from posebridge.sources.factory import open_source

__all__ = ["Frame", "FrameSource", "SourceBase", "open_source"]
