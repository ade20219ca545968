"""Unity client (unity_client/): compile the plain-C# core + console runner with mono and run it against
real ZeroMQ publishers on 127.0.0.1. Skips when mono is absent (CI: apt-get install mono-mcs mono-runtime).

What it shows: the core's own tests (msgpack, tests/vectors/*.json, ZMTP codec, scripted fault peers,
Stop never hangs); the MonoBehaviours and samples compile against the compile-only UnityEngine stand-in;
the real daemon (`posebridge serve` on a video, then `posebridge replay` of its recording after a kill -9)
reaches the C# client with v == 1, increasing seq and the quaternions Python decodes from the same stream,
and answers the C# control client; against the daemon's own encoder + XPUB socket (synthetic poses) the
quaternions match exactly over ZMTP 3.0 and 3.1, unknown keys are accepted, the client survives a
publisher restart and junk bytes on the port; publish -> C# latency over 10,000 messages is printed.
The optional head position `pos` (vectors with and without it, decoded by the selftest) reaches C#
bit-exact over ZeroMQ, and HeadPoseDriver's position settings compile as public API.
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.daemon_proc import ANY, Daemon
from tests.helpers.paths import PORTRAIT, REPO, VECTORS
from tests.helpers.stream_watch import Recorder

UNITY = REPO / "unity_client"
PUBLISHER = REPO / "benchmarks" / "bench_unity_latency.py"
MCS, MONO = shutil.which("mcs"), shutil.which("mono")

pytestmark = pytest.mark.skipif(not (MCS and MONO),
                                reason="needs mono (apt-get install mono-mcs mono-runtime)")


def _mcs(out: Path, sources: list[Path], *flags: str) -> None:
    cmd = [MCS, "-langversion:7.2", "-nologo", "-warnaserror+", f"-out:{out}", *flags, *map(str, sources)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"mcs failed:\n{res.stdout}\n{res.stderr}"


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Path:
    """The console test runner: Runtime/Core + Tests/Console, no UnityEngine anywhere."""
    out = tmp_path_factory.mktemp("unity") / "PoseBridgeTests.exe"
    core = sorted((UNITY / "Runtime" / "Core").glob("*.cs"))
    assert core, "no core sources"
    for src in core:
        text = src.read_text()
        assert "using UnityEngine" not in text and "UnityEngine." not in text, f"{src.name}: plain C# only"
    _mcs(out, core + sorted((UNITY / "Tests" / "Console").glob("*.cs")))
    return out


class Proc:
    """A subprocess whose stdout lines are collected by a thread (so waiting on a marker never blocks)."""

    def __init__(self, cmd: list[str]) -> None:
        self.popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      cwd=REPO)
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip())
            self._q.put(line.rstrip())

    def wait_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=0.1)
            except queue.Empty:
                if self.popen.poll() is not None and self._q.empty():
                    break
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting with {prefix!r} within {timeout} s; output:\n"
                             + self.output())

    def finish(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"process did not finish within {timeout} s; output:\n"
                                 + self.output()) from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def output(self) -> str:
        time.sleep(0.05)
        return "\n".join(self.lines)


def cs(runner: Path, *args: str) -> Proc:
    return Proc([MONO, "--debug", str(runner), *args])


def publisher(address: str, *args: str) -> tuple[Proc, str]:
    """The synthetic publisher: formats.protocol.PoseMessage + output.transport.Publisher (XPUB), and the
    address it bound (it prints `READY <address>`; `address` ANY lets the OS choose the port)."""
    p = Proc([sys.executable, str(PUBLISHER), "publish", "--address", address, *args])
    return p, p.wait_line("READY", 60).split()[1]


@pytest.fixture(scope="module")
def daemon_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A 30 s 320x240 clip of the demo portrait moving, and an untrained LeNet checkpoint (plumbing, not
    accuracy: the daemon really detects, estimates, filters and publishes)."""
    import cv2
    import numpy as np
    import torch

    from posebridge.inference.meta import ModelMeta
    from posebridge.models.checkpoint import save_checkpoint
    from posebridge.models.network import build_model

    out = tmp_path_factory.mktemp("daemon")
    torch.manual_seed(0)
    model = save_checkpoint(out / "lenet.pt", build_model("lenet"),
                            ModelMeta(name="test-lenet", backbone="lenet", input_size=64))
    face = cv2.imread(str(PORTRAIT))
    clip = out / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
    for i in range(900):
        img = np.full((480, 640, 3), (96, 104, 112), np.uint8)
        dx = int(60 * np.sin(i / 15))
        img[90:390, 170 + dx:470 + dx] = face
        writer.write(cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA))
    writer.release()
    return clip, model


