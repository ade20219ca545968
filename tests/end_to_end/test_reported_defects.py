"""One test per defect reported in issue 15 ("Nothing a client sends or a file holds stops the stream"),
each through the command line and real sockets on 127.0.0.1, so the same file judges any checkout:

    POSEBRIDGE_UNDER_TEST=/path/to/other/checkout pytest tests/end_to_end/test_reported_defects.py

runs the `posebridge` commands of that checkout (default: this one). Against the release before the
fix every test here fails; the before/after table is in docs/daemon.md (Security). Inputs (clips, sessions,
checkpoints, images) are made here, from the documented formats, not by the code under test. Live
attacks with many requests and the subscription flood are tests/security/test_attacks.py; property-based
runs are tests/security/test_fuzz.py.
"""

from __future__ import annotations

import math
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import msgpack
import pytest
import zmq

from tests.helpers.daemon_proc import ANY, Daemon
from tests.helpers.paths import PORTRAIT, REPO

UNDER_TEST = Path(os.environ.get("POSEBRIDGE_UNDER_TEST", REPO)).resolve()
ENV = dict(os.environ, PYTHONPATH=str(UNDER_TEST), PYTHONUNBUFFERED="1")


def posebridge(*args: str) -> Daemon:
    return Daemon(list(args), UNDER_TEST, ENV)


def finish(proc: Daemon, timeout: float = 120) -> tuple[int, str, str]:
    return proc.finish(timeout)


def one_line_error(rc: int, err: str, *names: str) -> None:
    """Exit code 2 and a single error line on stderr that names every one of `names`."""
    assert "Traceback" not in err, err[-1500:]
    assert rc == 2, f"exit {rc}: {err[-500:]}"
    lines = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert len(lines) == 1, err[-800:]
    for name in names:
        assert name in lines[0], lines[0]


def finite_message(payload: bytes) -> bool:
    """A pose message decoded as a receiver written from docs/protocol.md would: every number finite."""
    m = msgpack.unpackb(payload, raw=False)
    nums = [*m["q"], *m["euler"], *m["std"], m["t_capture"], m["t_publish"]]
    return all(isinstance(x, (int, float)) and math.isfinite(x) for x in nums)


class Watcher:
    """A SUB socket on a thread: (arrival time, all numbers finite) per received message."""

    def __init__(self, address: str) -> None:
        self.address, self.got = address, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.address)
        while not self._stop.is_set():
            if sock.poll(100):
                parts = sock.recv_multipart()
                self.got.append((time.monotonic(), finite_message(parts[-1])))
        sock.close()

    def wait_for(self, n: int, timeout: float = 90.0, proc: Daemon | None = None) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return
            time.sleep(0.05)

    def wait_quiet(self, quiet_s: float = 1.0, timeout: float = 30.0) -> None:
        """Wait until nothing has arrived for `quiet_s` (what is queued here has been read: on a loaded
        machine this thread can be seconds behind the sender)."""
        deadline = time.monotonic() + timeout
        n, since = len(self.got), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
            time.sleep(0.05)
            if len(self.got) != n:
                n, since = len(self.got), time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def control(address: str, req: object, timeout_s: float = 5.0) -> dict | None:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    try:
        sock.send(msgpack.packb(req, use_bin_type=True))
        if not sock.poll(int(timeout_s * 1000)):
            return None
        return msgpack.unpackb(sock.recv(), raw=False)
    finally:
        sock.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from posebridge.offline.demo import make_clip

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_clip(path, seconds=20.0, gap=(19.5, 19.9))
    return path


def serve(clip: Path, *extra: str) -> tuple[Daemon, str, str]:
    """`serve` on OS-chosen ports; (process, publisher address, control address) once it has bound."""
    proc = posebridge("serve", "--source", str(clip), "--publish", ANY, "--control", ANY,
                      "--detector", "haar", "--wait-subscriber", "60", *extra)
    pub, ctl = proc.addresses()
    return proc, pub, ctl


def stop(proc: Daemon) -> str:
    return proc.stop()


# ----------------------------------------------------------------------------- control requests

KILLERS = {
    "overflow at the next acquisition": {"initial_rate_std": 1e300, "lost_after_s": 0},
    "huge measurement floor": {"meas_floor_deg": 1e200},
    "huge measurement scale": {"meas_scale": 1e300},
    "tiny gate rate without a jump threshold": {"gate_rate_s": 1e-300, "jump_sigma": 0},
}


