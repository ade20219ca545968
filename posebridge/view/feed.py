"""Between the frame loop and the page: the loop hands over each frame's image and messages by
reference (`offer`, O(1): nothing is copied, drawn or encoded there), and the page's threads take what
they need:

- `history(since)`: every published message of the last HISTORY messages (about 10 s at 60 fps), so the
  page's plot misses no sample however often it polls;
- `next_jpeg(last)`: the camera preview, drawn and encoded on demand by the first page thread that asks
  for a frame newer than the last one encoded, at most `fps` times a second, shared by every open page.
  With no page open nothing is ever encoded (`encodes` counts them; the tests watch it).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from posebridge.formats.protocol import PoseMessage
from posebridge.view.draw import render_preview

HISTORY = 1200  # messages kept for the plot: 20 s at 60 fps, 10 s at 120


@dataclass(frozen=True)
class PreviewSettings:
    fps: float = 15.0
    width: int = 640
    quality: int = 70


class ViewFeed:
    """The handoff; `mirror` says whether the stream is mirrored now (the preview follows it)."""

    def __init__(self, settings: PreviewSettings | None = None,
                 mirror: Callable[[], bool] = lambda: False) -> None:
        self.settings = settings or PreviewSettings()
        self.mirror = mirror
        self.encodes = 0  # preview JPEGs encoded so far
        self.encode_ms = 0.0  # time spent encoding them (ms, total)
        self.frames = 0  # frames handed over
        self.faces = 0  # faces in the last frame
        self._latest: tuple[int, np.ndarray | None, list[PoseMessage]] = (0, None, [])
        self._history: deque[PoseMessage] = deque(maxlen=HISTORY)
        self._cond = threading.Condition()
        self._waiting = 0  # page threads waiting for a new frame
        self._encoding = False
        self._encoded_frame = 0  # the frame number the current JPEG shows
        self._jpeg = b""
        self._version = 0
        self._due = 0.0  # monotonic time the next encode may start
        self._closed = False

    # ------------------------------------------------------------------ the frame loop's side: O(1)

    def offer(self, image: np.ndarray | None, messages: list[PoseMessage], faces: int) -> None:
        """One frame (None: no frame came, keep the last image) and the messages published for it."""
        n = self.frames = self.frames + 1
        if image is None:
            image = self._latest[1]
        self._latest = (n, image, messages)
        self.faces = faces
        self._history.extend(messages)
        if self._waiting:  # a page waits for a newer frame
            with self._cond:
                self._cond.notify_all()

    # ------------------------------------------------------------------------ the page's side

    def history(self, since: int = -1) -> list[PoseMessage]:
        """Messages with `seq` > `since`, oldest first (the last HISTORY at most)."""
        for _ in range(3):
            try:
                items = list(self._history)
                break
            except RuntimeError:  # mutated while copied: take it again
                continue
        else:  # pragma: no cover
            return []
        if since < 0:
            return items
        lo = len(items)
        while lo > 0 and items[lo - 1].seq > since:
            lo -= 1
        return items[lo:]

    def latest(self) -> list[PoseMessage]:
        return self._latest[2]

    def next_jpeg(self, last: int = 0, timeout: float = 2.0) -> tuple[int, bytes] | None:
        """A preview JPEG newer than version `last` and its version; None on timeout or close."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if self._closed:
                    return None
                if self._version > last:
                    return self._version, self._jpeg
                now = time.monotonic()
                n, image, messages = self._latest
                fresh = image is not None and n > self._encoded_frame
                if fresh and not self._encoding and now >= self._due:
                    self._encoding = True
                    self._due = now + 1.0 / self.settings.fps
                else:
                    if now >= deadline:
                        return None
                    wait = deadline - now
                    if fresh and not self._encoding:
                        wait = min(wait, self._due - now)
                    self._waiting += 1
                    try:
                        self._cond.wait(max(wait, 0.001))
                    finally:
                        self._waiting -= 1
                    continue
            self._encode(n, image, messages)

    def _encode(self, n: int, image: np.ndarray, messages: list[PoseMessage]) -> None:
        t0 = time.perf_counter()
        data = b""
        try:
            s = self.settings
            data = render_preview(image, messages, s.width, s.quality, self.mirror())
        finally:
            with self._cond:
                self._encoding = False
                if data:
                    self._jpeg, self._version, self._encoded_frame = data, self._version + 1, n
                    self.encodes += 1
                    self.encode_ms += (time.perf_counter() - t0) * 1000.0
                self._cond.notify_all()

    def stats(self) -> dict:
        return {"frames": self.frames, "encodes": self.encodes, "encode_ms_total": round(self.encode_ms, 1),
                "watchers": self._waiting, "faces": self.faces}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
