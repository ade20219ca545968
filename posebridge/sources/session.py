"""A recorded session as a frame source: the JPEG frames of a session written with video
(`SessionWriter(video=True)`), at their original timing or as fast as possible. Sessions without
video hold only poses: publish those with `posebridge replay FILE` instead."""

from __future__ import annotations

from pathlib import Path

from posebridge.errors import InputFileError
from posebridge.formats.session_file import MAGIC, SUFFIX, SessionReader, decode_jpeg
from posebridge.sources.base import Frame, SourceBase
from posebridge.sources.pacing import Pacer

SESSION_SUFFIXES = (SUFFIX, ".pbs", ".session")


def is_session_file(path: str | Path) -> bool:
    """True when the file starts with the session magic (whatever its name)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


class SessionSource(SourceBase):
    """Frames of a session recorded with video. `realtime=True` keeps the original spacing (times
    `speed`), stamping each frame with its original capture time shifted to now; `realtime=False`
    hands frames out as fast as they are read, stamped when read. `meta["record"]` is the frame record
    (recorded faces, messages, timings) without the JPEG bytes."""

    live = False

    def __init__(self, path: str | Path, realtime: bool = True, speed: float = 1.0) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.reader = SessionReader(self.path)
        if self.reader.header.get("video", "none") == "none":
            raise InputFileError(self.path, "this session has no recorded video (poses only); publish it "
                                            "with `posebridge replay FILE`")
        self.realtime = realtime
        self.speed = float(speed) if speed and speed > 0 else 1.0
        self._frames = self.reader.frames()
        self._t0_rec: float | None = None
        self._pacer = Pacer(realtime=realtime, drop_late=False, speed=self.speed)
        self._read = 0
        self._skipped = 0
        self._closed = False

    def read(self, timeout: float | None = None) -> Frame | None:
        if self._closed or self.ended:
            self.ended = True
            return None
        for rec in self._frames:
            image = decode_jpeg(rec)
            if image is None:
                self._skipped += 1
                continue
            if self._t0_rec is None:
                self._t0_rec = rec["t_capture"]
            t = self._pacer.wait_offset(rec["t_capture"] - self._t0_rec)
            self._read += 1
            meta = {"record": {k: v for k, v in rec.items() if k != "jpeg"}, "t_recorded": rec["t_capture"]}
            return Frame(image, int(rec["index"]), t, self.name, meta)
        self.ended = True
        return None

    def close(self) -> None:
        self._closed = True

    def stats(self) -> dict:
        return {"frames_read": self._read, "frames_dropped": 0, "frames_without_image": self._skipped,
                "session_problem": self.reader.problem}
