"""The frame-source interface (`FrameSource`, the one the daemon's loop reads), the frame it hands out,
and the plumbing the built-in sources share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from posebridge.sources.pacing import Pacer


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8, H x W x 3
    index: int  # frame number within the source
    t_capture: float  # wall-clock seconds (time.time()) when the frame was captured / is due
    source: str = ""
    meta: dict = field(default_factory=dict)


class FrameSource(Protocol):
    """What the daemon's loop reads frames from (every source in this package; tests pass fakes): frames
    with capture times. `read` returns None at the end of the source (then `ended` is True) or, for a
    live source, when no new frame came within `timeout` seconds (`ended` stays False)."""

    name: str
    live: bool  # live sources drop stale frames; file sources can run real-time or as fast as possible
    ended: bool

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame (newest, for live sources), or None (see above)."""
        ...

    def close(self) -> None: ...

    def stats(self) -> dict:
        """Counters: frames read, frames dropped, reconnects..."""
        ...


class SourceBase:
    """Shared plumbing: `ended` flag, context manager, iteration until the end of the source."""

    name: str = ""
    live: bool = False
    ended: bool = False  # True once read() has returned None because the source is finished or closed

    def read(self, timeout: float | None = None) -> Frame | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stats(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is None:
                if self.ended:
                    return
                continue
            yield frame

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PacedFileSource(SourceBase):
    """What the file sources (video, image folder) share: frames paced at `fps` by a `Pacer`, and the
    counters they report (`stats()`: frames, dropped, the source's own counters, fps, realtime)."""

    fps: float

    def _start_pacing(self, fps: float, realtime: bool, drop_late: bool) -> None:
        self.fps = float(fps)
        self._pacer = Pacer(self.fps, realtime, drop_late)
        self._read = 0  # frames handed out
        self._dropped = 0  # frames skipped to keep up

    @property
    def realtime(self) -> bool:
        return self._pacer.realtime

    def _own_stats(self) -> dict:
        """The source's own counters, between `dropped` and `fps` in `stats()`."""
        return {}

    def stats(self) -> dict:
        return {"frames": self._read, "dropped": self._dropped, **self._own_stats(), "fps": self.fps,
                "realtime": self.realtime}
