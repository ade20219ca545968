"""VMC protocol output (OSC over UDP, the avatar-motion protocol of Virtual Motion Capture, VSeeFace,
VMagicMirror, Warudo, EVMC4U, VMC4UE, VMC4B): posebridge is the Performer, the avatar app the
Marionette, listening on 39539 by default.

One OSC bundle (time tag "immediately") per published message, built with python-osc, all floats OSC
float32, lengths in metres and rotations as quaternions `x, y, z, w` in Unity's left-handed frame:

    /VMC/Ext/Root/Pos  "root"  p.x p.y p.z  0 0 0 1     only with position_to = "root": the avatar root
                                                        moves by the head position (`pos` x scale)
    /VMC/Ext/Bone/Pos  "Head"  p.x p.y p.z  q.x q.y q.z q.w
                                                        the Head bone's local pose: q = the stream's `q`;
                                                        p = head_local_position (+ pos x scale with
                                                        position_to = "head")
    /VMC/Ext/OK        1 3 0 tracked                    loaded, calibration state (3 = calibrated),
                                                        calibration mode (0 = normal), tracking status
                                                        (1 = a face is tracked, 0 = lost; VMC v2.7)
    /VMC/Ext/T         t                                seconds since this output started (float32)

`q` is the head's rotation relative to a neutral head facing the camera, in the head's own axes x
right, y up, z forward: the local rotation of a normalised humanoid Head bone (UniVRM 0.x normalises
bones on import, so their rest rotation is identity with the model's axes). Without a position
(`pos` nil) the last one is repeated. Receivers ignore unknown addresses and extra arguments (VMC
spec), so the four-integer `/VMC/Ext/OK` also works with readers of its one-integer form.
python-osc is imported here only (the rest of the runtime does not need it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from posebridge import validation as v
from posebridge.formats.protocol import PoseMessage
from posebridge.output.udp import UdpSink

DEFAULT_PORT = 39539  # the VMC protocol's Marionette (receiver) port
POSITION_TO = ("root", "head", "none")  # where the head position goes (vmc.position_to)
CALIBRATED = 3  # /VMC/Ext/OK calibration state: Calibrated
NORMAL_MODE = 0  # /VMC/Ext/OK calibration mode: normal


def _message(address: str, args: Sequence[tuple[object, str]]):
    b = OscMessageBuilder(address=address)
    for value, kind in args:
        b.add_arg(value, kind)
    return b.build()


def _transform(name: str, p: Sequence[float], q: Sequence[float]) -> list[tuple[object, str]]:
    return [(name, "s"), *((float(v), "f") for v in p), *((float(v), "f") for v in q)]


def encode_frame(msg: PoseMessage, t_rel: float, position_to: str = "root", scale: float = 1.0,
                 head_local: Sequence[float] = (0.0, 0.1, 0.0),
                 last_pos: Sequence[float] = (0.0, 0.0, 0.0)) -> bytes:
    """The OSC bundle for one message (see the module docstring); `last_pos` when `msg.pos` is nil."""
    pos = msg.pos if msg.pos is not None else last_pos
    offset = [scale * float(c) for c in pos]
    bundle = OscBundleBuilder(IMMEDIATELY)
    if position_to == "root":
        bundle.add_content(_message("/VMC/Ext/Root/Pos", _transform("root", offset, (0.0, 0.0, 0.0, 1.0))))
    head_p = [h + o for h, o in zip(head_local, offset, strict=True)] if position_to == "head" else head_local
    bundle.add_content(_message("/VMC/Ext/Bone/Pos", _transform("Head", head_p, msg.q)))
    bundle.add_content(_message("/VMC/Ext/OK", [(1, "i"), (CALIBRATED, "i"), (NORMAL_MODE, "i"),
                                                (1 if msg.tracked else 0, "i")]))
    bundle.add_content(_message("/VMC/Ext/T", [(float(t_rel), "f")]))
    return bundle.build().dgram


class VmcSink(UdpSink):
    """The `[vmc]` output: `VmcSink("127.0.0.1:39539", position_to="root")` (module docstring)."""

    name = "vmc"
    default_port = DEFAULT_PORT

    def __init__(self, destination: str, position_to: str = "root", position_scale: float = 1.0,
                 head_local_position: Sequence[float] = (0.0, 0.1, 0.0), field: str | None = None) -> None:
        v.choice("vmc.position_to", position_to, POSITION_TO)
        v.number("vmc.position_scale", position_scale, 0.0, 10.0)
        v.numbers("vmc.head_local_position", head_local_position, 3, -2.0, 2.0)
        super().__init__(destination, field)
        self.position_to = position_to
        self.scale = float(position_scale)
        self.head_local = tuple(float(c) for c in head_local_position)
        self.last_pos: Sequence[float] = (0.0, 0.0, 0.0)
        self.t0 = time.monotonic()

    def encode(self, msg: PoseMessage) -> Iterable[bytes]:
        data = encode_frame(msg, time.monotonic() - self.t0, self.position_to, self.scale, self.head_local,
                            self.last_pos)
        if msg.pos is not None:
            self.last_pos = tuple(msg.pos)
        return (data,)


def parse_datagram(data: bytes) -> list[tuple[str, list]]:
    """A received OSC packet (a message or a bundle) -> [(address, arguments), ...] in order; ValueError
    when it is not OSC. For `posebridge listen --vmc` and tests: a receiver's view of the stream."""
    from pythonosc.osc_packet import OscPacket, ParseError

    try:
        return [(t.message.address, list(t.message.params)) for t in OscPacket(data).messages]
    except ParseError as exc:
        raise ValueError(f"not an OSC packet: {exc}") from None


def format_datagram(messages: list[tuple[str, list]]) -> str:
    """One line for a received packet: each VMC message with its numbers; the Head bone's rotation also
    as opentrack/Unity Euler angles (yaw, pitch, roll), to check the signs by eye."""
    from posebridge.output.opentrack import opentrack_angles

    parts = []
    for address, args in messages:
        short = address.removeprefix("/VMC/Ext/")
        if address in ("/VMC/Ext/Bone/Pos", "/VMC/Ext/Root/Pos") and len(args) >= 8:
            p = " ".join(f"{float(c):+.3f}" for c in args[1:4])
            q = " ".join(f"{float(c):+.3f}" for c in args[4:8])
            text = f"{short} {args[0]} p [{p}] m q [{q}]"
            if args[0] == "Head":
                yaw, pitch, roll = opentrack_angles(args[4:8])
                text += f" (yaw {yaw:+.1f} pitch {pitch:+.1f} roll {roll:+.1f})"
            parts.append(text)
        else:
            parts.append(f"{short} " + " ".join(f"{a:.3f}" if isinstance(a, float) else str(a) for a in args))
    return " | ".join(parts)
