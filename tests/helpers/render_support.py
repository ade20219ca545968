"""Helpers for the tests on rendered clips: whether OpenGL rendering works here (and, if not, the
one-line reason a test skips with), clips rendered once per session, and `posebridge serve` run on a
clip in a subprocess (tests/helpers/daemon_proc.py) with a real ZeroMQ subscriber (and optionally the
control socket).

`gl_skip_reason()` is the single place that decides: None when a headless OpenGL context can be made,
else the reason string. CI may turn such skips into failures by checking it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from posebridge.output.transport import Subscriber
from tests.helpers.daemon_proc import ANY, Daemon
from tests.helpers.paths import REPO

DEMO_CLIP = REPO / "examples" / "demo" / "head-turn.mp4"
DEMO_TRUTH = REPO / "examples" / "demo" / "head-turn.csv"


def gl_skip_reason() -> str | None:
    """None when rendering works here; else why not, in one line (moderngl missing, no EGL, no driver)."""
    try:
        from posebridge.offline.render.gl import gl_unavailable_reason
    except ImportError as exc:  # the render package itself needs nothing beyond the runtime
        return f"posebridge.offline.render does not import: {exc}"
    reason = gl_unavailable_reason()
    return None if reason is None else f"needs OpenGL rendering: {reason}"


def require_gl() -> None:
    """Skip the calling test with the reason when rendering does not work here."""
    reason = gl_skip_reason()
    if reason is not None:
        pytest.skip(reason)


def render_preset(folder: Path, preset: str, seed: int = 0):
    """The preset's clip and truth in `folder` (rendered on first use); (video path, Truth)."""
    from posebridge.offline.render.clip import read_truth, write_clip
    from posebridge.offline.render.effects import Look
    from posebridge.offline.render.trajectory import PRESETS

    video, truth = folder / f"{preset}-{seed}.mp4", folder / f"{preset}-{seed}.csv"
    if not (video.exists() and truth.exists()):
        require_gl()
        import numpy as np

        look = Look.random(np.random.default_rng((seed, 1)))
        write_clip(video, PRESETS[preset](30.0), look, seed=seed, truth_path=truth)
    return video, read_truth(truth)


def serve_clip(clip: Path, *args: str, control: bool = False,
               on_message: Callable[[dict, str | None], None] | None = None,
               timeout_s: float = 120.0) -> list[dict]:
    """Run `posebridge serve` on `clip` in real time (the default detector, model and filter) and return
    every message a real SUB socket on 127.0.0.1 received, as wire maps, in order. The daemon binds
    OS-chosen ports and the subscriber connects to the address it logs (serve waits for it). `control`:
    open the control socket too (else none). `on_message` sees each map as it arrives with the control
    address (None without one), e.g. to send a control request mid-clip."""
    proc = Daemon(["serve", "--source", str(clip), "--publish", ANY,
                   *(["--control", ANY] if control else ["--no-control"]), "--wait-subscriber", "60",
                   "--set", "run.log_every_s=0", *args])
    msgs: list[dict] = []
    try:
        address, control_address = proc.addresses()
        with Subscriber(address) as sub:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                msg = sub.recv(timeout_s=0.5)
                if msg is None:
                    if proc.poll() is not None:
                        break
                    continue
                m = msg.to_map()
                msgs.append(m)
                if on_message is not None:
                    on_message(m, control_address)
        code, _, err = proc.finish(timeout=30)
    finally:
        proc.kill()  # only if still running: a test that failed mid-clip
    assert code == 0, f"serve failed ({code}): {err[-2000:]}"
    assert msgs, "no message from serve"
    return msgs