def start_daemon(clip: Path, model: Path, record: Path) -> tuple[Daemon, str, str]:
    """The real daemon: `python -m posebridge serve` on a video file, waiting for its first subscriber,
    on OS-chosen ports; (daemon, publisher address, control address)."""
    daemon = Daemon(["serve", "--source", str(clip), "--model", str(model), "--device", "cpu",
                     "--publish", ANY, "--control", ANY, "--wait-subscriber", "120", "--record", str(record)])
    pub, ctl = daemon.addresses()
    return daemon, pub, ctl


def start_replay(session: Path, pub: str) -> Daemon:
    """`python -m posebridge replay` of a recorded session, looping, waiting for its first subscriber."""
    return Daemon(["replay", str(session), "--publish", pub, "--loop", "--wait-subscriber", "120"])


@pytest.mark.slow
def test_real_daemon_stream_control_and_restart(runner, daemon_inputs, tmp_path):
    """`posebridge serve` -> C#: v, seq order, q equal to what Python decodes from the same stream;
    the control socket answers the C# REQ client; the daemon is killed mid-stream and `posebridge
    replay` of its recording comes up on the same port: the client reconnects and resumes."""
    clip, model = daemon_inputs
    recv, session = tmp_path / "recv.jsonl", tmp_path / "run.pbsession"
    daemon, pub, ctl = start_daemon(clip, model, session)
    recorder = Recorder(pub)
    restart = None
    try:
        p = cs(runner, "receive", "--endpoint", pub, "--count", "30", "--out", str(recv), "--timeout", "120")
        rc = p.finish(150)
        print(p.output())
        assert rc == 0, p.output() + "\n--- daemon ---\n" + daemon.output()
        time.sleep(0.3)
        recorder.close()  # before the restart: daemon B numbers its messages from 0 again

        status = cs(runner, "control", "--endpoint", ctl, "--cmd", "status")
        assert status.finish(30) == 0, status.output()
        recenter = cs(runner, "control", "--endpoint", ctl, "--cmd", "recenter")
        recenter.finish(30)
        assert "ok=True" in recenter.output() or "no tracked face" in recenter.output(), recenter.output()

        # Restart: the client is streaming from the daemon; it is killed (SIGKILL, no goodbye on the socket)
        # and a replay of what it recorded comes up on the same port, publishing seq from 0 again; the
        # client must reconnect by itself and resume. (Binding that port again is what is tested: the
        # one port here not chosen by the OS at bind time.)
        restart = cs(runner, "restart", "--endpoint", pub, "--count", "15", "--timeout", "120")
        restart.wait_line("PHASE1 OK", 60)
        daemon.kill()
        daemon = start_replay(session, pub)
        rc = restart.finish(150)
        print(restart.output())
        assert rc == 0, restart.output() + "\n--- daemon ---\n" + daemon.output()
    finally:
        recorder.close()
        daemon.kill()
        if restart:
            restart.kill()

    got = [json.loads(line) for line in recv.read_text().splitlines()]
    python_q = {m.seq: m.q for m in recorder.msgs}
    common = [r for r in got if r["seq"] in python_q]
    assert len(common) >= 20, f"only {len(common)} messages seen by both subscribers"
    for r in common:
        assert r["v"] == 1
        assert max(abs(a - b) for a, b in zip(r["q"], python_q[r["seq"]], strict=True)) <= 1e-6
    # Before any recenter, q is the daemon's conversion of `euler`; C# converts it identically.
    assert max(abs(a - b) for r in got for a, b in zip(r["q"], r["q_from_euler"], strict=True)) <= 1e-9


def test_core_selftest(runner):
    p = cs(runner, "selftest", "--vectors", str(VECTORS))
    rc = p.finish(120)
    print(p.output())
    assert rc == 0, p.output()
    assert "OK selftest" in p.output()


def test_monobehaviours_compile_against_unity_standin(tmp_path):
    """Runtime MonoBehaviours + samples type-check against the compile-only UnityEngine stand-in."""
    sources = sorted((UNITY / "Runtime").rglob("*.cs")) + sorted((UNITY / "Samples~").rglob("*.cs"))
    sources += sorted((UNITY / "Tests" / "UnityStandIn").glob("*.cs"))
    assert any(s.name == "HeadPoseDriver.cs" for s in sources)
    _mcs(tmp_path / "PoseBridge.Runtime.dll", sources, "-target:library",
         "-define:ENABLE_LEGACY_INPUT_MANAGER")  # legacy Input Manager (recenter key)
    _mcs(tmp_path / "PoseBridge.Runtime.NewInput.dll", sources, "-target:library")  # new Input System only
    # The stand-in must actually be what the check relies on: a typo in a Unity member must fail.
    broken = tmp_path / "Broken.cs"
    broken.write_text("class Broken : UnityEngine.MonoBehaviour { void LateUpdate() {"
                      " transform.localRotaton = UnityEngine.Quaternion.identity; } }\n")
    standin = sorted((UNITY / "Tests" / "UnityStandIn").glob("*.cs"))
    res = subprocess.run([MCS, "-langversion:7.2", "-target:library", f"-out:{tmp_path / 'b.dll'}",
                          str(broken), *map(str, standin)], capture_output=True, text=True)
    assert res.returncode != 0 and "localRotaton" in res.stdout + res.stderr


