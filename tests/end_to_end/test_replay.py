"""Recording and replay through the real CLI: kill -9 while recording leaves a readable session that
replays; SIGTERM finalises it; replay keeps the original timing and can re-run the filter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posebridge.cli import main
from posebridge.commands.replay import replay
from posebridge.formats.session_file import SessionReader
from posebridge.inference.meta import ModelMeta
from posebridge.models.checkpoint import save_checkpoint
from posebridge.models.network import build_model
from posebridge.output.transport import Publisher, Subscriber
from tests.helpers.paths import PORTRAIT, REPO


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small real network (untrained LeNet): recording/replay plumbing, not accuracy."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, build_model("lenet"), ModelMeta(name="tiny", backbone="lenet", input_size=64))
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """20 s of 320x240 at 30 fps: the portrait drifting, with noise (long enough to be killed mid-way)."""
    face = cv2.imread(str(PORTRAIT))[30:270]  # 240 x 300, the face about 90 px wide
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    rng = np.random.default_rng(0)
    for i in range(600):
        frame = np.full((240, 320, 3), 100, np.uint8)
        x = 10 + int(8 * np.sin(i / 30))
        frame[:, x:x + 300] = face
        writer.write(np.clip(frame + rng.normal(0, 1.5, frame.shape), 0, 255).astype(np.uint8))
    writer.release()
    return path


def start_record(session: Path, video: Path, model: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "posebridge", "record", str(session), "--source", str(video), "--model",
         str(model), "--no-control", "--publish", "tcp://127.0.0.1:0"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def wait_for_frames(session: Path, proc: subprocess.Popen, n: int, limit_s: float = 240) -> int:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if session.exists() and session.stat().st_size > 100:
            try:
                got = sum(1 for _ in SessionReader(session).frames())
            except Exception:  # the header may be half-written at this instant
                got = 0
            if got >= n:
                return got
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"fewer than {n} frames recorded in {limit_s} s")


def collect(address: str, out: list, stop: threading.Event) -> None:
    with Subscriber(address) as sub:
        while not stop.is_set():
            msg = sub.recv(timeout_s=0.1)
            if msg is not None:
                out.append(msg)


def replay_and_receive(session: Path, **kw) -> tuple[dict, list]:
    pub = Publisher("tcp://127.0.0.1:0")
    got: list = []
    stop = threading.Event()
    t = threading.Thread(target=collect, args=(pub.address, got, stop))
    t.start()
    try:
        assert pub.wait_for_subscriber(10)
        result = replay(str(session), pub, **kw)
        deadline = time.monotonic() + 10
        while len(got) < result["messages"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join()
        pub.close()
    return result, got


def test_kill9_during_recording_then_replay(tmp_path, video, model):
    session = tmp_path / "killed.pbsession"
    proc = start_record(session, video, model)
    try:
        wait_for_frames(session, proc, 12)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    reader = SessionReader(session)
    frames = list(reader.frames())
    assert len(frames) >= 12 and not reader.complete  # no `end` record: it was killed
    recorded = [m for f in frames for m in f["messages"]]
    assert len(recorded) == len(frames)
    with_face = [f for f in frames if f["faces"]]
    assert with_face and with_face[0]["timings"]["infer"] > 0 and "track" in frames[0]["timings"]
    # the detector runs in its worker: the first frames are answered before it has found the face
    assert len(with_face) >= 0.6 * len(frames)

    result, got = replay_and_receive(session, speed=0)
    assert result["frames"] == len(frames) and result["messages"] == len(recorded)
    assert [m.seq for m in got] == list(range(len(recorded)))
    for m, r in zip(got, recorded, strict=True):
        assert m.euler == r["euler"] and m.raw == r["raw"] and m.q == r["q"] and m.tracked == r["tracked"]

    # a kill in the middle of a write leaves a partial record: reported, not fatal
    cut = tmp_path / "cut.pbsession"
    data = session.read_bytes()
    cut.write_bytes(data[:-7])
    result, got = replay_and_receive(cut, speed=0)
    assert result["problem"] and "truncated" in result["problem"]
    assert result["frames"] == len(frames) - 1 and len(got) == len(frames) - 1


def test_sigterm_finalises_the_session(tmp_path, video, model):
    session = tmp_path / "term.pbsession"
    proc = start_record(session, video, model)
    try:
        wait_for_frames(session, proc, 5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    reader = SessionReader(session)
    n = sum(1 for _ in reader.frames())
    assert reader.complete and reader.problem is None and n >= 5
    assert "Traceback" not in err


def synthetic_session(path: Path, n: int = 30, fps: float = 30.0) -> None:
    """A session written with the recorder API: a 20-degree yaw step with noise, one face."""
    from posebridge.formats.protocol import SCHEMA_VERSION, PoseMessage
    from posebridge.formats.session_file import SessionWriter

    rng = np.random.default_rng(1)
    with SessionWriter(path, header={"config": {"filter": {"lost_after_s": 0.5}}}) as w:
        for i in range(n):
            raw = [20.0 * (i >= n // 2) + rng.normal(0, 2), rng.normal(0, 2), 0.0]
            msg = PoseMessage(v=SCHEMA_VERSION, seq=i, t_capture=1000 + i / fps, t_publish=1000 + i / fps,
                              face_id=0, tracked=True, q=[0.0, 0.0, 0.0, 1.0], euler=raw, raw=raw,
                              std=[5.0, 5.0, 5.0], box=[0.0, 0.0, 10.0, 10.0], frame=[320, 240])
            w.write_frame(i, 1000 + i / fps, [320, 240],
                          faces=[{"face_id": 0, "box": [0, 0, 10, 10], "raw": raw, "std": [5.0, 5.0, 5.0]}],
                          messages=[msg])


def test_replay_keeps_timing_and_speed(tmp_path):
    session = tmp_path / "s.pbsession"
    synthetic_session(session)  # 30 frames = 0.967 s
    pub = Publisher("tcp://127.0.0.1:0")
    try:
        t0 = time.monotonic()
        result = replay(str(session), pub, speed=1.0)
        one = time.monotonic() - t0
        t0 = time.monotonic()
        replay(str(session), pub, speed=4.0)
        four = time.monotonic() - t0
    finally:
        pub.close()
    assert result["frames"] == 30
    assert one >= 0.9 * 29 / 30 and four >= 0.9 * 29 / 120
    assert four < one


def test_replay_refilter_with_new_parameters(tmp_path):
    session = tmp_path / "s.pbsession"
    synthetic_session(session)
    _, plain = replay_and_receive(session, speed=0)
    _, raw = replay_and_receive(session, speed=0, refilter=True, filter_params={"kind": "none"})
    _, smooth = replay_and_receive(session, speed=0, refilter=True, filter_params={"process_noise": 5.0})
    assert len(plain) == len(raw) == len(smooth) == 30
    assert all(np.allclose(m.euler, m.raw, atol=1e-9) for m in raw)
    yaw_raw = np.array([m.raw[0] for m in smooth])
    yaw_smooth = np.array([m.euler[0] for m in smooth])
    assert np.std(np.diff(yaw_smooth[:15])) < np.std(np.diff(yaw_raw[:15]))  # smoother before the step


def test_replay_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "none.pbsession")]) == 2
    bad = tmp_path / "bad.pbsession"
    bad.write_bytes(b"not a session at all")
    assert main(["replay", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such session file" in err[0] and "not a posebridge session" in err[1]
    assert main(["replay", str(bad), "--filter.kind", "none"]) == 2


def test_refilter_without_changes_reproduces_what_serve_published(tmp_path):
    """`replay --refilter` starts from the recorded model's calibrated filter settings (posebridge-small's
    meas_scale), as `serve` did: with nothing changed it publishes the same filtered angles."""
    repo = REPO
    session = tmp_path / "turn.pbsession"
    assert main(["serve", "--source", str(repo / "examples" / "demo" / "head-turn.mp4"), "--max-frames", "90",
                 "--publish", "tcp://127.0.0.1:0", "--no-control", "--record", str(session)]) == 0
    recorded = [m for rec in SessionReader(session).frames() for m in rec.get("messages", [])]
    calibrated = SessionReader(session).header["model"]["extra"]["filter"]["meas_scale"]
    assert len(recorded) > 60 and calibrated != 0.015  # the model's own, not FilterConfig's default
    _, again = replay_and_receive(session, speed=0, refilter=True)
    assert len(again) == len(recorded)
    for old, new in zip(recorded, again, strict=True):
        np.testing.assert_allclose(new.euler, old["euler"], atol=1e-6)
