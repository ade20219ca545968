"""opentrack "UDP over network" output: one 48-byte datagram per published message, six little-endian
float64 in opentrack's order X, Y, Z (centimetres), yaw, pitch, roll (degrees).

Signs, as opentrack's own trackers produce them (read from its source: tracker-udp takes the six
doubles as they come and drops a packet with a NaN; tracker-neuralnet's `data()` converts its head
pose to these axes; proto-simconnect negates TX, TZ and pitch for FSX, whose x is right, z forward and
pitch positive nose-down):

    X  > 0: the head moves to the user's left (right in an unmirrored camera image)
    Y  > 0: up
    Z  > 0: away from the camera (backwards)
    yaw   > 0: the user turns to their right
    pitch > 0: looks up
    roll  > 0: tilts towards their left shoulder

The angles are those of the rotation in the stream's `q` (recentered and mirrored as configured),
decomposed in opentrack's order yaw, then pitch about the turned x axis, then roll about the turned z
axis (Unity's `Quaternion.eulerAngles` order with pitch negated); for a single axis they equal the
message's `euler`. Without a position (`pos` nil) the last sent X, Y, Z are repeated (0 before the
first); nothing non-finite is ever sent.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence

from posebridge.formats.protocol import PoseMessage
from posebridge.formats.rotation import xyz_euler
from posebridge.output.udp import UdpSink

DEFAULT_PORT = 4242  # opentrack's "UDP over network" input port
PACKET = struct.Struct("<6d")  # X, Y, Z (cm), yaw, pitch, roll (degrees)


def opentrack_angles(q: Sequence[float]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees in opentrack's convention from a Unity-frame quaternion `[x, y, z, w]`:
    q = Ry(yaw) * Rx(-pitch) * Rz(roll). That order is the x-y-z one with x and y swapped and z reversed
    (the same rotation seen with renamed axes), so it is `xyz_euler` of `[y, x, -z, w]` with the last
    angle negated; at gimbal lock (looking straight up or down) all of the turn goes to yaw."""
    x, y, z, w = (float(c) for c in q)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    yaw, pitch, roll = xyz_euler([y / n, x / n, -z / n, w / n])
    return float(yaw) + 0.0, 0.0 - float(pitch), 0.0 - float(roll)  # a zero is +0.0, never -0.0


def opentrack_translation(pos: Sequence[float]) -> tuple[float, float, float]:
    """`pos` (metres; x the user's right, y up, z towards the camera) -> opentrack X, Y, Z (cm)."""
    return -100.0 * float(pos[0]), 100.0 * float(pos[1]), -100.0 * float(pos[2])


def encode_pose(msg: PoseMessage, last_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> bytes:
    """The 48-byte packet for one message (`last_xyz` when the message has no position)."""
    xyz = opentrack_translation(msg.pos) if msg.pos is not None else last_xyz
    values = (*xyz, *opentrack_angles(msg.q))
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"non-finite opentrack pose {values!r} is never sent")
    return PACKET.pack(*values)


def decode_pose(data: bytes) -> tuple[float, ...]:
    """A received packet -> (X, Y, Z, yaw, pitch, roll); ValueError unless exactly 48 bytes."""
    if len(data) != PACKET.size:
        raise ValueError(f"opentrack packet of {len(data)} bytes, expected {PACKET.size}")
    return PACKET.unpack(data)


class OpentrackSink(UdpSink):
    """The `[opentrack]` output: `OpentrackSink("127.0.0.1:4242")` (see the module docstring)."""

    name = "opentrack"
    default_port = DEFAULT_PORT

    def __init__(self, destination: str, field: str | None = None) -> None:
        super().__init__(destination, field)
        self.last_xyz = (0.0, 0.0, 0.0)

    def encode(self, msg: PoseMessage) -> Iterable[bytes]:
        data = encode_pose(msg, self.last_xyz)
        if msg.pos is not None:
            self.last_xyz = opentrack_translation(msg.pos)
        return (data,)
