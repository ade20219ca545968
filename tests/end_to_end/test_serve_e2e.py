"""End to end: a video written with OpenCV from an AFLW2000 image goes through `posebridge serve` (a
subprocess); a real ZeroMQ SUB socket on 127.0.0.1 receives v1 messages whose raw angles match
`posebridge estimate` on the same frames within 1 degree. Real WHENet weights, imported from
../shared/models/WHENet.h5 into a temporary checkpoint (skipped when ../shared is absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from posebridge.cli import main
from posebridge.output.transport import Subscriber
from tests.helpers.daemon_proc import ANY, Daemon
from tests.helpers.paths import REPO, shared_path

FRAMES = 6


def cli(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "posebridge", *args], cwd=REPO, env=env, timeout=timeout,
                          capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def whenet(tmp_path_factory) -> Path:
    h5 = shared_path("models", "WHENet.h5")
    out = tmp_path_factory.mktemp("models") / "whenet.pt"
    res = cli("models", "import", str(h5), "--format", "whenet", "--name", "whenet", "--output", str(out))
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """6 frames at 640x480: AFLW2000 image00002 on a grey canvas, shifted a few pixels per frame."""
    image = cv2.imread(str(shared_path("data", "aflw2000-dev", "image00002.jpg")))
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(FRAMES):
        frame = np.full((480, 640, 3), 110, np.uint8)
        frame[15 + i:15 + i + 450, 95 + 3 * i:95 + 3 * i + 450] = image
        writer.write(frame)
    writer.release()
    return path


def test_serve_matches_estimate(whenet, video, tmp_path):
    """Frame for frame, with the detector run inline (`faces.detect_in_thread=false`) so that every frame
    has a fresh detection to compare: the daemon's default runs it in a worker (test_detect_worker.py)."""
    est = cli("estimate", str(video), "--model", str(whenet), "--format", "jsonl")
    assert est.returncode == 0, est.stderr
    rows = [json.loads(line) for line in est.stdout.splitlines() if line.strip()]
    expected = {int(r["frame"]): [r["yaw"], r["pitch"], r["roll"]] for r in rows if int(r["face"]) == 0}
    assert sorted(expected) == list(range(FRAMES)), "the detector must find the face in every frame"

    proc = Daemon(["serve", "--source", str(video), "--model", str(whenet), "--fast", "--publish", ANY,
                   "--no-control", "--wait-subscriber", "120", "--set", "faces.redetect_every=1",
                   "--set", "faces.detect_in_thread=false"])
    try:
        with Subscriber(proc.addresses()[0]) as sub:  # serve waits for it before the first frame
            msgs = []
            while len(msgs) < FRAMES:
                msg = sub.recv(timeout_s=180)
                assert msg is not None, "no message from serve"
                msgs.append(msg)
        code, _, err = proc.finish(timeout=120)
    finally:
        proc.kill()  # only if still running
    assert code == 0, err
    assert [m.seq for m in msgs] == list(range(FRAMES))
    for i, m in enumerate(msgs):
        assert m.v == 1 and m.tracked and m.raw is not None and m.frame == [640, 480]
        diff = np.abs(np.array(m.raw) - np.array(expected[i]))
        assert diff.max() < 1.0, f"frame {i}: serve {m.raw} vs estimate {expected[i]}"
        assert abs(np.linalg.norm(m.q) - 1) < 1e-9
    assert abs(msgs[0].raw[0]) < 99  # a plausible head pose, not garbage


def test_serve_without_camera_is_one_line(capsys):
    code = main(["serve", "--source", "7", "--no-control", "--publish", ANY])
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "camera 7" in lines[0] and "--source FILE" in lines[0], err


def test_serve_bad_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "posebridge.toml"
    cfg.write_text("[filter]\nproces_noise = 3\n")
    code = main(["serve", "--config", str(cfg), "--source", "x.mp4"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "filter.proces_noise: unknown key" in err and str(cfg) in err


def test_serve_missing_video_is_one_line(tmp_path, capsys):
    code = main(["serve", "--source", str(tmp_path / "nope.mp4"), "--no-control"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and "nope.mp4" in err
