"""Ctrl-C and SIGTERM end the daemon's (and replay's) loop cleanly: the handler only sets a stop flag,
and the loop closes everything on its way out."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def install_signal_handlers(stop: Callable[[], None]) -> Callable[[], None]:
    """SIGTERM and SIGINT call `stop`; returns a function that restores the previous handlers. Outside
    the main thread (tests running a loop in a thread) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}

    def handler(signum, _frame):
        log.info("signal %d: shutting down", signum)
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
