"""Stream bookkeeping shared by `serve` and `replay --refilter`: which face feeds which filtered stream,
the neutral pose set by `recenter`, and the message each stream publishes per frame.

Primary mode keeps one stream fed by the tracker's primary face; `all_faces` keeps one stream per face
id and forgets a stream once it has been reported lost. Every frame yields one `StreamUpdate` per
stream (a "lost" heartbeat when there is none), so subscribers always know the state. `recenter` makes
the current filtered pose of each tracked stream its neutral pose: only the published quaternion `q`
changes (`neutral^-1 * q`); `euler` and `raw` stay absolute (docs/protocol.md).

Each stream also follows the head position from its face box and the frame size
(posebridge.filtering.position); the message's optional `pos` is the position relative to the neutral
(set by `recenter` too), nil when unknown or with `position.enabled = false`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from posebridge.filtering.config import FilterConfig
from posebridge.filtering.kalman import ZERO, PoseFilter, Triple
from posebridge.filtering.position import PositionConfig, PositionTracker
from posebridge.formats.protocol import SCHEMA_VERSION, PoseMessage
from posebridge.formats.rotation import Quat, pose_quaternion

NO_FACE = -1
PRIMARY = "primary"
Box = tuple[float, float, float, float]


@dataclass
class Stream:
    """One filtered pose stream: the primary face, or one face id in all-faces mode."""

    filt: PoseFilter | None
    face_id: int = NO_FACE
    neutral: Triple | None = None  # recentered neutral pose (None = facing the camera)
    neutral_q: tuple[bool, Quat] | None = None  # (mirror, its quaternion), cached
    last_std: Triple = ZERO
    last_angles: Triple = ZERO  # filtered, before recentering
    tracked: bool = False
    position: PositionTracker | None = None  # head position (None: position estimation off)


@dataclass
class StreamUpdate:
    """What one stream publishes for one frame."""

    stream: Stream
    raw: Triple | None  # the measurement (None: predicted or lost)
    box: Box | None


@dataclass
class Measurement:
    """One face's estimate for the filter: id, box, angles and spreads (degrees)."""

    face_id: int
    box: Box
    angles: Triple
    stds: Triple


