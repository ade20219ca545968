"""Wire protocol v1: encode/decode round trips over real ZeroMQ sockets, malformed messages rejected
with a one-line ProtocolError, and the cross-language vectors in tests/vectors/messages.json.

Regenerate the vectors (only when the protocol deliberately changes):
    .venv/bin/python -m tests.formats.test_protocol --write
"""

from __future__ import annotations

import json
import sys

import msgpack
import numpy as np
import pytest
import zmq

from posebridge.errors import PoseBridgeError
from posebridge.formats.protocol import (
    DEFAULT_CONTROL,
    DEFAULT_PUB,
    SCHEMA_VERSION,
    TOPIC_POSE,
    PoseMessage,
    ProtocolError,
    decode,
    encode,
)
from posebridge.formats.rotation import unity_quaternion
from tests.helpers import paths

VECTORS = paths.VECTORS / "messages.json"
KEYS = ["v", "seq", "t_capture", "t_publish", "face_id", "tracked", "q", "euler", "raw", "std", "box",
        "frame", "pos"]
OPTIONAL = {"pos"}  # additive v1 keys: absent in messages of older publishers


def make_message(**overrides) -> PoseMessage:
    yaw, pitch, roll = 30.0, 20.0, 10.0
    fields = dict(
        v=SCHEMA_VERSION, seq=7, t_capture=1764028800.125, t_publish=1764028800.1375, face_id=0, tracked=True,
        q=[float(x) for x in unity_quaternion(yaw, pitch, roll)], euler=[yaw, pitch, roll],
        raw=[31.5, 19.25, 9.5], std=[3.5, 4.25, 2.75], box=[200.0, 120.5, 360.0, 300.5], frame=[640, 480],
        pos=[0.0125, -0.03125, 0.0625],
    )
    fields.update(overrides)
    return PoseMessage(**fields)


def payload(**overrides) -> dict:
    m = make_message().to_map()
    m.update(overrides)
    return m


def test_keys_are_exactly_the_documented_table():
    assert list(make_message().to_map()) == KEYS
    doc = (paths.REPO / "docs" / "protocol.md").read_text()
    for key in KEYS:
        assert f"| `{key}` |" in doc


def test_constants():
    assert SCHEMA_VERSION == 1 and TOPIC_POSE == b"pose"
    assert DEFAULT_PUB == "tcp://127.0.0.1:5570" and DEFAULT_CONTROL == "tcp://127.0.0.1:5571"


def test_round_trip_float64_and_numpy_inputs():
    msg = make_message(t_capture=np.float64(1764028800.123456789), seq=np.int64(3),
                       frame=np.array([640, 480]), q=np.array(unity_quaternion(1.0, 2.0, 3.0)),
                       tracked=np.bool_(True), raw=None, box=None)
    topic, body = encode(msg)
    assert topic == b"pose"
    assert b"\xcb" in body and b"\xca" not in body  # float64, never float32
    back = decode([topic, body])
    assert back.t_capture == 1764028800.123456789  # exact: float64 survives
    assert back.seq == 3 and back.frame == [640, 480] and back.tracked is True
    assert back.raw is None and back.box is None
    np.testing.assert_array_equal(back.q, unity_quaternion(1.0, 2.0, 3.0))


def test_pos_is_optional_and_checked():
    """`pos` (added to v1 later): nil or 3 finite floats; a message without the key (an older publisher or
    session file) reads as pos = None, and an older reader ignores it like any unknown key."""
    old = {k: v for k, v in payload().items() if k != "pos"}
    msg = decode([b"pose", msgpack.packb(old)])
    assert msg.pos is None and msg.q == make_message().q
    assert decode(encode(make_message(pos=None))).pos is None
    assert decode(encode(make_message())).pos == [0.0125, -0.03125, 0.0625]
    assert decode([b"pose", msgpack.packb(payload(pos=[1, -2, 3]))]).pos == [1.0, -2.0, 3.0]
    with pytest.raises(ProtocolError, match="key 'pos': non-finite"):
        decode([b"pose", msgpack.packb(payload(pos=[0.0, float("inf"), 0.0]))])
    with pytest.raises(ProtocolError, match="key 'pos': non-finite"):
        encode(make_message(pos=[float("nan"), 0.0, 0.0]))
    # an older reader: every key but the ones it knows is skipped (the v1 decoder before `pos`)
    older_keys = [k for k in KEYS if k not in OPTIONAL]
    data = msgpack.unpackb(encode(make_message())[1])
    assert set(data) - set(older_keys) == {"pos"}


