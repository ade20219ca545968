"""The frame-source interface: frames with capture timestamps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8, H x W x 3
    index: int  # frame number within the source
    t_capture: float  # wall-clock seconds (time.time()) when the frame was captured / is due
    source: str = ""
    meta: dict = field(default_factory=dict)


class FrameSource(Protocol):
    name: str
    live: bool  # live sources drop stale frames; file sources can run real-time or as fast as possible

    def read(self) -> Frame | None:
        """The next frame (newest, for live sources), or None at the end of the source.

        Sources in this package also accept `read(timeout=seconds)`: a live source then returns None
        when no new frame came in time, with `ended` still False (see `SourceBase`)."""
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
