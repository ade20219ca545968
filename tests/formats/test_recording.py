"""Session files: round trip, kill -9 mid-recording, truncated/corrupt tails, full disk, bad files,
optional JPEG video, replay pacing and re-filtering, and the session FrameSource."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from posebridge.commands.replay import refiltered
from posebridge.errors import InputFileError
from posebridge.filtering.config import FilterConfig
from posebridge.formats.protocol import PoseMessage, payload
from posebridge.formats.session_file import (
    MAGIC,
    PREAMBLE,
    SessionReader,
    SessionWriteError,
    SessionWriter,
    decode_jpeg,
)
from posebridge.sources.pacing import Pacer
from tests.helpers.paths import REPO


def frame_kwargs(i: int, t0: float = 1000.0, yaw: float | None = None) -> dict:
    yaw = float(i) if yaw is None else yaw
    msg = PoseMessage(v=1, seq=i, t_capture=t0 + i / 30, t_publish=t0 + i / 30 + 0.01, face_id=3,
                      tracked=True, q=[0.0, 0.0, 0.0, 1.0], euler=[yaw, 0.0, 0.0], raw=[yaw, 1.0, 2.0],
                      std=[4.0, 4.0, 4.0], box=[10.0, 20.0, 110.0, 120.0], frame=[640, 480])
    return dict(frame_index=i, t_capture=t0 + i / 30, frame_size=(640, 480),
                faces=[{"face_id": 3, "box": [10.0, 20.0, 110.0, 120.0], "raw": [yaw, 1.0, 2.0],
                        "std": [4.0, 4.0, 4.0]}],
                messages=[msg], timings={"detect": 12.5, "infer": np.float64(30.25)})


def test_round_trip(tmp_path):
    path = tmp_path / "s.pbsession"
    with SessionWriter(path, header={"config": {"filter": {"process_noise": 150.0}}, "model": {"name": "m"},
                                     "source": "clip.mp4"}) as w:
        for i in range(20):
            w.write_frame(**frame_kwargs(i))
        w.write_event("recenter", t=1000.5, neutral=[1.0, 2.0, 3.0])
    r = SessionReader(path)
    assert r.header["kind"] == "header" and r.header["source"] == "clip.mp4"
    assert r.header["version"] == [1, 0] and r.header["video"] == "none"
    records = list(r)
    assert [x["kind"] for x in records] == ["frame"] * 20 + ["event", "end"]
    assert r.complete and r.problem is None
    f = records[5]
    assert f["index"] == 5 and f["t_capture"] == 1000.0 + 5 / 30  # float64 exact
    assert f["faces"][0]["raw"] == [5.0, 1.0, 2.0] and f["frame"] == [640, 480]
    assert f["messages"][0]["euler"] == [5.0, 0.0, 0.0] and f["messages"][0]["seq"] == 5
    assert f["timings"] == {"detect": 12.5, "infer": 30.25}
    assert records[-1]["frames"] == 20
    assert r.summary()["records"] == {"frame": 20, "event": 1, "end": 1}


WRITER_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from posebridge.formats.session_file import SessionWriter
    w = SessionWriter(sys.argv[1], header={{"source": "kill-test"}})
    i = 0
    while True:
        w.write_frame(frame_index=i, t_capture=1000.0 + i / 30, frame_size=(640, 480),
                      faces=[{{"face_id": 0, "box": [0.0, 0.0, 1.0, 1.0], "raw": [float(i), 0.0, 0.0],
                               "std": [3.0, 3.0, 3.0]}}],
                      timings={{"detect": 1.0}}, padding=b"x" * 3000)
        i += 1
        if i == 50:
            print("ready", flush=True)
""")


def test_kill_minus_9_keeps_every_complete_record(tmp_path):
    path = tmp_path / "killed.pbsession"
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT.format(repo=str(REPO)))
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.2)  # let it write more, mid-record when the signal lands
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    r = SessionReader(path)
    frames = [rec for rec in r if rec["kind"] == "frame"]
    assert len(frames) >= 50
    assert [f["index"] for f in frames] == list(range(len(frames)))  # every complete record, in order
    assert not r.complete  # no end record after kill -9
    size = path.stat().st_size
    assert r.good_bytes <= size
    if r.good_bytes < size:
        assert "truncated" in r.problem
    # Cut the file mid-record ourselves too: still readable, tail reported.
    data = path.read_bytes()[: r.good_bytes - 100]
    cut = tmp_path / "cut.pbsession"
    cut.write_bytes(data)
    r2 = SessionReader(cut)
    assert len(list(r2.frames())) == len(frames) - 1
    assert "truncated record" in r2.problem and "intact" in r2.problem