def test_unknown_keys_are_ignored():
    body = msgpack.packb(payload(future_key={"a": 1}, extra=[1, 2]), use_bin_type=True)
    assert decode([b"pose", body]) == make_message()


def test_ints_accepted_for_floats():
    body = msgpack.packb(payload(t_capture=1764028800, euler=[30, 20, 10]))
    msg = decode([b"pose", body])
    assert msg.t_capture == 1764028800.0 and isinstance(msg.t_capture, float)
    assert msg.euler == [30.0, 20.0, 10.0]


@pytest.mark.parametrize(
    "frames, reason",
    [
        ([b"pose"], "expected 2 frames"),
        ([b"pos", msgpack.packb(payload())], "wrong topic"),
        ([b"pose.all", msgpack.packb(payload())], "wrong topic"),
        ([b"pose", b"\xc1garbage"], "not valid msgpack"),
        ([b"pose", msgpack.packb(payload()) + b"\x00"], "not valid msgpack"),
        ([b"pose", msgpack.packb([1, 2, 3])], "not a map"),
        ([b"pose", msgpack.packb({k: v for k, v in payload().items() if k != "seq"})], "missing key 'seq'"),
        ([b"pose", msgpack.packb({k: v for k, v in payload().items() if k != "v"})], "missing key 'v'"),
        ([b"pose", msgpack.packb(payload(v=2))], "newer than supported"),
        ([b"pose", msgpack.packb(payload(v=0))], "invalid schema version"),
        ([b"pose", msgpack.packb(payload(v="1"))], "key 'v'"),
        ([b"pose", msgpack.packb(payload(seq=1.5))], "key 'seq'"),
        ([b"pose", msgpack.packb(payload(tracked=1))], "key 'tracked'"),
        ([b"pose", msgpack.packb(payload(face_id=True))], "key 'face_id'"),
        ([b"pose", msgpack.packb(payload(q=[0, 0, 1]))], "key 'q': expected 4"),
        ([b"pose", msgpack.packb(payload(q=None))], "key 'q': must not be nil"),
        ([b"pose", msgpack.packb(payload(euler="30,20,10"))], "key 'euler'"),
        ([b"pose", msgpack.packb(payload(raw=[1.0, "x", 2.0]))], "key 'raw[1]'"),
        ([b"pose", msgpack.packb(payload(std=None))], "key 'std'"),
        ([b"pose", msgpack.packb(payload(frame=[640.5, 480]))], "key 'frame[0]'"),
        ([b"pose", msgpack.packb(payload(q=[float("nan"), 0.0, 0.0, 1.0]))], "non-finite"),
        ([b"pose", msgpack.packb(payload(pos=[0.0, 0.0]))], "key 'pos': expected 3"),
        ([b"pose", msgpack.packb(payload(pos="0,0,0"))], "key 'pos'"),
        ([b"pose", msgpack.packb(payload(pos=[0.0, None, 0.0]))], "key 'pos[1]'"),
    ],
)
def test_malformed_messages_raise_one_line_protocol_error(frames, reason):
    with pytest.raises(ProtocolError) as info:
        decode(frames)
    assert isinstance(info.value, PoseBridgeError)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_over_real_zeromq_sockets():
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    sub = ctx.socket(zmq.SUB)
    try:
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub.connect(f"tcp://127.0.0.1:{port}")
        sub.setsockopt(zmq.SUBSCRIBE, TOPIC_POSE)
        sub.setsockopt(zmq.RCVTIMEO, 200)
        received = None
        for seq in range(50):  # PUB/SUB slow-joiner: publish until the subscription is live
            pub.send_multipart(encode(make_message(seq=seq)))
            try:
                received = decode(sub.recv_multipart())
                break
            except zmq.Again:
                continue
        assert received is not None
        assert received == make_message(seq=received.seq)
    finally:
        sub.close(0)
        pub.close(0)
        ctx.term()


