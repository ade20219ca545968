"""Control channel: real REP socket; malformed and unknown requests get error replies, server lives on."""

from __future__ import annotations

import msgpack
import pytest
import zmq

from posebridge.errors import ConfigError
from posebridge.output.control import ControlServer, handle_request, request


@pytest.fixture
def server():
    state = {"n": 0}

    def status(req):
        return {"fps": 30.0, "n": state["n"]}

    def bump(req):
        state["n"] += int(req["by"])  # KeyError / ValueError for bad input -> error reply
        return {"n": state["n"]}

    def crash(req):
        raise RuntimeError("boom")

    srv = ControlServer({"status": status, "bump": bump, "crash": crash}, "tcp://127.0.0.1:0").start()
    yield srv
    srv.close()


def raw_request(address: str, frames: list[bytes]) -> dict:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    try:
        sock.send_multipart(frames)
        assert sock.poll(3000), "no reply"
        return msgpack.unpackb(sock.recv(), raw=False)
    finally:
        sock.close()


def test_status_and_handler(server):
    assert server.address.startswith("tcp://127.0.0.1:") and not server.address.endswith(":0")
    assert request(server.address, {"cmd": "status"}) == {"ok": True, "fps": 30.0, "n": 0}
    assert request(server.address, {"cmd": "bump", "by": 2})["n"] == 2


@pytest.mark.parametrize("frames, error", [
    ([b"\xc1\xc1garbage"], "not msgpack"),
    ([msgpack.packb([1, 2, 3])], "must be a map"),
    ([msgpack.packb({"command": "status"})], "no 'cmd'"),
    ([msgpack.packb({"cmd": 5})], "no 'cmd'"),
    ([msgpack.packb({"cmd": "launch"})], "unknown cmd 'launch'"),
    ([msgpack.packb({"cmd": "bump"})], "by"),
    ([msgpack.packb({"cmd": "bump", "by": "x"})], "invalid literal"),
    ([msgpack.packb({"cmd": "crash"})], "internal error in crash"),
    ([b"a", b"b"], "single-frame"),
    ([b""], "not msgpack"),
])
def test_malformed_requests_get_error_replies(server, frames, error):
    reply = raw_request(server.address, frames)
    assert reply["ok"] is False and error in reply["error"]
    # the server still answers properly afterwards
    assert request(server.address, {"cmd": "status"})["ok"] is True


def test_handle_request_never_raises():
    assert handle_request([msgpack.packb({"cmd": "x"})], {})["ok"] is False


def test_no_server_is_one_line_error():
    with pytest.raises(ConfigError, match="no reply"):
        request("tcp://127.0.0.1:1", {"cmd": "status"}, timeout_s=0.2)


def test_bind_conflict_is_config_error(server):
    with pytest.raises(ConfigError, match="control.address: cannot bind"):
        ControlServer({}, server.address)


def sized_request(size: int) -> bytes:
    """A valid `status` request packed to exactly `size` bytes (a padding string fills it)."""
    base = len(msgpack.packb({"cmd": "status", "pad": ""}, use_bin_type=True))
    for pad in range(max(0, size - base - 4), size):
        raw = msgpack.packb({"cmd": "status", "pad": "x" * pad}, use_bin_type=True)
        if len(raw) == size:
            return raw
    raise AssertionError(f"cannot pack a request of exactly {size} bytes")


def test_the_4_kb_bound_answers_just_under_and_drops_just_over(server):
    """docs/daemon.md: a request of up to MAX_REQUEST_BYTES (4 KB, 4096) is answered; one byte more and
    libzmq drops the connection unanswered, and the server goes on answering others."""
    from posebridge.output.control import MAX_REQUEST_BYTES

    assert MAX_REQUEST_BYTES == 4096
    assert raw_request(server.address, [sized_request(4096)])["ok"] is True
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.address)
    sock.send(sized_request(4097))  # the break that must fail: a bound of 8 KB answers this
    assert not sock.poll(1500), "a 4,097-byte request was answered"
    sock.close()
    assert request(server.address, {"cmd": "status"})["ok"] is True