def test_corrupt_record_is_skipped_and_reading_resumes(tmp_path):
    path = tmp_path / "c.pbsession"
    with SessionWriter(path) as w:
        for i in range(10):
            w.write_frame(**frame_kwargs(i))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte in the middle
    path.write_bytes(bytes(data))
    r = SessionReader(path)
    frames = [f["index"] for f in r.frames()]
    assert len(frames) == 9 and frames == sorted(frames)  # only the damaged one is lost
    assert "CRC mismatch" in r.problem and r.damaged == 1 and r.complete


def test_daemon_payloads_are_stored_as_sent(tmp_path):
    """The daemon hands the recorder the msgpack bytes it published; they land in the record unchanged."""
    path = tmp_path / "p.pbsession"
    kw = frame_kwargs(3)
    msgs = kw.pop("messages")
    with SessionWriter(path) as w:
        w.write_frame(**kw, payloads=[payload(m) for m in msgs])
        w.write_frame(**frame_kwargs(4))
    first, second = SessionReader(path).frames()
    assert first["messages"] == [msgs[0].to_map()] and first["faces"] == kw["faces"]
    assert second["messages"][0]["seq"] == 4


class FullDisk:
    """A file whose disk fills up after `room` bytes: writes part of the data, then ENOSPC."""

    def __init__(self, fh, room: int) -> None:
        self.fh, self.room = fh, room

    def write(self, data) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self.fh.write(bytes(data[: self.room]))
        self.room -= n
        return n

    def truncate(self, size: int) -> int:
        return self.fh.truncate(size)

    def close(self) -> None:
        self.fh.close()

    def fileno(self) -> int:
        return self.fh.fileno()


def test_full_disk_is_one_clear_error_and_file_stays_readable(tmp_path):
    path = tmp_path / "full.pbsession"
    w = SessionWriter(path, header={"source": "x"})
    for i in range(5):
        w.write_frame(**frame_kwargs(i))
    w._fh = FullDisk(w._fh, room=100)  # the next frame record (~400 bytes) only half fits
    with pytest.raises(SessionWriteError) as info:
        w.write_frame(**frame_kwargs(5))
    msg = str(info.value)
    assert "disk full" in msg and str(path) in msg and "first 6 records (5 frames)" in msg and "\n" not in msg
    with pytest.raises(SessionWriteError):
        w.write_frame(**frame_kwargs(6))  # stays failed
    w.close()  # no crash
    r = SessionReader(path)
    assert [f["index"] for f in r.frames()] == [0, 1, 2, 3, 4]
    assert r.problem is None  # the partial record was cut off again


def test_bad_files_raise_one_line_input_errors(tmp_path):
    with pytest.raises(InputFileError, match="no such session file"):
        SessionReader(tmp_path / "missing.pbsession")
    (tmp_path / "text.pbsession").write_text("hello, this is not a session at all")
    with pytest.raises(InputFileError, match="not a posebridge session file"):
        SessionReader(tmp_path / "text.pbsession")
    (tmp_path / "stub.pbsession").write_bytes(MAGIC[:5])
    with pytest.raises(InputFileError, match="truncated session file"):
        SessionReader(tmp_path / "stub.pbsession")
    (tmp_path / "future.pbsession").write_bytes(PREAMBLE.pack(MAGIC, 2, 0, 0))
    with pytest.raises(InputFileError, match="newer than supported"):
        SessionReader(tmp_path / "future.pbsession")
    (tmp_path / "headless.pbsession").write_bytes(PREAMBLE.pack(MAGIC, 1, 0, 0) + b"\x05\x00")
    with pytest.raises(InputFileError, match="no readable session header"):
        SessionReader(tmp_path / "headless.pbsession")
    with pytest.raises(InputFileError, match="directory"):
        SessionReader(tmp_path)
    with pytest.raises(SessionWriteError, match="cannot create"):
        SessionWriter(tmp_path / "no" / "such" / "dir.pbsession")


def test_video_frames_as_jpeg(tmp_path):
    import cv2

    path = tmp_path / "v.pbsession"
    img = np.zeros((48, 64, 3), np.uint8)
    cv2.circle(img, (32, 24), 12, (0, 200, 255), -1)
    with SessionWriter(path, video=True, jpeg_quality=95) as w:
        w.write_frame(**frame_kwargs(0), image=img)
    r = SessionReader(path)
    assert r.header["video"] == "jpeg"
    back = decode_jpeg(next(r.frames()))
    assert back.shape == img.shape and np.abs(back.astype(int) - img).mean() < 3.0


