"""Helpers for the tests on rendered clips: whether OpenGL rendering works here (and, if not, the
one-line reason a test skips with), clips rendered once per session, and `posebridge serve` run on a
clip in a subprocess with a real ZeroMQ subscriber (and optionally the control socket).

`gl_skip_reason()` is the single place that decides: None when a headless OpenGL context can be made,
else the reason string. CI may turn such skips into failures by checking it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from posebridge.output.ports import free_port
from posebridge.output.transport import Subscriber
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


def serve_clip(clip: Path, *args: str, control: str | None = None,
               on_message: Callable[[dict], None] | None = None, timeout_s: float = 120.0) -> list[dict]:
    """Run `posebridge serve` on `clip` in real time (the default detector, model and filter) and return
    every message a real SUB socket on 127.0.0.1 received, as wire maps, in order. `control`: a
    tcp://127.0.0.1:PORT for the control socket (else none). `on_message` sees each map as it arrives
    (e.g. to send a control request mid-clip)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    control_args = ["--control", control] if control else ["--no-control"]
    msgs: list[dict] = []
    with Subscriber(address) as sub:  # connects first; serve waits for it
        proc = subprocess.Popen(
            [sys.executable, "-m", "posebridge", "serve", "--source", str(clip), "--publish", address,
             *control_args, "--wait-subscriber", "60", "--set", "run.log_every_s=0", *args],
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                msg = sub.recv(timeout_s=0.5)
                if msg is None:
                    if proc.poll() is not None:
                        break
                    continue
                m = msg.to_map()
                msgs.append(m)
                if on_message is not None:
                    on_message(m)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, f"serve failed ({proc.returncode}): {err[-2000:]}"
    assert msgs, "no message from serve"
    return msgs