def _compare_with_sent(recv_file: Path, sent_file: Path) -> int:
    sent = {r["seq"]: r for r in map(json.loads, sent_file.read_text().splitlines())}
    got = [json.loads(line) for line in recv_file.read_text().splitlines()]
    assert got, "C# runner received nothing"
    for r in got:
        assert r["v"] == 1
        s = sent[r["seq"]]
        assert max(abs(a - b) for a, b in zip(r["q"], s["q"], strict=True)) <= 1e-6, (r, s)
        # C#'s conversion of the published euler reproduces the Python side's quaternion.
        assert max(abs(a - b) for a, b in zip(r["q_from_euler"], s["q"], strict=True)) <= 1e-9, (r, s)
    seqs = [r["seq"] for r in got]
    assert seqs == sorted(set(seqs))
    return len(got)


@pytest.mark.parametrize("zmtp_minor", ["1", "0"])
def test_receives_exact_quaternions_from_python_publisher(runner, tmp_path, zmtp_minor):
    sent, recv = tmp_path / "sent.jsonl", tmp_path / "recv.jsonl"
    pub, address = publisher(ANY, "--rate", "500", "--count", "0", "--max-seconds", "60",
                             "--record", str(sent))
    try:
        p = cs(runner, "receive", "--endpoint", address, "--count", "300", "--out", str(recv),
               "--zmtp-minor", zmtp_minor)
        rc = p.finish(60)
    finally:
        pub.kill()
    print(p.output())
    assert rc == 0, p.output()
    assert f"ZMTP 3.{zmtp_minor}" in p.output()
    assert _compare_with_sent(recv, sent) == 300


def test_unknown_keys_accepted(runner, tmp_path):
    sent, recv = tmp_path / "sent.jsonl", tmp_path / "recv.jsonl"
    pub, address = publisher(ANY, "--rate", "200", "--extra-keys", "--record", str(sent))
    try:
        p = cs(runner, "receive", "--endpoint", address, "--count", "50", "--out", str(recv))
        rc = p.finish(60)
    finally:
        pub.kill()
    assert rc == 0, p.output()  # the runner fails if any message was rejected
    assert _compare_with_sent(recv, sent) == 50


def test_publisher_restart_mid_stream(runner):
    pub, address = publisher(ANY, "--rate", "100")
    p = cs(runner, "restart", "--endpoint", address, "--count", "30", "--timeout", "40")
    try:
        p.wait_line("PHASE1 OK", 40)
        pub.kill()  # the daemon dies mid-stream (SIGKILL: no goodbye on the socket)
        time.sleep(0.5)
        pub, _ = publisher(address, "--rate", "100")  # and comes back on the same port, seq from 0
        rc = p.finish(60)
    finally:
        pub.kill()
        p.kill()
    print(p.output())
    assert rc == 0, p.output()


def _junk_server(srv: socket.socket, stop: threading.Event, served: list[int]) -> None:
    """Answers every connection on the listening `srv` with bytes that are not ZMTP (an HTTP reply, then
    noise), then hangs up; closes `srv` when stopped."""
    with srv:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(range(256)) * 4)
                served.append(1)


def test_garbage_on_port_then_recovers(runner):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))  # the OS picks the port; the junk server listens before the client starts
    srv.listen()
    address = f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop, served = threading.Event(), []
    junk = threading.Thread(target=_junk_server, args=(srv, stop, served), daemon=True)
    junk.start()
    p = cs(runner, "recover", "--endpoint", address, "--count", "30", "--timeout", "40")
    pub = None
    try:
        p.wait_line("JUNK SEEN", 30)
        stop.set()
        junk.join(timeout=5)
        pub, _ = publisher(address, "--rate", "100")  # the real publisher takes over the same port
        rc = p.finish(60)
    finally:
        stop.set()
        if pub:
            pub.kill()
        p.kill()
    print(p.output())
    assert served, "junk server never accepted a connection"
    assert rc == 0, p.output()
    assert "not a ZeroMQ peer" in p.output()  # logged, then recovered


