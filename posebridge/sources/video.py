"""Video files decoded by OpenCV, paced at the file's frame rate or as fast as possible."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import InputFileError
from posebridge.sources.base import Frame, PacedFileSource

log = logging.getLogger(__name__)

FALLBACK_FPS = 30.0


class VideoFileSource(PacedFileSource):
    """Frames of a video file. `realtime=True` paces frames at the file's fps and timestamps them on
    that schedule (a reader that falls behind skips stale frames when `drop_late`, counted as
    dropped); `realtime=False` decodes as fast as the reader asks and stamps each frame when decoded.
    `loop=True` starts again at the end (timestamps keep increasing). A frame that does not decode
    before the last one ends the video, unless `skip_damaged` > 0: then up to that many in a row are
    seeked past, their file frame numbers listed in `damaged` (`posebridge estimate` reports them)."""

    live = False

    def __init__(
        self,
        path: str | Path,
        realtime: bool = True,
        drop_late: bool = True,
        loop: bool = False,
        fps: float | None = None,
        skip_damaged: int = 0,
    ) -> None:
        self.path = Path(path)
        self.name = str(path)
        if not self.path.exists():
            raise InputFileError(path, "video file not found")
        if not self.path.is_file():
            raise InputFileError(path, "not a regular file")
        self._cap = cv2.VideoCapture(str(self.path))
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.skip_damaged = max(0, int(skip_damaged))
        self.damaged: list[int] = []  # file frame numbers of the frames skipped as undecodable
        self._file_pos = 0  # index of the next frame within the file
        self._index = 0  # schedule index across loops
        first = self._decode() if self._cap.isOpened() else None
        if first is None:
            self._cap.release()
            raise InputFileError(path, "cannot decode as video (not a video file, or an unsupported codec)")
        self._pending = first
        file_fps = self._cap.get(cv2.CAP_PROP_FPS)
        if fps is None:
            if not file_fps or math.isnan(file_fps) or file_fps <= 0 or file_fps > 1000:
                log.warning("%s: no usable frame rate in the file; pacing at %.0f fps", path, FALLBACK_FPS)
                file_fps = FALLBACK_FPS
            fps = file_fps
        self._start_pacing(fps, realtime, drop_late)
        self.size = (first.shape[1], first.shape[0])
        self.loop = loop
        self._loops = 0
        self._closed = False

    def _decode(self) -> np.ndarray | None:
        """The next frame that decodes, seeking past up to `skip_damaged` damaged ones in a row (listed
        in `damaged`); None at the end of the file, or after that many."""
        skipped = 0
        while True:
            ok, img = self._cap.read()
            if ok:
                return img
            inside = self.frame_count and self._file_pos < self.frame_count - 1
            if not inside or skipped >= self.skip_damaged:
                return None
            self.damaged.append(self._file_pos)
            skipped += 1
            self._file_pos += 1
            self._index += 1
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, self._file_pos)
            if skipped >= self.skip_damaged:
                return None

    def _next_image(self):
        if self._pending is not None:
            img, self._pending = self._pending, None
            return img
        img = self._decode()
        if img is not None:
            return img
        if self.frame_count and self._file_pos < self.frame_count - 1:
            log.warning("%s: decoding stopped at frame %d of %d", self.path, self._file_pos, self.frame_count)
        if self.loop and self._file_pos > 0:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._file_pos = 0
            self._loops += 1
            ok, img = self._cap.read()
            if ok:
                return img
        return None

    def _skip(self) -> bool:
        if self._pending is not None:
            self._pending = None
            return True
        if self._cap.grab():
            return True
        return False

    def read(self, timeout: float | None = None) -> Frame | None:
        if self._closed or self.ended:
            self.ended = True
            return None
        for _ in range(self._pacer.behind(self._index)):
            if not self._skip():
                break
            self._dropped += 1
            self._index += 1
            self._file_pos += 1
        img = self._next_image()
        if img is None:
            self.ended = True
            return None
        t = self._pacer.wait(self._index)
        frame = Frame(img, self._index, t, self.name, {"file_frame": self._file_pos})
        self._index += 1
        self._file_pos += 1
        self._read += 1
        return frame

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cap.release()

    def _own_stats(self) -> dict:
        return {"loops": self._loops}
