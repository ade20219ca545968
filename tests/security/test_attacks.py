"""A hostile local client against a real daemon (`posebridge serve` in its own process, real sockets on
127.0.0.1): hundreds of malformed and out-of-range control requests (including the single requests that
used to kill the daemon or freeze every avatar), an oversized request, a subscription flood with a huge
topic, and subscribers that never read, all while a subscriber watches the stream. The daemon must
answer every request it reads, never publish a non-finite number, never stop publishing for 0.5 s, and
keep its memory bounded."""

from __future__ import annotations

import random
import socket
import time

import msgpack
import pytest
import zmq

from posebridge.filtering.config import RANGES
from posebridge.output.control import request
from tests.helpers.daemon_proc import ANY, Daemon
from tests.helpers.stream_watch import StreamWatcher, non_finite

KILLERS = [  # requests that stopped or froze the daemon before (issue 15)
    {"cmd": "set", "params": {"initial_rate_std": 1e300, "lost_after_s": 0}},
    {"cmd": "set", "params": {"meas_floor_deg": 1e200}},
    {"cmd": "set", "params": {"meas_scale": 1e300}},
    {"cmd": "set", "params": {"default_meas_deg": 1e300}},
    {"cmd": "set", "params": {"gate_rate_s": 1e-300, "jump_sigma": 0}},
    {"cmd": "set", "params": {"process_noise": float("inf")}},
    {"cmd": "set", "params": {"max_dt_s": float("nan")}},
    {"cmd": "x" * 3000},
]


def raw_zmtp_subscribe(address: str, topic: bytes) -> socket.socket:
    """A ZMTP 3.0 SUB peer written from the spec (rfc.zeromq.org/spec/23): NULL greeting, READY, then
    one subscription message carrying `topic`. Returns the open socket."""
    host, port = address[len("tcp://"):].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00") + b"\x00" * 32
    sock.sendall(greeting)
    body = b"\x05READY" + bytes([len(b"Socket-Type")]) + b"Socket-Type" + (3).to_bytes(4, "big") + b"SUB"
    sock.sendall(bytes([0x04, len(body)]) + body)
    msg = b"\x01" + topic
    try:
        sock.sendall(bytes([0x02]) + len(msg).to_bytes(8, "big") + msg)
    except OSError:
        pass  # the daemon may drop the connection before all of it is sent
    return sock


def random_requests(n: int, seed: int = 0) -> list[object]:
    rng = random.Random(seed)
    names = [*RANGES, "kind", "wrap", "mirror", "nope"]
    weird = [1e308, -1e308, float("nan"), float("inf"), -1, 0, 2**63, "x", None, [], {}, True, b"\x00" * 50]
    out: list[object] = list(KILLERS)
    while len(out) < n:
        kind = rng.random()
        if kind < 0.5:
            params = {rng.choice(names): rng.choice(weird + [rng.uniform(-1e6, 1e6)])
                      for _ in range(rng.randint(1, 4))}
            out.append({"cmd": "set", "params": params})
        elif kind < 0.7:
            out.append({"cmd": rng.choice(["status", "recenter", "dance", ""]), "reset": rng.choice(weird)})
        else:
            out.append(rng.choice(weird))
    return out


@pytest.fixture
def daemon(tmp_path):
    from posebridge.offline.demo import make_clip

    clip = tmp_path / "clip.mp4"
    make_clip(clip, seconds=14.0, gap=(13.5, 13.9))
    proc = Daemon(["serve", "--source", str(clip), "--publish", ANY, "--control", ANY, "--detector", "haar",
                   "--wait-subscriber", "60"])
    pub, ctl = proc.addresses()
    yield proc, pub, ctl
    proc.stop()