class StreamSet:
    """The filtered pose streams of one session (see the module docstring)."""

    def __init__(self, config: FilterConfig, all_faces: bool = False,
                 position: PositionConfig | None = None) -> None:
        self.config = config
        self.all_faces = all_faces
        self.position = position if position is not None else PositionConfig()
        self.streams: dict[object, Stream] = {}
        self._frame_size = (0, 0)

    def set_position(self, position: PositionConfig) -> None:
        """Head-position settings (validated) for streams created from now on (call before the first
        frame: the daemon's assembly does)."""
        self.position = position

    def _new_stream(self, face_id: int = NO_FACE) -> Stream:
        tracker = (PositionTracker(self.position, self.config) if self.position.enabled
                   else None)
        return Stream(PoseFilter(self.config), face_id=face_id, position=tracker)

    # ---------------------------------------------------------------------------------- per frame
    def update(self, t: float, measurements: Sequence[Measurement],
               frame_size: tuple[int, int] = (0, 0)) -> list[StreamUpdate]:
        """Feed this frame's measurements (primary first) at capture time `t` (`frame_size`: the
        frame's width and height, for the head position)."""
        self._frame_size = frame_size
        if not self.all_faces:
            stream = self.streams.get(PRIMARY)
            if stream is None:
                stream = self.streams[PRIMARY] = self._new_stream()
            return [self._update(stream, t, measurements[0] if measurements else None)]
        out, seen = [], set()
        for m in measurements:
            seen.add(m.face_id)
            stream = self.streams.get(m.face_id)
            if stream is None:
                stream = self.streams[m.face_id] = self._new_stream(m.face_id)
            out.append(self._update(stream, t, m))
        for key in [k for k in self.streams if k not in seen]:
            item = self._update(self.streams[key], t, None)
            out.append(item)
            if not item.stream.tracked:  # reported lost once; forget it
                del self.streams[key]
        return out or [lost_heartbeat()]

    def no_frame(self, t: float) -> list[StreamUpdate]:
        """No frame arrived in time (a live source reconnecting): every stream predicts or reports lost."""
        out = [self._update(stream, t, None) for stream in self.streams.values()]
        return out or [lost_heartbeat()]

    def _update(self, stream: Stream, t: float, m: Measurement | None) -> StreamUpdate:
        assert stream.filt is not None
        if m is None:
            res = stream.filt.update(t, None, None)
            stream.last_std = res.stds  # the filter's predicted spread
        else:
            res = stream.filt.update(t, m.angles, m.stds)
            stream.face_id = m.face_id
            stream.last_std = m.stds if res.measured else res.stds
        stream.tracked = res.tracked
        stream.last_angles = res.angles
        if not stream.tracked:
            stream.face_id = NO_FACE
        measured = m is not None and res.measured
        if stream.position is not None:
            stream.position.update(t, m.box if measured else None, self._frame_size)
        return StreamUpdate(stream, m.angles if measured else None, m.box if measured else None)

    # ------------------------------------------------------------------------------ at run time
    def set_config(self, config: FilterConfig) -> None:
        """New filter parameters for every stream (already validated)."""
        self.config = config
        for stream in self.streams.values():
            if stream.filt is not None:
                stream.filt.config = config
            if stream.position is not None:
                stream.position.follow(config)

    def yaw_hint(self, face_id: int) -> float | None:
        """The filtered yaw of the stream following `face_id`, if it is tracked."""
        key = face_id if self.all_faces else PRIMARY
        stream = self.streams.get(key)
        if stream is None or not stream.tracked or stream.face_id != face_id:
            return None
        return stream.last_angles[0]

    @property
    def tracked(self) -> bool:
        return any(s.tracked for s in self.streams.values())

    def neutral(self) -> list[float] | None:
        stream = self.streams.get(PRIMARY) or next(iter(self.streams.values()), None)
        return list(stream.neutral) if stream is not None and stream.neutral is not None else None

    def recenter(self, reset: bool = False) -> list[float] | None:
        """The current filtered pose of every tracked stream becomes its neutral pose (`reset`: back to
        facing the camera). ValueError when nothing is tracked."""
        if reset:
            for stream in self.streams.values():
                _set_neutral(stream, None)
            return None
        tracked = [st for st in self.streams.values() if st.tracked]
        if not tracked:
            raise ValueError("recenter: no tracked face")
        for stream in tracked:
            _set_neutral(stream, stream.last_angles)
        return self.neutral()

    def set_neutral(self, neutral: Sequence[float] | None) -> None:
        """Apply a recorded neutral pose (replay of a `recenter` event) to every stream."""
        for stream in self.streams.values():
            _set_neutral(stream, None if neutral is None else tuple(float(a) for a in neutral))  # type: ignore


def _set_neutral(stream: Stream, neutral: Triple | None) -> None:
    """The neutral pose of one stream; its current head position becomes the neutral position."""
    stream.neutral, stream.neutral_q = neutral, None
    if stream.position is not None:
        stream.position.recenter(None if neutral is None else pose_quaternion(*neutral))


def lost_heartbeat() -> StreamUpdate:
    return StreamUpdate(Stream(filt=None), None, None)


def output_quaternion(stream: Stream, mirror: bool) -> Quat:
    """Filtered angles -> the Unity quaternion `q`, relative to the stream's neutral pose if recentered."""
    neutral = None
    if stream.neutral is not None:
        if stream.neutral_q is None or stream.neutral_q[0] != mirror:
            stream.neutral_q = (mirror, pose_quaternion(*stream.neutral, mirror=mirror))
        neutral = stream.neutral_q[1]
    return pose_quaternion(*stream.last_angles, mirror=mirror, neutral=neutral)


def output_position(stream: Stream, mirror: bool) -> list[float] | None:
    """The published `pos` of a stream (relative to its neutral), or None."""
    if stream.position is None or not stream.tracked:
        return None
    pos = stream.position.relative(mirror)
    return None if pos is None else list(pos)


def build_message(update: StreamUpdate, seq: int, t_capture: float, t_publish: float,
                  frame_size: tuple[int, int], mirror: bool) -> PoseMessage:
    """The v1 `pose` message for one stream update (docs/protocol.md)."""
    stream = update.stream
    pos = output_position(stream, mirror)
    return PoseMessage(
        v=SCHEMA_VERSION, seq=seq, t_capture=t_capture, t_publish=t_publish,
        face_id=stream.face_id if stream.tracked else NO_FACE, tracked=stream.tracked,
        q=list(output_quaternion(stream, mirror)), euler=list(stream.last_angles),
        raw=None if update.raw is None else list(update.raw), std=list(stream.last_std),
        box=None if update.box is None else list(update.box), frame=[frame_size[0], frame_size[1]], pos=pos,
    )
