"""A folder of images (or one image) played as a video: sorted by name, paced at a chosen fps."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from posebridge.errors import InputFileError
from posebridge.imagefiles import list_images, read_image
from posebridge.sources.base import Frame, PacedFileSource

log = logging.getLogger(__name__)


class ImageFolderSource(PacedFileSource):
    """Images in a folder (natural name order) as frames at `fps`. An undecodable image is logged,
    counted in `stats()["skipped"]`, listed in `unreadable` and skipped; it is not fatal."""

    live = False

    def __init__(
        self,
        path: str | Path,
        realtime: bool = True,
        fps: float = 30.0,
        drop_late: bool = True,
        loop: bool = False,
        files: Sequence[str | Path] | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = str(path)
        if files is None:
            files = list_images(self.path, what="image folder")
        self.files = [Path(f) for f in files]
        if fps <= 0:
            raise InputFileError(path, f"fps must be positive, got {fps}")
        self.loop = loop
        self._start_pacing(fps, realtime, drop_late)
        self._pos = 0  # next file
        self._index = 0  # schedule index across loops
        self._skipped = 0
        self._bad: set[Path] = set()
        self.unreadable: list[Path] = []  # images that did not decode, in the order they were met
        self._closed = False

    def _advance(self) -> bool:
        """Move to the next file; False at the end (when not looping)."""
        self._pos += 1
        self._index += 1
        if self._pos >= len(self.files):
            if not self.loop or len(self._bad) == len(self.files):
                return False
            self._pos = 0
        return True

    def read(self, timeout: float | None = None) -> Frame | None:
        while not self._closed and self._pos < len(self.files):
            lag = self._pacer.behind(self._index)
            if lag:
                self._dropped += 1
                if not self._advance():
                    break
                continue
            path = self.files[self._pos]
            img = None if path in self._bad else read_image(path)
            if img is None:
                if path not in self._bad:
                    self._bad.add(path)
                    self.unreadable.append(path)
                    self._skipped += 1
                    log.warning("%s: cannot decode image, skipped", path)
                if not self._advance():
                    break
                continue
            t = self._pacer.wait(self._index)
            frame = Frame(img, self._index, t, self.name, {"file": str(path)})
            self._read += 1
            self._advance()
            return frame
        self.ended = True
        return None

    def close(self) -> None:
        self._closed = True

    def _own_stats(self) -> dict:
        return {"skipped": self._skipped}
