"""Face detection off the frame path: a worker thread that runs the detector on the newest frame it is
handed and returns the result when it is ready. The frame loop never waits for it: `submit` returns at
once (False when the worker is still busy with an earlier frame) and `poll` returns a finished result
or None. A detector that raises is logged (once per kind of error) and reported as finding no face."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from posebridge.faces.base import FaceBox, FaceDetector

log = logging.getLogger(__name__)


@dataclass
class Detection:
    """One finished detector run: the faces found in the frame submitted with `token`."""

    token: object
    image: np.ndarray
    faces: list[FaceBox]
    ms: float
    error: str = ""


class DetectionWorker:
    """Runs `detector.detect` in a daemon thread, one frame at a time (see the module docstring)."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.runs = 0
        self.errors = 0
        self._cond = threading.Condition()
        self._job: tuple[np.ndarray, object] | None = None
        self._result: Detection | None = None
        self._busy = False
        self._stop = False
        self._seen_errors: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="posebridge-detect", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """A frame is queued or being detected."""
        with self._cond:
            return self._busy

    def submit(self, image: np.ndarray, token: object) -> bool:
        """Hand a frame to the worker; False (and nothing queued) when it is still busy."""
        with self._cond:
            if self._busy or self._stop:
                return False
            self._job, self._busy = (image, token), True
            self._cond.notify()
            return True

    def poll(self) -> Detection | None:
        """The finished result, once (None while nothing new is ready)."""
        with self._cond:
            result, self._result = self._result, None
            return result

    def wait(self, timeout: float | None = None) -> Detection | None:
        """Block until the current job finishes (tests, offline use); its result, or None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._busy and self._result is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            result, self._result = self._result, None
            return result

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                image, token = self._job  # type: ignore[misc]
                self._job = None
            t0 = time.perf_counter()
            error = ""
            try:
                faces = list(self.detector.detect(image))
            except Exception as exc:  # a detector bug must not stop tracking; say it once per kind
                faces, error = [], f"{type(exc).__name__}: {exc}"
                self.errors += 1
                if type(exc).__name__ not in self._seen_errors:
                    self._seen_errors.add(type(exc).__name__)
                    log.error("face detector %s failed (further errors of this kind are counted, not "
                              "logged): %s", getattr(self.detector, "name", "?"), error)
            ms = (time.perf_counter() - t0) * 1000.0
            with self._cond:
                self.runs += 1
                self._result = Detection(token, image, faces, ms, error)
                self._busy = False
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