@pytest.mark.parametrize("params", list(KILLERS.values()), ids=list(KILLERS))
def test_one_set_request_neither_kills_the_daemon_nor_freezes_the_avatars(clip, params):
    proc, pub, ctl = serve(clip)
    watch = Watcher(pub)
    try:
        watch.wait_for(30, proc=proc)
        assert len(watch.got) >= 30, stop(proc)[-1500:]
        reply = control(ctl, {"cmd": "set", "params": params})
        assert reply is not None and reply["ok"] is False, reply  # out of its documented range
        assert "\n" not in reply["error"] and len(reply["error"]) <= 400
        n = len(watch.got)
        watch.wait_for(n + 60, timeout=20, proc=proc)
        assert proc.poll() is None, f"the daemon died: {stop(proc)[-1500:]}"
        assert len(watch.got) >= n + 60, "the stream stopped"
    finally:
        watch.stop()
        stop(proc)
    bad = sum(not ok for _, ok in watch.got)
    assert bad == 0, f"{bad} of {len(watch.got)} published messages held non-finite numbers"


def test_control_requests_are_bounded_in_size_echo_and_memory(clip):
    proc, pub, ctl = serve(clip)
    watch = Watcher(pub)
    try:
        watch.wait_for(30, proc=proc)
        assert len(watch.got) >= 30, stop(proc)[-1500:]
        reply = control(ctl, {"cmd": "x" * 3000})  # an unknown command is echoed shortened
        assert reply is not None and not reply["ok"] and len(reply["error"]) < 400, str(reply)[:300]
        for _ in range(20):  # 20 MB of unknown commands: neither echoed nor logged in full
            control(ctl, {"cmd": "z" * (1 << 20)}, timeout_s=0.05)
        rss0, t0 = proc.rss_mb(), time.monotonic()
        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(ctl)
        sock.send(msgpack.packb({"cmd": "status", "pad": "y" * (50 << 20)}))
        sock.poll(3000)
        sock.close()
        time.sleep(1.0)
        rss1 = proc.rss_mb()
        assert proc.poll() is None, stop(proc)[-1500:]
        status = control(ctl, {"cmd": "status"})
        assert status is not None and status["ok"]
    finally:
        watch.stop()
        err = stop(proc)
    times = [t for t, _ in watch.got if t >= t0 - 0.5]
    gap = max(b - a for a, b in zip(times, times[1:], strict=False))
    assert rss1 - rss0 < 40, f"a 50 MB request grew the daemon by {rss1 - rss0:.0f} MB"
    assert gap < 0.5, f"publishing stopped for {gap:.2f} s"
    assert len(err) < 20_000, f"{len(err)} bytes of log for two requests"


# ----------------------------------------------------------------------------- session files

MAGIC = b"\x89PBSESS\n"


def record(payload: dict) -> bytes:
    """One record as docs/session-format.md lays it out: u32 length, u32 CRC-32, msgpack map."""
    body = msgpack.packb(payload, use_bin_type=True)
    return struct.pack("<II", len(body), zlib.crc32(body)) + body


def frame_record(i: int, t: float, **extra) -> dict:
    msg = {"v": 1, "seq": i, "t_capture": t, "t_publish": t + 0.01, "face_id": 0, "tracked": True,
           "q": [1.0, 0.0, 0.0, 0.0], "euler": [0.0, 0.0, 0.0], "raw": [0.0, 0.0, 0.0],
           "std": [1.0, 1.0, 1.0], "box": [100.0, 100.0, 200.0, 200.0], "frame": [640, 480]}
    rec = {"kind": "frame", "index": i, "t_capture": t, "frame": [640, 480],
           "faces": [{"face_id": 0, "box": [100.0, 100.0, 200.0, 200.0], "raw": [0.0, 0.0, 0.0],
                      "std": [1.0, 1.0, 1.0]}], "messages": [msg], "timings": {"infer": 1.0}}
    rec.update(extra)
    return rec


def write_session(path: Path, records: list[bytes]) -> Path:
    header = {"kind": "header", "format": "posebridge-session", "version": [1, 0], "created": 0.0,
              "video": "none", "posebridge": "test"}
    with open(path, "wb") as fh:
        fh.write(MAGIC + struct.pack("<HHI", 1, 0, 0) + record(header))
        for r in records:
            fh.write(r)
        fh.write(record({"kind": "end", "t": 0.0, "frames": len(records), "reason": "closed"}))
    return path


