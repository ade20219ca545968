"""Wire protocol v1 (docs/protocol.md is the contract): `pose` messages as two ZeroMQ frames
`[topic, msgpack map]`, floats as float64, unknown keys ignored by readers. Keys added after the first
v1 release (`pos`) are optional: a reader takes a missing one as nil, so messages of older publishers
and session files stay valid, and older readers skip the new key."""

from __future__ import annotations

import math
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

import msgpack
import numpy as np

from posebridge.errors import PoseBridgeError

SCHEMA_VERSION = 1
TOPIC_POSE = b"pose"
DEFAULT_PUB = "tcp://127.0.0.1:5570"
DEFAULT_CONTROL = "tcp://127.0.0.1:5571"
MAX_MESSAGE_BYTES = 1 << 20  # a pose message is ~300 bytes; anything this large is malformed


class ProtocolError(PoseBridgeError):
    """A malformed message (wrong topic, not a map, missing or ill-typed key, newer major version)."""


def _array(length: int, default: Any = MISSING) -> Any:
    """A field that is an array of exactly `length` elements on the wire."""
    return field(default=default, metadata={"length": length})


@dataclass
class PoseMessage:
    """One `pose` message; field names, order and types are the wire keys and their types
    (docs/protocol.md): `list[...]` an array of the field's length, `| None` nil allowed."""

    v: int
    seq: int
    t_capture: float
    t_publish: float
    face_id: int
    tracked: bool
    q: list[float] = _array(4)  # [x, y, z, w], Unity frame
    euler: list[float] = _array(3)  # filtered [yaw, pitch, roll] degrees, dataset convention
    raw: list[float] | None = _array(3)  # unfiltered [yaw, pitch, roll], None without a measurement
    std: list[float] = _array(3)  # per-angle uncertainty, degrees
    box: list[float] | None = _array(4)  # [x0, y0, x1, y1] frame pixels
    frame: list[int] = _array(2)  # [width, height]
    pos: list[float] | None = _array(3, None)  # head position [x, y, z] metres relative to the neutral

    def to_map(self) -> dict[str, Any]:
        """The wire map with plain Python types (numpy scalars and tuples converted)."""
        return {key: _coerce(key, getattr(self, key), kind, length, nullable, strict=False)
                for key, (kind, length, nullable) in _SCHEMA.items()}


def _wire_type(f: Field) -> tuple[str, int, bool]:
    """(element kind, array length or 0 for a scalar, nil allowed) of a PoseMessage field."""
    annotation = str(f.type)
    element = annotation.removesuffix(" | None").removeprefix("list[").removesuffix("]")
    return element, f.metadata.get("length", 0), annotation.endswith(" | None")


_SCHEMA: dict[str, tuple[str, int, bool]] = {f.name: _wire_type(f) for f in fields(PoseMessage)}
OPTIONAL_KEYS = frozenset({"pos"})  # additive v1 keys: a missing one reads as nil


def _scalar(key: str, value: Any, kind: str, strict: bool) -> Any:
    if kind == "bool":
        if isinstance(value, bool) or (not strict and isinstance(value, np.bool_)):
            return bool(value)
        raise ProtocolError(f"key {key!r}: expected bool, got {type(value).__name__}")
    if isinstance(value, bool) or isinstance(value, (str, bytes, list, dict, tuple)) or value is None:
        raise ProtocolError(f"key {key!r}: expected {kind}, got {type(value).__name__}")
    if kind == "int":
        if isinstance(value, int) or (not strict and float(value).is_integer()):
            return int(value)
        raise ProtocolError(f"key {key!r}: expected int, got {type(value).__name__}")
    try:
        out = float(value)  # ints are accepted where floats are expected (other encoders may send them)
    except (TypeError, ValueError):
        raise ProtocolError(f"key {key!r}: expected float, got {type(value).__name__}") from None
    return out


def _coerce(key: str, value: Any, kind: str, length: int, nullable: bool, strict: bool) -> Any:
    if value is None:
        if nullable:
            return None
        raise ProtocolError(f"key {key!r}: must not be nil")
    if not length:
        return _scalar(key, value, kind, strict)
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise ProtocolError(f"key {key!r}: expected an array of {length} {kind}s, got {type(value).__name__}")
    if len(value) != length:
        raise ProtocolError(f"key {key!r}: expected {length} elements, got {len(value)}")
    return [_scalar(f"{key}[{i}]", x, kind, strict) for i, x in enumerate(value)]


_PACKER = msgpack.Packer(use_bin_type=True, use_single_float=False, autoreset=True)
_FLOAT_KEYS = tuple(k for k, (kind, _, _) in _SCHEMA.items() if kind == "float")


def payload(msg: PoseMessage) -> bytes:
    """The msgpack map of a message (keys in table order, floats as float64). Refuses non-finite
    numbers with a ProtocolError: readers reject them (docs/protocol.md), so they never go out."""
    m = msg.to_map()
    for key in _FLOAT_KEYS:
        value = m[key]
        if value is None:
            continue
        if not all(math.isfinite(x) for x in (value if isinstance(value, list) else (value,))):
            raise ProtocolError(f"key {key!r}: non-finite value {value!r} is never published")
    return _PACKER.pack(m)


def encode(msg: PoseMessage) -> list[bytes]:
    """Two ZeroMQ frames: `[b"pose", msgpack map]` (see `payload`)."""
    return [TOPIC_POSE, payload(msg)]


def decode(frames: list[bytes] | tuple[bytes, ...]) -> PoseMessage:
    """Parse `[topic, payload]`; unknown keys are ignored, malformed input raises ProtocolError."""
    if not isinstance(frames, (list, tuple)) or len(frames) != 2:
        n = len(frames) if isinstance(frames, (list, tuple)) else type(frames).__name__
        raise ProtocolError(f"expected 2 frames [topic, payload], got {n}")
    topic, payload = (bytes(f) for f in frames)
    if topic != TOPIC_POSE:
        raise ProtocolError(f"wrong topic {topic[:32]!r}, expected {TOPIC_POSE!r}")
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several types (ExtraData, FormatError, ValueError...)
        raise ProtocolError(f"payload is not valid msgpack ({type(exc).__name__})") from None
    return from_map(data)


def from_map(data: Any) -> PoseMessage:
    """Validate a decoded msgpack object and build the message (unknown keys ignored)."""
    if not isinstance(data, dict):
        raise ProtocolError(f"payload is not a map but {type(data).__name__}")
    version = data.get("v")
    if version is None:
        raise ProtocolError("missing key 'v'")
    version = _scalar("v", version, "int", strict=True)
    if version > SCHEMA_VERSION:
        raise ProtocolError(f"schema version {version} is newer than supported {SCHEMA_VERSION}")
    if version < 1:
        raise ProtocolError(f"invalid schema version {version}")
    values = {}
    for key, (kind, length, nullable) in _SCHEMA.items():
        if key not in data:
            if key in OPTIONAL_KEYS:
                values[key] = None
                continue
            raise ProtocolError(f"missing key {key!r}")
        values[key] = _coerce(key, data[key], kind, length, nullable, strict=True)
    for key in ("q", "pos"):  # rotations and positions are applied to transforms: never a NaN
        if values[key] is not None and not all(math.isfinite(x) for x in values[key]):
            raise ProtocolError(f"key {key!r}: non-finite component")
    return PoseMessage(**values)
