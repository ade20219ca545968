"""Real-time pacing for file sources: frame i is due at t0 + i / fps (wall clock)."""

from __future__ import annotations

import time


class Pacer:
    """Schedules frames of a file at its frame rate, or lets them through as fast as possible.

    The clock starts at the first frame handed out (not at open), so slow start-up work such as
    loading a model does not turn into dropped frames. With `drop_late`, a reader that falls behind
    skips to the frame that is due now, as a camera would."""

    def __init__(self, fps: float, realtime: bool = True, drop_late: bool = True) -> None:
        self.fps = float(fps)
        self.realtime = realtime
        self.drop_late = drop_late
        self.t0: float | None = None

    def due(self, index: int) -> float:
        assert self.t0 is not None
        return self.t0 + index / self.fps

    def behind(self, index: int) -> int:
        """How many frames from `index` on are already stale (their successor is due)."""
        if not (self.realtime and self.drop_late) or self.t0 is None:
            return 0
        current = int((time.time() - self.t0) * self.fps)  # the frame due now
        return max(0, current - index)

    def wait(self, index: int) -> float:
        """Sleep until frame `index` is due; returns its capture timestamp."""
        if not self.realtime:
            return time.time()
        if self.t0 is None:
            self.t0 = time.time() - index / self.fps
        due = self.due(index)
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        return due
