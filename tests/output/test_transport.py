"""Transport: real PUB/SUB on 127.0.0.1, never blocks on a subscriber that never reads, bounded memory."""

from __future__ import annotations

import time

import psutil
import pytest
import zmq

from posebridge.errors import ConfigError
from posebridge.formats.protocol import SCHEMA_VERSION, PoseMessage, decode, encode
from posebridge.output.transport import Publisher, Subscriber


def message(seq: int) -> PoseMessage:
    return PoseMessage(v=SCHEMA_VERSION, seq=seq, t_capture=time.time(), t_publish=time.time(), face_id=1,
                       tracked=True, q=[0.0, 0.0, 0.0, 1.0], euler=[1.0, 2.0, 3.0], raw=[1.0, 2.0, 3.0],
                       std=[3.0, 3.0, 3.0], box=[1.0, 2.0, 3.0, 4.0], frame=[640, 480])


def test_publish_subscribe_roundtrip():
    pub = Publisher("tcp://127.0.0.1:0")
    try:
        with Subscriber(pub.address) as sub:
            assert pub.wait_for_subscriber(5.0)
            for i in range(5):
                pub.send(encode(message(i)))
            got = list(sub.messages(timeout_s=1.0))
        assert [m.seq for m in got] == [0, 1, 2, 3, 4]
        assert got[0].euler == [1.0, 2.0, 3.0] and sub.gaps == 0
    finally:
        pub.close()


def test_wait_for_subscriber_times_out_without_one():
    pub = Publisher("tcp://127.0.0.1:0")
    try:
        t0 = time.monotonic()
        assert pub.wait_for_subscriber(0.2) is False
        assert time.monotonic() - t0 < 2.0
    finally:
        pub.close()


def test_subscriber_counts_gaps():
    pub = Publisher("tcp://127.0.0.1:0")
    try:
        with Subscriber(pub.address) as sub:
            assert pub.wait_for_subscriber(5.0)
            for i in (0, 1, 5, 6):
                pub.send(encode(message(i)))
            assert len(list(sub.messages(timeout_s=1.0))) == 4
            assert sub.gaps == 3
    finally:
        pub.close()


def test_bind_conflict_is_config_error():
    pub = Publisher("tcp://127.0.0.1:0")
    try:
        with pytest.raises(ConfigError, match="publish.address: cannot bind"):
            Publisher(pub.address)
    finally:
        pub.close()


def test_subscriber_that_never_reads_does_not_block_or_grow_memory():
    """40,000 messages of 8 KB (320 MB if queued) to a subscriber that never reads: every send returns
    at once and the process RSS grows by far less than the data sent (HWM bounds the queues)."""
    ctx = zmq.Context()
    pub = Publisher("tcp://127.0.0.1:0", hwm=50, context=ctx)
    sub = Subscriber(pub.address, rcvhwm=50, context=ctx)  # connected, subscribed, never reads
    proc = psutil.Process()
    try:
        assert pub.wait_for_subscriber(5.0)
        frames = encode(message(0))
        frames = [frames[0], frames[1] + b"\0" * 8192]  # raw payload, never decoded
        for _ in range(2000):  # warm up: fill the queues and socket buffers
            pub.send(frames)
        time.sleep(0.2)
        rss0 = proc.memory_info().rss
        t0 = time.perf_counter()
        worst = 0.0
        for _ in range(40_000):
            s = time.perf_counter()
            pub.send(frames)
            worst = max(worst, time.perf_counter() - s)
        elapsed = time.perf_counter() - t0
        time.sleep(0.2)
        growth_mb = (proc.memory_info().rss - rss0) / 2**20
        assert growth_mb < 32, f"RSS grew {growth_mb:.1f} MB"
        assert worst < 0.5, f"a send blocked for {worst:.3f} s"
        assert elapsed < 20
        # the stream still works for a subscriber that does read
        with Subscriber(pub.address, context=ctx) as reader:
            assert pub.wait_for_subscriber(5.0)
            deadline = time.monotonic() + 5
            got = None
            while got is None and time.monotonic() < deadline:
                pub.send(encode(message(7)))
                frames_in = reader.recv_frames(timeout_s=0.05)
                got = decode(frames_in) if frames_in else None
            assert got is not None and got.seq == 7
    finally:
        sub.close()
        pub.close()
        ctx.term()


def test_listen_prints_the_stream_and_skips_malformed(capsys):
    import json
    import threading

    from posebridge.cli import main

    pub = Publisher("tcp://127.0.0.1:0")
    result = {}
    t = threading.Thread(target=lambda: result.update(code=main(
        ["listen", "--address", pub.address, "--count", "2", "--timeout", "20", "--json"])))
    t.start()
    try:
        assert pub.wait_for_subscriber(30)
        pub.send([b"pose", b"\xc1 not msgpack"])
        pub.send(encode(message(0)))
        pub.send(encode(message(3)))
        t.join(timeout=30)
    finally:
        pub.close()
    assert result["code"] == 0
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]
    assert [m["seq"] for m in lines] == [0, 3] and lines[0]["euler"] == [1.0, 2.0, 3.0]
    assert "malformed" in err and "2 missed" in err
