"""The frame-source interface: frames with capture timestamps."""

from __future__ import annotations

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
        """The next frame (newest, for live sources), or None at the end of the source."""
        ...

    def close(self) -> None: ...

    def stats(self) -> dict:
        """Counters: frames read, frames dropped, reconnects..."""
        ...
