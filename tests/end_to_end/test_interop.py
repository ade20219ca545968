"""The extra outputs beside the ZeroMQ stream: VMC protocol (OSC over UDP) and opentrack "UDP over
network", over real UDP sockets on 127.0.0.1, received by receivers written from the protocols' specs
(python-osc's own server for VMC, a plain socket unpacking `<6d` for opentrack).

What it shows: the packet layouts and sign conventions (checked against an independent Euler
decomposition, SciPy's); a sender that cannot send never raises, logs once and counts; sending never
blocks a frame; `posebridge listen --vmc/--opentrack` prints what a receiver sees; end to end, `posebridge
serve` on a real clip feeds ZeroMQ, VMC and opentrack side by side with one message per frame each and
the same rotation (Head quaternion = the stream's `q` within 1e-6), and `posebridge replay` of its
recording feeds them the same way.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from scipy.spatial.transform import Rotation

from posebridge.errors import ConfigError
from posebridge.formats.protocol import SCHEMA_VERSION, PoseMessage
from posebridge.formats.rotation import unity_quaternion
from posebridge.output.opentrack import OpentrackSink, decode_pose, encode_pose, opentrack_angles
from posebridge.output.udp import parse_destination
from posebridge.output.vmc import VmcSink, encode_frame, parse_datagram
from tests.helpers.daemon_proc import ANY, Daemon
from tests.helpers.paths import REPO
from tests.helpers.stream_watch import Recorder


def message(yaw=0.0, pitch=0.0, roll=0.0, pos=None, seq=0, tracked=True) -> PoseMessage:
    q = [float(x) for x in unity_quaternion(yaw, pitch, roll)]
    return PoseMessage(v=SCHEMA_VERSION, seq=seq, t_capture=time.time(), t_publish=time.time(), face_id=0,
                       tracked=tracked, q=q, euler=[yaw, pitch, roll], raw=None, std=[2.0, 2.0, 2.0],
                       box=None, frame=[640, 480], pos=pos)


class OpentrackReceiver:
    """opentrack's "UDP over network" input, from its spec: 48-byte datagrams of six little-endian
    doubles X, Y, Z, yaw, pitch, roll."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.packets: list[tuple[float, ...]] = []
        self.sizes: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.sizes.append(len(data))
            if len(data) == 48:
                self.packets.append(struct.unpack("<6d", data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class VmcReceiver:
    """A VMC Marionette built on python-osc's UDP server: records every message it dispatches."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list]] = []
        d = Dispatcher()
        d.set_default_handler(lambda address, *args: self.messages.append((address, list(args))))
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
        self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def of(self, address: str) -> list[list]:
        return [args for a, args in list(self.messages) if a == address]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def wait_until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


# --------------------------------------------------------------------------------------- opentrack

def test_opentrack_packet_layout_and_signs():
    """48 bytes, <6d, X Y Z in cm then yaw pitch roll in degrees; opentrack's signs (module docstring):
    X+ = the user's left, Y+ = up, Z+ = away from the camera; yaw+ right, pitch+ up, roll+ left shoulder."""
    data = encode_pose(message(pos=[0.10, 0.02, 0.05]))
    assert len(data) == 48 and data == struct.pack("<6d", -10.0, 2.0, -5.0, 0.0, 0.0, 0.0)
    for angles, expect in [((30, 0, 0), (30, 0, 0)), ((0, 20, 0), (0, 20, 0)), ((0, 0, 10), (0, 0, 10)),
                           ((-45, 0, 0), (-45, 0, 0)), ((0, -15, 0), (0, -15, 0))]:
        assert decode_pose(encode_pose(message(*angles)))[3:] == pytest.approx(expect, abs=1e-9)
    with pytest.raises(ValueError, match="expected 48"):
        decode_pose(data[:40])


def test_opentrack_angles_equal_an_independent_decomposition():
    """For any rotation: yaw about up, then pitch about the turned x (negated: Unity's x rotation looks
    down), then roll about the turned z, as SciPy decomposes the same quaternion ('YXZ', intrinsic)."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        yaw, pitch, roll = rng.uniform(-170, 170), rng.uniform(-85, 85), rng.uniform(-80, 80)
        q = unity_quaternion(yaw, pitch, roll)
        a, b, c = Rotation.from_quat(q).as_euler("YXZ", degrees=True)
        assert opentrack_angles(q) == pytest.approx((a, -b, c), abs=1e-7)


def test_opentrack_sink_holds_position_and_never_sends_non_finite():
    rx = OpentrackReceiver()
    sink = OpentrackSink(f"127.0.0.1:{rx.port}")
    try:
        sink.send(message(30.0))  # no position yet: 0, 0, 0
        sink.send(message(31.0, pos=[0.01, 0.02, 0.03]))
        sink.send(message(32.0))  # position unknown: the last one is held
        bad = message(0.0)
        bad.q = [float("nan"), 0.0, 0.0, 1.0]
        sink.send(bad)  # never on the wire; counted
        assert wait_until(lambda: len(rx.packets) == 3)
        time.sleep(0.1)
    finally:
        sink.close()
        rx.close()
    assert rx.sizes == [48, 48, 48]
    assert rx.packets[0][:3] == (0.0, 0.0, 0.0)
    assert rx.packets[1][:3] == pytest.approx((-1.0, 2.0, -3.0)) and rx.packets[2][:3] == rx.packets[1][:3]
    assert [p[3] for p in rx.packets] == pytest.approx([30.0, 31.0, 32.0])
    assert all(math.isfinite(v) for p in rx.packets for v in p)
    st = sink.stats()
    assert st["messages"] == 4 and st["datagrams"] == 3 and st["errors"] == 1
    assert "non-finite" in st["last_error"]


# --------------------------------------------------------------------------------------------- VMC

def test_vmc_bundle_follows_the_spec():
    """One bundle: Root/Pos ("root", p, identity q), Bone/Pos ("Head", head_local, q), OK (1 3 0 tracked),
    T; strings and OSC float32 / int32 types as the spec lists them."""
    msg = message(30.0, 20.0, 10.0, pos=[0.01, -0.02, 0.03])
    data = encode_frame(msg, 12.5, "root", 2.0, (0.0, 0.1, 0.0))
    got = parse_datagram(data)
    assert [a for a, _ in got] == ["/VMC/Ext/Root/Pos", "/VMC/Ext/Bone/Pos", "/VMC/Ext/OK", "/VMC/Ext/T"]
    root, head, ok, t = (args for _, args in got)
    assert root[0] == "root" and root[1:4] == pytest.approx([0.02, -0.04, 0.06]) and root[4:] == [0, 0, 0, 1]
    assert head[0] == "Head" and head[1:4] == pytest.approx([0.0, 0.1, 0.0])
    assert head[4:] == [float(np.float32(c)) for c in msg.q]  # float32 on the wire
    assert max(abs(a - b) for a, b in zip(head[4:], msg.q, strict=True)) < 1e-7
    assert ok == [1, 3, 0, 1] and t == [12.5]
    assert b",sfffffff\x00" in data and b",iiii\x00" in data and b",f\x00" in data  # OSC type tags
    assert data.startswith(b"#bundle\x00") and data[8:16] == b"\x00" * 7 + b"\x01"  # time tag: immediately
    lost = parse_datagram(encode_frame(message(tracked=False), 1.0, "head", 1.0, (0.0, 0.1, 0.0),
                                       last_pos=(0.05, 0.0, 0.0)))
    assert [a for a, _ in lost] == ["/VMC/Ext/Bone/Pos", "/VMC/Ext/OK", "/VMC/Ext/T"]  # no root: head mode
    assert lost[0][1][1:4] == pytest.approx([0.05, 0.1, 0.0]) and lost[1][1] == [1, 3, 0, 0]
    none = parse_datagram(encode_frame(msg, 1.0, "none", 1.0, (0.0, 0.08, 0.01)))
    assert none[0][1][1:4] == pytest.approx([0.0, 0.08, 0.01])  # rest position only


def test_vmc_sink_to_python_osc_server():
    rx = VmcReceiver()
    sink = VmcSink(f"127.0.0.1:{rx.port}", position_to="root")
    sent = [message(5.0 * i, -2.0 * i, 1.0, pos=[0.01 * i, 0.0, -0.01 * i], seq=i) for i in range(20)]
    try:
        for m in sent:
            sink.send(m)
        assert wait_until(lambda: len(rx.of("/VMC/Ext/T")) == 20)
    finally:
        sink.close()
        rx.close()
    heads, roots = rx.of("/VMC/Ext/Bone/Pos"), rx.of("/VMC/Ext/Root/Pos")
    assert len(heads) == len(roots) == 20 and sink.stats()["errors"] == 0
    for m, h, r in zip(sent, heads, roots, strict=True):
        assert max(abs(a - b) for a, b in zip(h[4:8], m.q, strict=True)) < 1e-6
        assert r[1:4] == pytest.approx(m.pos, abs=1e-7)
    times = [a[0] for a in rx.of("/VMC/Ext/T")]
    assert times == sorted(times)


# ------------------------------------------------------------------------------ failures and blocking

def test_a_sender_that_cannot_send_logs_once_and_counts(caplog):
    """Sending to the broadcast address without permission fails on every datagram (EACCES): send()
    never raises, logs one warning for the whole outage and counts every failure."""
    sink = OpentrackSink("255.255.255.255:4242")
    with caplog.at_level(logging.INFO, logger="posebridge.output.udp"):
        for i in range(50):
            sink.send(message(float(i)))
    sink.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot send" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    st = sink.stats()
    assert st["messages"] == 50 and st["errors"] == 50 and st["datagrams"] == 0
    assert "PermissionError" in st["last_error"]


def test_sending_never_blocks_even_when_nobody_reads():
    """A receiver that never reads (its buffer fills): 20,000 sends, none waits."""
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind(("127.0.0.1", 0))
    dest = f"127.0.0.1:{quiet.getsockname()[1]}"
    sinks = [VmcSink(dest), OpentrackSink(dest)]
    msg = message(10.0, 5.0, 2.0, pos=[0.01, 0.02, 0.03])
    worst = 0.0
    try:
        for _ in range(10000):
            for sink in sinks:
                t0 = time.perf_counter()
                sink.send(msg)
                worst = max(worst, time.perf_counter() - t0)
    finally:
        for sink in sinks:
            sink.close()
        quiet.close()
    # a send that blocked on the full receiver would wait for ever: 1 s detects that on any machine (the
    # per-send cost is a benchmark's figure: benchmarks/bench_interop_latency.py)
    assert worst < 1.0, f"a send took {worst * 1000:.1f} ms"
    assert all(s.stats()["messages"] == 10000 for s in sinks)


@pytest.mark.parametrize("text, expect", [
    ("127.0.0.1:39540", ("127.0.0.1", 39540)), ("192.168.1.20", ("192.168.1.20", 4242)),
    (":5000", ("127.0.0.1", 5000)), ("5000", ("127.0.0.1", 5000)), ("[::1]:4243", ("::1", 4243)),
    ("localhost", ("localhost", 4242)),
])
def test_destinations(text, expect):
    assert parse_destination("opentrack.address", text, 4242) == expect


@pytest.mark.parametrize("text", ["host:0", "host:70000", "a:b", "::1:4242", "x y", "host:port"])
def test_bad_destinations_are_one_line_config_errors(text):
    with pytest.raises(ConfigError) as err:
        parse_destination("vmc.address", text, 39539)
    assert str(err.value).startswith("vmc.address: ") and "1-65535" in str(err.value)


def test_unresolvable_host_is_a_config_error():
    with pytest.raises(ConfigError, match="vmc.address: cannot resolve host 'no-such-host.invalid'"):
        VmcSink("no-such-host.invalid:39539")


# ----------------------------------------------------------------------------------- posebridge listen

def free_udp_port() -> int:
    """A UDP port free now, for `posebridge listen`, the one receiver here that posebridge binds itself:
    listen takes ports 1-65535 only (no 0 = "any"), so the port is picked before it binds and another
    process may take it first (the caller then tries again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listen_to_sinks(msg: PoseMessage, *args: str, tries: int = 3) -> tuple[subprocess.Popen, str, str]:
    """`posebridge listen --vmc P --opentrack Q ARGS` on free UDP ports while a VmcSink and an
    OpentrackSink send `msg` to them until it exits; ports picked again (up to `tries` times) when
    another process took one before listen bound it. (process, stdout, stderr)."""
    for _ in range(tries):
        vmc_port, ot_port = free_udp_port(), free_udp_port()
        proc = subprocess.Popen([sys.executable, "-m", "posebridge", "listen", "--vmc", str(vmc_port),
                                 "--opentrack", str(ot_port), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        vmc, ot = VmcSink(f"127.0.0.1:{vmc_port}"), OpentrackSink(f"127.0.0.1:{ot_port}")
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:  # until listen is up and has them all
                vmc.send(msg)
                ot.send(msg)
                time.sleep(0.05)
            out, err = proc.communicate(timeout=10)
        finally:
            vmc.close()
            ot.close()
            if proc.poll() is None:
                proc.kill()
        if not (proc.returncode == 2 and "cannot listen on UDP" in err):
            break
    return proc, out, err


def test_listen_prints_what_a_receiver_sees():
    msg = message(12.0, -7.0, 3.0, pos=[0.02, 0.01, -0.04])
    proc, out, err = listen_to_sinks(msg, "--count", "6", "--json", "--timeout", "30")
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 6 and "6 packets, 0 malformed" in err
    for r in records:
        if r["kind"] == "opentrack":
            assert [r[k] for k in ("x_cm", "y_cm", "z_cm")] == pytest.approx([-2.0, 1.0, 4.0])
            assert [r[k] for k in ("yaw", "pitch", "roll")] == pytest.approx(opentrack_angles(msg.q))
        else:
            head = next(m["args"] for m in r["messages"] if m["address"] == "/VMC/Ext/Bone/Pos")
            assert head[0] == "Head" and head[4:] == pytest.approx(msg.q, abs=1e-6)
    assert {r["kind"] for r in records} == {"vmc", "opentrack"}


def test_listen_port_in_use_is_one_line_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        res = subprocess.run([sys.executable, "-m", "posebridge", "listen", "--opentrack",
                              str(busy.getsockname()[1]), "--count", "1"], capture_output=True, text=True,
                             cwd=REPO, timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot listen on UDP" in lines[0]


# ------------------------------------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from posebridge.offline.demo import make_clip

    path = tmp_path_factory.mktemp("interop") / "clip.mp4"
    make_clip(path, seconds=3.0)  # the public-domain portrait, rolling; no gap in the first 3 s
    return path


def run_with_receivers(cmd: list[str], expect_min: int, timeout: float = 240):
    """`posebridge CMD --publish ANY` (serve or replay, waiting for a subscriber) with the VMC and
    opentrack receivers bound here first and a ZeroMQ recorder on the address the daemon logs;
    (completed process, ZeroMQ messages, VMC receiver, opentrack receiver)."""
    vmc, ot = VmcReceiver(), OpentrackReceiver()
    zmq_rx = None
    proc = Daemon([*cmd, "--publish", ANY, "--vmc", f"127.0.0.1:{vmc.port}", "--opentrack",
                   f"127.0.0.1:{ot.port}"])
    try:
        zmq_rx = Recorder(proc.addresses()[0])
        code, out, err = proc.finish(timeout)
        res = subprocess.CompletedProcess(proc.proc.args, code, out, err)
        assert res.returncode == 0, res.stderr[-3000:]
        n = len(zmq_rx.msgs)
        assert n >= expect_min, res.stderr[-3000:]
        wait_until(lambda: len(vmc.of("/VMC/Ext/T")) >= n and len(ot.packets) >= n, 10)
        time.sleep(0.3)  # anything extra would arrive now
    finally:
        proc.kill()  # only if still running
        if zmq_rx is not None:
            zmq_rx.close()
        vmc.close()
        ot.close()
    return res, zmq_rx.msgs, vmc, ot


def check_outputs(zmq_msgs: list[PoseMessage], vmc: VmcReceiver, ot: OpentrackReceiver) -> None:
    heads, oks, times = vmc.of("/VMC/Ext/Bone/Pos"), vmc.of("/VMC/Ext/OK"), vmc.of("/VMC/Ext/T")
    roots = vmc.of("/VMC/Ext/Root/Pos")
    n = len(zmq_msgs)
    assert len(heads) == len(oks) == len(times) == len(roots) == len(ot.packets) == n
    assert set(ot.sizes) == {48}
    assert [m.seq for m in zmq_msgs] == list(range(zmq_msgs[0].seq, zmq_msgs[0].seq + n))  # nothing lost
    last_pos = [0.0, 0.0, 0.0]
    for m, head, ok, packet, root in zip(zmq_msgs, heads, oks, ot.packets, roots, strict=True):
        assert head[0] == "Head"
        assert max(abs(a - b) for a, b in zip(head[4:8], m.q, strict=True)) <= 1e-6  # float32 of the same q
        assert ok == [1, 3, 0, int(m.tracked)]
        # opentrack: the same rotation, decomposed independently (SciPy), with opentrack's signs
        a, b, c = Rotation.from_quat(m.q).as_euler("YXZ", degrees=True)
        assert packet[3:] == pytest.approx((a, -b, c), abs=1e-6)
        last_pos = m.pos if m.pos is not None else last_pos
        expect = (-100 * last_pos[0], 100 * last_pos[1], -100 * last_pos[2])
        assert packet[:3] == pytest.approx(expect, abs=1e-9)
        assert root[1:4] == pytest.approx(last_pos, abs=1e-6)
    assert [t[0] for t in times] == sorted(t[0] for t in times)


@pytest.mark.slow
def test_serve_feeds_zeromq_vmc_and_opentrack_side_by_side(clip, tmp_path):
    session = tmp_path / "run.pbsession"
    res, msgs, vmc, ot = run_with_receivers(
        ["serve", "--source", str(clip), "--fast", "--set",
         "faces.detect_in_thread=false", "--no-control", "--wait-subscriber", "60",
         "--record", str(session)], 80)
    frames = int(re.search(r"stopped after (\d+) frames, (\d+) messages", res.stderr).group(1))
    assert len(msgs) == frames == 90  # every frame of the 3 s clip: one message per output per frame
    assert sum(m.tracked for m in msgs) >= 80 and sum(m.pos is not None for m in msgs) >= 80
    check_outputs(msgs, vmc, ot)
    # the roll the clip animates is in the quaternion the outputs carry
    rolls = [opentrack_angles(m.q)[2] for m in msgs if m.tracked]
    assert max(rolls) - min(rolls) > 12  # the clip rolls 0 -> +15 -> 0 in its 3 s
    assert f"vmc to 127.0.0.1:{vmc.port}: {frames} messages sent, 0 failed" in res.stderr
    assert f"opentrack to 127.0.0.1:{ot.port}: {frames} messages sent, 0 failed" in res.stderr

    # `posebridge replay` of that recording feeds the same outputs the same way
    res2, msgs2, vmc2, ot2 = run_with_receivers(
        ["replay", str(session), "--speed", "4", "--wait-subscriber", "60"], 80)
    assert len(msgs2) == frames
    check_outputs(msgs2, vmc2, ot2)
    assert [m.q for m in msgs2] == [m.q for m in msgs] and [m.pos for m in msgs2] == [m.pos for m in msgs]


@pytest.mark.slow
def test_serve_keeps_streaming_when_an_output_cannot_send(clip):
    """opentrack to a broadcast address it may not send to: every send fails, the daemon logs it once,
    streams every frame on ZeroMQ and exits normally."""
    proc = Daemon(["serve", "--source", str(clip), "--fast", "--detector", "haar", "--publish", ANY,
                   "--no-control", "--wait-subscriber", "60", "--max-frames", "30", "--opentrack",
                   "255.255.255.255:4242"])
    zmq_rx = None
    try:
        zmq_rx = Recorder(proc.addresses()[0])
        code, _, err = proc.finish(240)
    finally:
        proc.kill()  # only if still running
        time.sleep(0.2)
        if zmq_rx is not None:
            zmq_rx.close()
    assert code == 0, err[-3000:]
    assert err.count("cannot send") == 1
    assert "opentrack to 255.255.255.255:4242: 0 messages sent, 30 failed" in err
    assert len(zmq_rx.msgs) == 30