def test_pacer_keeps_original_timing(monkeypatch):
    import posebridge.sources.pacing as pacing

    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    monkeypatch.setattr(pacing.time, "time", lambda: now[0])
    monkeypatch.setattr(pacing.time, "sleep", sleep)
    pacer = Pacer(realtime=True, drop_late=False)
    assert [round(pacer.wait_offset(d), 9) for d in (0.0, 0.1, 0.3)] == [100.0, 100.1, 100.3]
    assert pytest.approx(sum(slept)) == 0.3
    now[0], slept[:] = 0.0, []
    twice = Pacer(realtime=True, speed=2.0)
    assert pytest.approx([twice.wait_offset(d) for d in (0.0, 0.1, 0.3)][-1]) == 0.15
    fast = Pacer(realtime=False)
    now[0] = 7.0
    assert [fast.wait_offset(d) for d in (0.0, 0.1)] == [7.0, 7.0]  # stamped when handed out


def test_pacer_wait_stops_at_once_when_asked():
    import threading

    stop = threading.Event()
    pacer = Pacer(realtime=True, stop=stop)
    pacer.wait_offset(0.0)
    threading.Timer(0.1, stop.set).start()
    t0 = time.perf_counter()
    pacer.wait_offset(30.0)  # a 30 s recorded gap
    assert time.perf_counter() - t0 < 2.0


def test_refilter_with_new_parameters(tmp_path):
    path = tmp_path / "r.pbsession"
    rng = np.random.default_rng(0)
    with SessionWriter(path) as w:
        for i in range(60):
            kw = frame_kwargs(i, yaw=10.0 + rng.normal(0, 0.5))
            kw["faces"][0]["std"] = [55.0, 55.0, 55.0]  # WHENet-like spread (docs/filter.md)
            if 30 <= i < 35:
                kw["faces"] = []  # a dropout
            w.write_frame(**kw)
    r = SessionReader(path)
    smooth = [m for _, ms in refiltered(iter(r), FilterConfig(), False, False, {}) for m in ms]
    raw = [m for _, ms in refiltered(iter(r), FilterConfig(kind="none"), False, False, {}) for m in ms]
    assert len(smooth) == len(raw) == 60
    assert np.std([m.euler[0] for m in smooth[10:30]]) < np.std([m.euler[0] for m in raw[10:30]]) / 2
    assert smooth[32].tracked and smooth[32].raw is None and not raw[32].tracked


def test_refilter_applies_a_recorded_recenter(tmp_path):
    """A session recorded across a `recenter` replays re-filtered with the same neutral pose from there."""
    path = tmp_path / "rc.pbsession"
    with SessionWriter(path) as w:
        for i in range(20):
            w.write_frame(**frame_kwargs(i, yaw=20.0))
            if i == 9:
                w.write_event("recenter", t=1000.0 + i / 30, neutral=[20.0, 1.0, 2.0])
    reader = SessionReader(path)
    msgs = [m for _, ms in refiltered(iter(reader), FilterConfig(), False, False, {}) for m in ms]
    assert abs(msgs[5].q[3]) < 0.99  # before: absolute (20 degrees of yaw)
    assert all(abs(m.q[3]) > 0.9999 for m in msgs[10:])  # after: relative to the recorded neutral pose
    assert msgs[15].euler[0] == pytest.approx(20.0, abs=0.5)  # euler stays absolute


def test_session_frame_source(tmp_path):
    from posebridge.sources import open_source
    from posebridge.sources.session import SessionSource, is_session_file

    path = tmp_path / "video.pbsession"
    with SessionWriter(path, video=True) as w:
        for i in range(4):
            img = np.full((48, 64, 3), 40 * i, np.uint8)
            w.write_frame(**frame_kwargs(i, t0=2000.0), image=img)
    assert is_session_file(path) and not is_session_file(tmp_path / "nope")
    src = open_source(str(path), realtime=False)
    assert isinstance(src, SessionSource)
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert abs(float(frames[2].image.mean()) - 80) < 3
    assert frames[1].meta["record"]["faces"][0]["face_id"] == 3 and "jpeg" not in frames[1].meta["record"]
    src.close()
    paced_src = SessionSource(path, realtime=True, speed=2.0)  # 3 gaps of 1/30 s at 2x: ~50 ms
    t0 = time.perf_counter()
    stamps = [f.t_capture for f in paced_src]
    assert time.perf_counter() - t0 >= 0.045
    assert pytest.approx(stamps[-1] - stamps[0], abs=1e-6) == 3 / 30 / 2
    poses_only = tmp_path / "poses.pbsession"
    with SessionWriter(poses_only) as w:
        w.write_frame(**frame_kwargs(0))
    with pytest.raises(InputFileError, match="no recorded video"):
        SessionSource(poses_only)