def replay_count(path: Path, *extra: str, timeout: float = 120) -> tuple[int, int, str]:
    """Replay `path` as fast as possible to a subscriber (a send queue deep enough that nothing is
    dropped, so every count is exact); (exit code, messages received, stderr)."""
    proc = posebridge("replay", str(path), "--speed", "0", "--publish", ANY, "--wait-subscriber", "30",
                      "--hwm", "100000", *extra)
    watch = Watcher(proc.addresses()[0])
    rc, _, err = finish(proc, timeout)
    watch.wait_quiet()
    watch.stop()
    return rc, len(watch.got), err


def test_one_damaged_record_does_not_end_the_session(tmp_path):
    recs = [record(frame_record(i, 1000.0 + i / 30)) for i in range(300)]
    damaged = bytearray(recs[150])
    damaged[len(damaged) // 2] ^= 0xFF  # the CRC no longer matches
    recs[150] = bytes(damaged)
    rc, n, err = replay_count(write_session(tmp_path / "damaged.pbsession", recs))
    assert "Traceback" not in err and rc == 0, err[-1500:]
    assert n == 299, f"replayed {n} of 300 frames (docs/daemon.md: 299, the damaged one skipped)"
    assert "replayed 299 frames, 299 messages; skipped 1 damaged region(s), 0 ill-typed frame(s)" in err


def test_a_record_with_a_valid_crc_but_wrong_types_is_skipped(tmp_path):
    recs = [record(frame_record(i, 1000.0 + i / 30)) for i in range(20)]
    recs[5] = record(frame_record(5, 1000.0 + 5 / 30, t_capture="soon", faces="none", messages=7))
    recs[9] = record(frame_record(9, 1000.0 + 9 / 30, frame={"w": 1}))
    rc, n, err = replay_count(write_session(tmp_path / "typed.pbsession", recs))
    assert "Traceback" not in err and rc == 0, err[-1500:]
    assert n == 18  # exactly the two ill-typed records are skipped ...
    assert "replayed 18 frames, 18 messages; skipped 0 damaged region(s), 2 ill-typed frame(s)" in err


def test_the_session_reader_streams_from_disk(tmp_path):
    """The reader's memory does not grow with the file: replaying a 400 MB session costs what a tiny
    one does."""
    def peak_mb(path: Path) -> float:
        # through a small launcher: a child forked from this (large) test process would report this
        # process's memory as its own peak (Linux carries the high-water mark across exec)
        launcher = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], "
                    "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
                    "print(os.wait4(p.pid, 0)[2].ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-m", "posebridge", "replay",
                              str(path), "--speed", "0", "--publish", ANY],
                             cwd=UNDER_TEST, env=ENV, capture_output=True, text=True, timeout=300)
        return int(out.stdout) / 1024

    pad = os.urandom(1 << 20)
    big = write_session(tmp_path / "big.pbsession",
                        [record(frame_record(i, 1000.0 + i / 30, pad=pad)) for i in range(400)])
    small = write_session(tmp_path / "small.pbsession", [record(frame_record(i, 1000.0)) for i in range(4)])
    grown = peak_mb(big) - peak_mb(small)
    assert grown < 100, f"a 400 MB session took {grown:.0f} MB more memory than a 4-frame one"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_replay_stops_promptly_during_a_long_gap(tmp_path, sig):
    path = write_session(tmp_path / "gap.pbsession",
                         [record(frame_record(0, 1000.0)), record(frame_record(1, 1060.0))])
    proc = posebridge("replay", str(path), "--publish", ANY, "--wait-subscriber", "30")
    watch = Watcher(proc.addresses()[0])
    try:
        watch.wait_for(1, timeout=60, proc=proc)  # the first frame is out: now in the 60 s gap
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.proc.send_signal(sig)
        rc, _, err = finish(proc, timeout=20)
        took = time.monotonic() - t0
    finally:
        watch.stop()
    assert took < 3.0, f"replay took {took:.1f} s to stop"
    assert "Traceback" not in err, err[-1500:]


# ----------------------------------------------------------------------------- estimate on a folder


