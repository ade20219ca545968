"""`open_source(spec)`: camera index, /dev/video*, stream URL, video file, image folder, image file or
recorded session -> a FrameSource."""

from __future__ import annotations

import importlib
from pathlib import Path

from posebridge import validation as v
from posebridge.errors import ConfigError, InputFileError
from posebridge.imagefiles import IMAGE_SUFFIXES
from posebridge.sources.base import FrameSource

STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DEFAULT_SESSION_SUFFIXES = (".pbsession", ".pbs", ".session")


def _session_module():
    try:
        return importlib.import_module("posebridge.sources.session")
    except ModuleNotFoundError as exc:
        if exc.name != "posebridge.sources.session":
            raise
        return None


def _is_session(path: Path) -> bool:
    """A session by its magic bytes, or by its name (then a damaged one gets the session reader's
    error rather than "cannot decode as video")."""
    mod = _session_module()
    if mod is not None and hasattr(mod, "is_session_file") and mod.is_session_file(path):
        return True
    suffixes = getattr(mod, "SESSION_SUFFIXES", DEFAULT_SESSION_SUFFIXES)
    return path.suffix.lower() in suffixes


def _make(cls: type, spec: str, *args: object, **opts: object) -> FrameSource:
    v.check_options(cls, opts, lambda key, valid: f"source option {key!r} is not valid for {spec} "
                                                   f"({cls.__name__}: {valid})", reserved=("path", "device"))
    return cls(*args, **opts)


def open_source(spec: str | int, realtime: bool = True, **opts: object) -> FrameSource:
    """A frame source for `spec`:

    - an int, or a string of digits -> camera index; `/dev/video*` -> that camera; a stream URL
      (rtsp://, http://...) -> a live stream read like a camera; a camera's name (or a unique part of
      it, posebridge.sources.devices) when no file of that name exists;
    - a folder -> its images in name order; an image file -> that one image;
    - a session file (see posebridge.sources.session) -> its recorded frames;
    - any other file -> a video decoded by OpenCV.

    `realtime` paces files by their frame rate (False = as fast as possible). Other keyword options
    go to the source class (e.g. `fps`, `loop`, `width`, `capture_factory`); unknown ones raise
    ConfigError. Missing or undecodable files raise InputFileError.
    """
    from posebridge.sources.camera import CameraSource
    from posebridge.sources.folder import ImageFolderSource
    from posebridge.sources.video import VideoFileSource

    if isinstance(spec, bool):
        raise ConfigError(f"source: expected a camera index or a path, got {spec!r}")
    if isinstance(spec, int):
        return _make(CameraSource, str(spec), spec, **opts)
    text = str(spec).strip()
    if not text:
        raise ConfigError("source: empty; give a camera index (0), a video file or an image folder")
    if text.isdigit():
        return _make(CameraSource, text, int(text), **opts)
    if text.startswith("/dev/video") or text.lower().startswith(STREAM_SCHEMES):
        return _make(CameraSource, text, text, **opts)
    path = Path(text).expanduser()
    if not path.exists():
        from posebridge.sources.devices import find_camera

        device = find_camera(text)  # a camera's name (`posebridge cameras`), or a unique part of it
        if device is not None:
            return _make(CameraSource, text, int(device) if device.isdigit() else device, **opts)
        raise InputFileError(path, "no such file or folder, and no camera of that name (expected a video "
                                   "file, an image folder, a session file, a camera index or a camera name: "
                                   "see `posebridge cameras`)")
    if path.is_dir():
        return _make(ImageFolderSource, text, path, realtime=realtime, **opts)
    if _is_session(path):
        mod = _session_module()
        if mod is None:
            raise ConfigError(f"{path}: reading session files needs posebridge.sources.session")
        opener = getattr(mod, "open_session_source", None) or mod.SessionSource
        return _make(opener, text, path, realtime=realtime, **opts)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _make(ImageFolderSource, text, path, realtime=realtime, files=[path], **opts)
    return _make(VideoFileSource, text, path, realtime=realtime, **opts)
