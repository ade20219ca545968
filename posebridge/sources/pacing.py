"""Real-time pacing, the one pacer for every file-like input: frame i of a file is due at
t0 + i / fps; a recorded session's record is due at t0 + (its capture time - the first's) / speed.

The clock starts at the first frame handed out (not at open), so slow start-up work such as loading a
model does not turn into dropped frames. With `drop_late`, a reader that falls behind skips to the
frame that is due now, as a camera would. Waiting is interruptible: with a `stop` event set, `wait`
returns at once (Ctrl-C / SIGTERM end a replay promptly even inside a long recorded gap)."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Schedules frames at their rate (or as fast as possible when `realtime` is False)."""

    def __init__(self, fps: float = 30.0, realtime: bool = True, drop_late: bool = True,
                 speed: float = 1.0, stop: threading.Event | None = None) -> None:
        self.fps = float(fps)
        self.realtime = realtime
        self.drop_late = drop_late
        self.speed = speed if speed > 0 else 1.0
        self.stop = stop
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
        return self.wait_offset(index / self.fps)

    def wait_offset(self, offset_s: float) -> float:
        """Sleep until `offset_s` seconds of recorded time (divided by `speed`) after the first frame;
        returns that due time (now, when not real-time)."""
        if not self.realtime:
            return time.time()
        offset = offset_s / self.speed
        if self.t0 is None:
            self.t0 = time.time() - offset
        due = self.t0 + offset
        delay = due - time.time()
        if delay > 0:
            if self.stop is not None:
                self.stop.wait(delay)
            else:
                time.sleep(delay)
        return due
