"""The page's status panel and pose samples as one JSON-ready map (`GET /api/state`).

The daemon's numbers come from the control socket's own `status` (posebridge.daemon.control_handlers),
which takes the loop's lock and summarises the stage timers; the page polls several times a second, so
that part is recomputed at most every REFRESH_S. CPU is this process's CPU time over wall time since the
previous refresh (100 = one core)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from posebridge.formats.protocol import PoseMessage
from posebridge.view.feed import ViewFeed

if TYPE_CHECKING:
    from posebridge.daemon.pipeline import Pipeline

REFRESH_S = 0.5


def tracking_state(msg: PoseMessage | None) -> str:
    if msg is None:
        return "starting"
    if not msg.tracked:
        return "lost"
    return f"face {msg.face_id}" if msg.raw is not None else f"face {msg.face_id}, predicting"


def _r(values: list[float] | None, nd: int = 3) -> list[float] | None:
    return None if values is None else [round(float(x), nd) for x in values]


def sample(msg: PoseMessage) -> list:
    """One plot sample: [seq, t_capture, tracked, euler, raw, pos]."""
    return [msg.seq, round(msg.t_capture, 4), msg.tracked, _r(msg.euler), _r(msg.raw), _r(msg.pos, 4)]


class PageStatus:
    def __init__(self, pipe: Pipeline, feed: ViewFeed) -> None:
        self.pipe, self.feed = pipe, feed
        self._lock = threading.Lock()
        self._cached: dict = {}
        self._t = 0.0
        self._cpu = (time.monotonic(), time.process_time())

    def _daemon(self) -> dict:
        from posebridge.daemon import control_handlers

        now = time.monotonic()
        with self._lock:
            if self._cached and now - self._t < REFRESH_S:
                return self._cached
            st = control_handlers.status(self.pipe)
            t0, c0 = self._cpu
            c1 = time.process_time()
            cpu = 100.0 * (c1 - c0) / (now - t0) if now > t0 else 0.0
            self._cpu = (now, c1)
            lat = st["stages"].get("latency", {})
            detector = getattr(getattr(self.pipe.tracker, "detector", None), "name", "")
            self._cached = {
                "fps": round(st["fps"], 1),
                "latency_median_ms": round(lat.get("median_ms", 0.0), 2),
                "latency_p99_ms": round(lat.get("p99_ms", 0.0), 2),
                "cpu_percent": round(cpu, 1),
                "model": st["model"],
                "detector": detector,
                "source": st["source"],
                "frames": st["frames"],
                "drops": st["drops"],
                "frame_errors": st["frame_errors"],
                "uptime_s": round(st["uptime_s"], 1),
                "filter": st["filter"],
                "mirror": st["mirror"],
                "recentered": st["neutral"] is not None,
            }
            self._t = now
            return self._cached

    def state(self, since: int = -1) -> dict:
        """Everything the page shows: status, the samples after `since`, the latest `q` and position."""
        latest = self.feed.latest()
        head = latest[0] if latest else None
        reset = head is not None and head.seq < since  # the page saw another daemon: start again
        msgs = self.feed.history(-1 if reset else since)
        return {
            "reset": reset,
            "status": {**self._daemon(), "faces": self.feed.faces, "tracking": tracking_state(head),
                       "preview": self.feed.stats()},
            "seq": msgs[-1].seq if msgs else since,
            "samples": [sample(m) for m in msgs if m is not None],
            "q": _r(head.q, 5) if head is not None else None,
            "pos": _r(head.pos, 4) if head is not None else None,
            "now": round(time.time(), 3),
        }
