"""Live cameras (index, /dev/video*, or stream URL) read by a grabber thread that keeps only the newest
frame. A read failure closes the device, is logged and counted, and the thread reopens it with
exponential backoff until it works again."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from posebridge.errors import PoseBridgeError
from posebridge.opencv_quiet import ERROR
from posebridge.sources.base import Frame, SourceBase

log = logging.getLogger(__name__)

NO_CAMERA_HINT = "use --source FILE to read a video file, an image folder or a recorded session instead"


class Capture(Protocol):
    """The part of cv2.VideoCapture a camera source uses (fakes implement this to provoke faults)."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[int | str], Capture]


def _quiet_opencv() -> Any:
    """Silence OpenCV's own warnings while probing devices; returns the previous level (None: unknown)."""
    if not hasattr(cv2, "getLogLevel"):  # pragma: no cover - not an OpenCV 4 build
        return None
    prev = cv2.getLogLevel()
    cv2.setLogLevel(ERROR)
    return prev


def _restore_opencv(prev: Any) -> None:
    if prev is not None:
        cv2.setLogLevel(prev)


def opencv_capture(device: int | str) -> cv2.VideoCapture:
    """The default capture factory: cv2.VideoCapture with a 1-frame driver buffer where supported."""
    prev = _quiet_opencv()
    try:
        cap = cv2.VideoCapture(device)
        if cap.isOpened():
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap
    finally:
        _restore_opencv(prev)


def describe(device: int | str) -> str:
    return f"camera {device}" if isinstance(device, int) else str(device)


class CameraSource(SourceBase):
    """A live camera. `read()` returns the newest frame not yet handed out, waiting for one if needed;
    frames that were overwritten before anyone read them are counted as `dropped`.

    While the camera is lost, `read()` keeps waiting (the grabber keeps retrying) until a frame comes,
    `close()` is called (then it returns None), or `timeout` seconds pass (returns None, `ended` False).
    Opening fails with one PoseBridgeError line if the camera cannot be opened at all at start-up.
    """

    live = True

    def __init__(
        self,
        device: int | str = 0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        capture_factory: CaptureFactory | None = None,
        retry_initial: float = 0.25,
        retry_max: float = 4.0,
        realtime: bool = True,  # accepted for a uniform open_source(); a camera is always real time
    ) -> None:
        self.device = device
        self.name = describe(device)
        self.width, self.height, self.fps = width, height, fps
        self._factory = capture_factory or opencv_capture
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._latest_fresh = False
        self._captured = 0
        self._delivered = 0
        self._dropped = 0
        self._losses = 0
        self._reconnects = 0
        self._connected = False
        self._last_error = ""
        self._cap: Capture | None = None
        self._cap = self._open()
        if self._cap is None:
            raise PoseBridgeError(f"{self.name}: cannot open ({self._last_error or 'no such camera'}); "
                                  + NO_CAMERA_HINT)
        self._connected = True
        self._thread = threading.Thread(target=self._grab_loop, name=f"grab {self.name}", daemon=True)
        self._thread.start()

    # -- device handling -------------------------------------------------------------------------
    def _open(self) -> Capture | None:
        if (
            isinstance(self.device, int)
            and sys.platform.startswith("linux")
            and self._factory is opencv_capture
            and not Path(f"/dev/video{self.device}").exists()
        ):
            self._last_error = f"/dev/video{self.device} does not exist"
            return None
        dev = self.device
        real = self._factory is opencv_capture
        if real and isinstance(dev, str) and dev.startswith("/dev/") and not Path(dev).exists():
            self._last_error = f"{self.device} does not exist"
            return None
        try:
            cap = self._factory(self.device)
        except Exception as exc:  # noqa: BLE001 - any driver failure means "not open"
            self._last_error = f"{type(exc).__name__}: {exc}"
            return None
        if cap is None or not cap.isOpened():
            self._last_error = "the device did not open"
            if cap is not None:
                cap.release()
            return None
        setter = getattr(cap, "set", None)
        if setter is not None:
            if self.width:
                setter(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            if self.height:
                setter(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps:
                setter(cv2.CAP_PROP_FPS, self.fps)
        return cap

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except Exception:  # noqa: BLE001
                log.debug("%s: release failed", self.name, exc_info=True)

    def _reopen_with_backoff(self, delay: float) -> bool:
        """Reopen the device, waiting `delay` first (0: at once), doubling up to `retry_max`."""
        attempt = 0
        while not self._stop.wait(delay):
            attempt += 1
            cap = self._open()
            if cap is not None:
                self._cap = cap
                return True
            delay = min(max(delay * 2.0, self.retry_initial), self.retry_max)
            log.debug("%s: reopen attempt %d failed (%s); next in %.2fs", self.name, attempt,
                      self._last_error, delay)
        return False

    def _grab_loop(self) -> None:
        got_frame = True  # since the device was (re)opened
        silent_opens = 0  # reopened devices in a row that gave no frame (a device that opens but is dead)
        t_lost = 0.0
        while not self._stop.is_set():
            cap = self._cap
            try:
                ok, img = cap.read() if cap is not None else (False, None)
            except Exception as exc:  # noqa: BLE001
                ok, img = False, None
                self._last_error = f"{type(exc).__name__}: {exc}"
            t = time.time()
            if self._stop.is_set():
                break
            if ok and img is not None:
                with self._cond:
                    if not self._connected:  # frames again after a loss: that is the recovery
                        self._connected = True
                        self._reconnects += 1
                        log.info("%s: camera back after %.1fs", self.name, t - t_lost)
                    if self._latest_fresh:
                        self._dropped += 1
                    self._latest = Frame(img, self._captured, t, self.name)
                    self._latest_fresh = True
                    self._captured += 1
                    self._cond.notify_all()
                got_frame, silent_opens = True, 0
                continue
            # Lost: close the device, report, reopen with backoff.
            self._release()
            if got_frame:
                t_lost = t
                with self._cond:
                    self._connected = False
                    self._losses += 1
                log.warning("%s: read failed, camera lost; reopening with backoff (%s)", self.name,
                            self._last_error or "no frame")
                delay = 0.0
            else:
                silent_opens += 1
                delay = min(self.retry_initial * 2.0 ** (silent_opens - 1), self.retry_max)
            got_frame = False
            if not self._reopen_with_backoff(delay):
                break
        self._release()

    # -- FrameSource -----------------------------------------------------------------------------
    def read(self, timeout: float | None = None) -> Frame | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._latest_fresh and not self._stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(0.5 if remaining is None else min(remaining, 0.5))
            if self._stop.is_set():
                self.ended = True
                return None
            self._latest_fresh = False
            self._delivered += 1
            return self._latest

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        if not self._thread.is_alive():
            self._release()

    def stats(self) -> dict:
        with self._cond:
            return {
                "frames": self._delivered,
                "captured": self._captured,
                "dropped": self._dropped,
                "losses": self._losses,
                "reconnects": self._reconnects,
                "connected": self._connected,
                "last_error": self._last_error,
            }