def build_vectors() -> dict:
    neutral = make_message(seq=0, q=[0.0, 0.0, 0.0, 1.0], euler=[0.0, 0.0, 0.0], raw=[0.5, -1.25, 0.75])
    lost = make_message(seq=42, face_id=-1, tracked=False, raw=None, box=None, std=[12.0, 12.0, 12.0])
    mirrored = make_message(seq=8, q=[float(x) for x in unity_quaternion(30.0, 20.0, 10.0, mirror=True)])
    valid = []
    for name, msg in [("typical", make_message()), ("neutral", neutral), ("lost_no_face", lost),
                      ("mirrored_q", mirrored)]:
        topic, body = encode(msg)
        valid.append({"name": name, "topic": topic.decode(), "payload_hex": body.hex(),
                      "decoded": msg.to_map()})
    extra = msgpack.packb(payload(zz_future={"note": "ignore me"}), use_bin_type=True)
    valid.append({"name": "unknown_key_ignored", "topic": "pose", "payload_hex": extra.hex(),
                  "decoded": make_message().to_map()})
    ints = msgpack.packb(payload(t_capture=1764028800, euler=[30, 20, 10]), use_bin_type=True)
    valid.append({"name": "ints_where_floats", "topic": "pose", "payload_hex": ints.hex(),
                  "decoded": make_message(t_capture=1764028800.0, euler=[30.0, 20.0, 10.0]).to_map()})
    # `pos` is optional: a publisher from before it sends no `pos` key, which reads as nil.
    older = msgpack.packb({k: v for k, v in payload().items() if k != "pos"}, use_bin_type=True)
    valid.append({"name": "older_publisher_without_pos", "topic": "pose", "payload_hex": older.hex(),
                  "decoded": make_message(pos=None).to_map()})
    moved = make_message(seq=9, pos=[-0.25, 0.125, 0.5])  # leaning: to the left, up and towards the camera
    valid.append({"name": "pos_lean", "topic": "pose", "payload_hex": encode(moved)[1].hex(),
                  "decoded": moved.to_map()})
    invalid = [
        ("wrong_topic", "pos", msgpack.packb(payload())),
        ("not_a_map", "pose", msgpack.packb([1, 2, 3])),
        ("missing_seq", "pose", msgpack.packb({k: v for k, v in payload().items() if k != "seq"})),
        ("future_major_version", "pose", msgpack.packb(payload(v=2))),
        ("q_wrong_length", "pose", msgpack.packb(payload(q=[0.0, 0.0, 1.0]))),
        ("tracked_not_bool", "pose", msgpack.packb(payload(tracked=1))),
        ("truncated", "pose", msgpack.packb(payload())[:-5]),
        ("pos_wrong_length", "pose", msgpack.packb(payload(pos=[0.0, 0.0]))),
        ("pos_non_finite", "pose", msgpack.packb(payload(pos=[0.0, float("nan"), 0.0]))),
        ("pos_not_an_array", "pose", msgpack.packb(payload(pos=0.5))),
    ]
    return {
        "description": "posebridge wire protocol v1 vectors. valid: decoding payload_hex must give 'decoded' "
        "(floats exactly, as float64); encoders need not reproduce the bytes, only the values. "
        "invalid: readers must reject these (posebridge raises ProtocolError).",
        "schema_version": SCHEMA_VERSION,
        "valid": valid,
        "invalid": [{"name": n, "topic": t, "payload_hex": b.hex()} for n, t, b in invalid],
    }


def test_vectors_file_decodes_as_shipped():
    shipped = json.loads(VECTORS.read_text())
    assert shipped == json.loads(json.dumps(build_vectors()))
    for row in shipped["valid"]:
        msg = decode([row["topic"].encode(), bytes.fromhex(row["payload_hex"])])
        assert msg.to_map() == row["decoded"], row["name"]
    for row in shipped["invalid"]:
        with pytest.raises(ProtocolError):
            decode([row["topic"].encode(), bytes.fromhex(row["payload_hex"])])


if __name__ == "__main__":
    if "--write" in sys.argv:
        VECTORS.parent.mkdir(exist_ok=True)
        VECTORS.write_text(json.dumps(build_vectors(), indent=1) + "\n")
        print(f"wrote {VECTORS}")