def test_hostile_client_cannot_stop_or_corrupt_the_stream(daemon):
    proc, pub, ctl = daemon
    watcher = StreamWatcher(pub).__enter__()
    received = watcher.received
    try:
        deadline = time.monotonic() + 120
        while len(received) < 30 and time.monotonic() < deadline:  # streaming (and the face found)
            assert proc.poll() is None, proc.stop()[-2000:]
            time.sleep(0.1)
        assert len(received) >= 30
        rss0 = proc.rss_mb()
        t_attack = time.monotonic()
        ctx = zmq.Context.instance()
        idle = []
        for _ in range(20):  # subscribers that never read
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.SUBSCRIBE, b"")
            s.setsockopt(zmq.RCVHWM, 1)
            s.connect(pub)
            idle.append(s)
        # a subscription flood (XSUB) and one 8 MiB topic, sent over raw ZMTP (a libzmq client would
        # itself crash on it: its own subscription trie recurses once per byte)
        flood = ctx.socket(zmq.XSUB)
        flood.setsockopt(zmq.LINGER, 0)
        flood.connect(pub)
        time.sleep(0.2)
        for i in range(5000):
            flood.send(b"\x01" + f"topic-{i}".encode())
        huge = raw_zmtp_subscribe(pub, b"p" * (8 << 20))
        answered = rejected = 0
        for req in random_requests(400):
            raw = msgpack.packb(req, use_bin_type=True)
            sock = ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(ctl)
            sock.send(raw)
            assert sock.poll(5000), f"no reply to {str(req)[:80]}"
            reply = msgpack.unpackb(sock.recv(), raw=False)
            sock.close()
            answered += 1
            if not reply["ok"]:
                rejected += 1
                assert "\n" not in reply["error"] and len(reply["error"]) <= 400
        big = ctx.socket(zmq.REQ)  # 1 MB: libzmq drops the connection before anything is parsed
        big.setsockopt(zmq.LINGER, 0)
        big.connect(ctl)
        big.send(b"\x81" + msgpack.packb("cmd") + msgpack.packb("y" * (1 << 20)))
        assert not big.poll(1000)
        big.close()
        status = request(ctl, {"cmd": "status"}, timeout_s=5)
        assert status["ok"] and status["tracked"] in (True, False)
        time.sleep(1.0)
        attack_s = time.monotonic() - t_attack
        rss1 = proc.rss_mb()
        for s in (*idle, flood):
            s.close(linger=0)
        huge.close()
    finally:
        watcher.stop()
    assert proc.poll() is None, "the daemon died"
    watcher.check()  # no exception in the watcher, no non-finite number anywhere in any message
    during = [(t, m) for t, m in received if t >= t_attack - 0.5]
    gaps = [b[0] - a[0] for a, b in zip(during, during[1:], strict=False)]
    assert during and max(gaps) < 0.5, f"largest gap {max(gaps):.3f} s during {attack_s:.1f} s of attacks"
    seqs = [m["seq"] for _, m in received]
    assert seqs == sorted(seqs)
    assert answered == 400 and rejected >= len(KILLERS)
    assert rss1 - rss0 < 60, f"publisher memory grew {rss1 - rss0:.0f} MB under attack"
    assert status["publisher"]["ignored_subscriptions"] >= 1000


def test_the_watcher_sees_a_non_finite_number_on_the_wire():
    """The check above can fail: a raw publisher sends one message with a NaN yaw (posebridge's own
    encoder refuses to), and the watcher reports it by its path."""
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    good = {"v": 1, "seq": 1, "q": [0.0, 0.0, 0.0, 1.0], "euler": [1.0, 2.0, 3.0]}
    with StreamWatcher(f"tcp://127.0.0.1:{port}") as w:
        deadline = time.monotonic() + 10
        while not w.received and time.monotonic() < deadline:  # the slow-joiner: send until seen
            pub.send_multipart([b"pose", msgpack.packb(good)])
            time.sleep(0.05)
        pub.send_multipart([b"pose", msgpack.packb({**good, "seq": 2, "euler": [float("nan"), 0.0, 0.0]})])
        deadline = time.monotonic() + 10
        while not w.bad and time.monotonic() < deadline:  # a loaded machine may take a while
            time.sleep(0.05)
    pub.close(linger=0)
    with pytest.raises(AssertionError, match=r"non-finite at \.euler\[0\]"):
        w.check()
    assert non_finite({"a": [1.0, {"b": float("inf")}]}) == [".a[1].b"]
