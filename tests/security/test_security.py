"""CURVE for non-local use: with keys from `posebridge keys`, only a client holding an authorised key
pair receives the stream or gets a control reply; without keys (or with the wrong ones) nothing arrives."""

from __future__ import annotations

import time

import pytest
import zmq

from posebridge.cli import main
from posebridge.errors import ConfigError, InputFileError
from posebridge.formats.protocol import PoseMessage, encode
from posebridge.output.control import ControlServer, request
from posebridge.output.security import generate_keys, load_client, load_server, stop_authenticator
from posebridge.output.transport import Publisher, Subscriber


def message(seq: int) -> PoseMessage:
    return PoseMessage(v=1, seq=seq, t_capture=1.0, t_publish=1.0, face_id=0, tracked=True,
                       q=[0.0, 0.0, 0.0, 1.0], euler=[0.0, 0.0, 0.0], raw=None, std=[1.0, 1.0, 1.0], box=None,
                       frame=[640, 480])


def received(pub: Publisher, sub: Subscriber, n: int = 30) -> int:
    got = 0
    for i in range(n):
        pub.send(encode(message(i)))
        if sub.recv(timeout_s=0.05) is not None:
            got += 1
    return got


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    assert main(["keys", str(folder), "--clients", "1"]) == 0
    other = tmp_path_factory.mktemp("other")
    generate_keys(other)
    return folder, other


def test_only_an_authorised_client_receives_the_stream(keys):
    folder, other = keys
    ctx = zmq.Context()
    try:
        pub = Publisher("tcp://127.0.0.1:0", context=ctx, keys=load_server(folder))
        good = Subscriber(pub.address, context=ctx, keys=load_client(folder))
        plain = Subscriber(pub.address, context=ctx)
        stranger = Subscriber(pub.address, context=ctx, keys=load_client(other))  # not in authorized/
        time.sleep(0.3)
        assert received(pub, good) > 20
        assert received(pub, plain) == 0 and received(pub, stranger) == 0
        for s in (good, plain, stranger, pub):
            s.close()
    finally:
        stop_authenticator(ctx)
        ctx.term()


def test_control_answers_only_authorised_clients(keys):
    folder, other = keys
    ctx = zmq.Context()
    try:
        srv = ControlServer({"status": lambda req: {"n": 1}}, "tcp://127.0.0.1:0", context=ctx,
                            keys=load_server(folder)).start()
        assert request(srv.address, {"cmd": "status"}, context=ctx, keys=load_client(folder))["n"] == 1
        with pytest.raises(ConfigError, match="no reply"):
            request(srv.address, {"cmd": "status"}, timeout_s=0.5, context=ctx)
        with pytest.raises(ConfigError, match="no reply"):
            request(srv.address, {"cmd": "status"}, timeout_s=0.5, context=ctx, keys=load_client(other))
        srv.close()
    finally:
        stop_authenticator(ctx)
        ctx.term()


def test_key_folder_errors_are_one_line(tmp_path, keys, capsys):
    folder, _ = keys
    assert main(["keys", str(folder)]) == 2  # already there: nothing is overwritten
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(InputFileError, match="key file not found"):
        load_client(tmp_path)
    (tmp_path / "server.key_secret").write_text("not a certificate")
    with pytest.raises(InputFileError):
        load_server(tmp_path)