def test_estimate_reports_unreadable_images_and_processes_the_rest(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    img = cv2.imread(str(PORTRAIT))
    cv2.imwrite(str(folder / "a_good.jpg"), img)
    (folder / "b_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" + os.urandom(200))
    cv2.imwrite(str(folder / "c_good.jpg"), img)
    rc, out, err = finish(posebridge("estimate", str(folder), "--detector", "haar", "--format", "csv"))
    assert "Traceback" not in err and rc == 0, err[-1500:]
    assert "a_good.jpg" in out and "c_good.jpg" in out
    assert "b_broken.jpg" in out + err


def test_estimate_exits_2_only_when_nothing_could_be_read(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("x.jpg", "y.png"):
        (folder / name).write_bytes(os.urandom(300))
    rc, _, err = finish(posebridge("estimate", str(folder), "--detector", "haar"))
    assert "Traceback" not in err and rc == 2, err[-1500:]
    assert "x.jpg" in err and "y.png" in err


# ----------------------------------------------------------------------------- configuration

CONFIG_GAPS = {
    "publish.hwm=-1": "publish.hwm",
    "publish.hwm=4611686018427387904": "publish.hwm",
    "model.threads=-3": "model.threads",
    "faces.jump_ratio=-1": "faces.jump_ratio",
    "run.log_every_s=-1": "run.log_every_s",
    "run.max_frames=-5": "run.max_frames",
    'publish.address="tcp://127.0.0.1:99999"': "publish.address",
}


@pytest.mark.parametrize("setting", list(CONFIG_GAPS), ids=list(CONFIG_GAPS.values()))
def test_config_values_out_of_range_are_one_line_errors(clip, setting):
    proc = posebridge("serve", "--source", str(clip), "--detector", "haar", "--fast", "--max-frames", "3",
                      "--publish", ANY, "--no-control", "--set", setting)
    rc, _, err = finish(proc, timeout=90)
    one_line_error(rc, err, CONFIG_GAPS[setting])


def test_an_absent_cuda_device_is_a_one_line_message_not_a_traceback(clip):
    """`model.device = "cuda:7"` on a machine without it: the ONNX Runtime backend says so in one line
    and runs on the CPU (as ONNX Runtime itself does), or refuses in one line; never a traceback."""
    proc = posebridge("serve", "--source", str(clip), "--detector", "haar", "--fast", "--max-frames", "3",
                      "--publish", ANY, "--no-control", "--set",
                      'model.device="cuda:7"')
    rc, _, err = finish(proc, timeout=90)
    assert "Traceback" not in err, err[-1500:]
    if rc == 0:
        assert any("CUDA" in ln and "CPU" in ln for ln in err.splitlines()), err[-800:]
    else:
        one_line_error(rc, err, "model.device")


def test_record_refuses_to_overwrite_an_existing_file(clip, tmp_path):
    target = tmp_path / "keep.pbsession"
    target.write_bytes(b"precious")
    proc = posebridge("serve", "--source", str(clip), "--detector", "haar", "--fast", "--max-frames", "3",
                      "--publish", ANY, "--no-control", "--record", str(target))
    rc, _, err = finish(proc, timeout=90)
    assert target.read_bytes() == b"precious", "the existing file was overwritten"
    one_line_error(rc, err, "keep.pbsession")


# ----------------------------------------------------------------------------- crafted checkpoints

CRAFTED_META = {
    "version as text": ("version", "2"),
    "bins as a list": ("bins", [1, 2, 3]),
    "a two-value mean": ("mean", [0.5, 0.5]),
}


@pytest.mark.parametrize("field", list(CRAFTED_META), ids=list(CRAFTED_META))
def test_crafted_checkpoint_metadata_is_a_one_line_error(tmp_path, field):
    torch = pytest.importorskip("torch", reason="making a checkpoint needs torch (the [torch] extra)")
    ckpt = torch.load(REPO / "posebridge" / "assets" / "posebridge-small.pt", weights_only=True)
    key, value = CRAFTED_META[field]
    (ckpt if key == "version" else ckpt["meta"])[key] = value
    crafted = tmp_path / "crafted.pt"
    torch.save(ckpt, crafted)
    proc = posebridge("estimate", str(PORTRAIT), "--model", str(crafted), "--detector", "haar")
    rc, _, err = finish(proc, timeout=120)
    one_line_error(rc, err, "crafted.pt")