def test_control_recenter_against_posebridge_control_server(runner):
    """The C# REQ client talks to the daemon's real control server (output.control.ControlServer)."""
    from posebridge.output.control import ControlServer

    calls = []
    server = ControlServer({"recenter": lambda req: calls.append(req) or {"neutral": [1.0, 2.0, 3.0]}},
                           address=ANY).start()
    try:
        ok = cs(runner, "control", "--endpoint", server.address, "--cmd", "recenter")
        assert ok.finish(30) == 0, ok.output()
        bad = cs(runner, "control", "--endpoint", server.address, "--cmd", "nonsense")
        assert bad.finish(30) == 1 and "unknown cmd" in bad.output(), bad.output()
    finally:
        server.close()
    assert calls == [{"cmd": "recenter"}]


def test_latency_10000_messages(runner):
    """publish -> C# receive over 10,000 messages at 1 kHz on 127.0.0.1; the numbers are printed."""
    pub, address = publisher(ANY, "--rate", "1000", "--hwm", "10000", "--max-seconds", "90")
    try:
        p = cs(runner, "latency", "--endpoint", address, "--count", "10000", "--timeout", "80")
        rc = p.finish(100)
    finally:
        pub.kill()
    line = next((x for x in p.lines if x.startswith("LATENCY")), "")
    print(line)
    assert rc == 0, p.output()
    assert "median" in line and "p99" in line


def test_position_field_reaches_csharp_exactly(runner, tmp_path):
    """`pos` over a real ZeroMQ socket: the daemon's encoder + publisher -> C# `receive`; every message's
    position arrives bit-exact, nil positions arrive as nil, and q is unaffected by the new key."""
    from posebridge.formats.protocol import SCHEMA_VERSION, PoseMessage, encode
    from posebridge.formats.rotation import unity_quaternion
    from posebridge.output.transport import Publisher

    pub = Publisher(ANY, hwm=1000)
    sent: dict[int, PoseMessage] = {}
    stop = threading.Event()

    def publish() -> None:
        seq = 0
        while not stop.is_set():
            yaw = 20.0 * (seq % 7) / 7.0
            pos = None if seq % 5 == 4 else [0.01 * (seq % 11) - 0.05, -0.003 * seq % 0.07, 0.1 / (seq + 3)]
            msg = PoseMessage(v=SCHEMA_VERSION, seq=seq, t_capture=time.time(), t_publish=time.time(),
                              face_id=0, tracked=True, q=[float(x) for x in unity_quaternion(yaw, 5.0, -3.0)],
                              euler=[yaw, 5.0, -3.0], raw=None, std=[3.0, 3.0, 3.0], box=None,
                              frame=[640, 480], pos=pos)
            sent[seq] = msg
            pub.send(encode(msg))
            seq += 1
            time.sleep(0.005)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    recv = tmp_path / "recv.jsonl"
    try:
        p = cs(runner, "receive", "--endpoint", pub.address, "--count", "60", "--out", str(recv))
        rc = p.finish(60)
    finally:
        stop.set()
        thread.join(timeout=5)
        pub.close()
    assert rc == 0, p.output()
    got = [json.loads(line) for line in recv.read_text().splitlines()]
    assert len(got) == 60
    nil = 0
    for r in got:
        m = sent[r["seq"]]
        assert r["pos"] == m.pos  # exact: float64 survives, nil stays nil
        assert r["q"] == m.q
        nil += m.pos is None
    assert 0 < nil < 60


def test_head_pose_driver_position_api_compiles(tmp_path):
    """The position settings of HeadPoseDriver are public API: a user script setting them compiles
    against the package (and a misspelt one does not)."""
    standin = sorted((UNITY / "Tests" / "UnityStandIn").glob("*.cs"))
    sources = sorted((UNITY / "Runtime").rglob("*.cs")) + standin
    dll = tmp_path / "PoseBridge.Runtime.dll"
    _mcs(dll, sources, "-target:library")
    user = tmp_path / "User.cs"
    user.write_text(
        "using PoseBridge; using PoseBridge.Core;\n"
        "class User : UnityEngine.MonoBehaviour { void Start() {\n"
        "  var d = GetComponent<HeadPoseDriver>();\n"
        "  d.positionTarget = PositionTarget.Root; d.positionRoot = transform; d.positionScale = 1.5f;\n"
        "  d.moveX = true; d.moveY = false; d.moveZ = true; d.positionLimit = 0.3f;\n"
        "  UnityEngine.Vector3 o = d.AppliedOffset; PoseSample s = d.LatestPose;\n"
        "  if (s.HasPos) { Vec3D p = s.Position; d.positionScale = (float)p.X + o.x; } } }\n")
    _mcs(tmp_path / "user.dll", [user], "-target:library", f"-r:{dll}")  # the dll carries the stand-in
    user.write_text(user.read_text().replace("positionLimit", "positionLimitt"))
    res = subprocess.run([MCS, "-langversion:7.2", "-target:library", f"-out:{tmp_path / 'bad.dll'}",
                          f"-r:{dll}", str(user)], capture_output=True, text=True)
    assert res.returncode != 0 and "positionLimitt" in res.stdout + res.stderr
