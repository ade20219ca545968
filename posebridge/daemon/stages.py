"""The interfaces of the parts the per-frame loop calls, in data-flow order (after opentrack's
`api/plugin-api.hpp`): a face tracker, a pose estimator, a publisher, extra outputs and an optional
recorder, each named `...Stage` (the frame source's interface is the sources' own,
posebridge.sources.base.FrameSource). The built-in parts implement them (posebridge.faces.tracker.FaceTracker,
posebridge.inference.estimator.Estimator, posebridge.output.transport.Publisher, the senders in
posebridge.output, posebridge.formats.session_file.SessionWriter); tests pass fakes that do the same to
provoke faults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from posebridge.faces.base import FaceBox
from posebridge.formats.protocol import PoseMessage
from posebridge.inference.estimator import PoseEstimate
from posebridge.inference.meta import ModelMeta

Box = tuple[float, float, float, float]


class TrackerStage(Protocol):
    """Faces in each frame with stable ids, primary first; never blocks on its detector."""

    last_action: str  # "detect" when a detector ran inline on this frame, else "track"
    last_detect_ms: float | None  # a detector run finished since the last update (ms), else None

    def update(self, image: np.ndarray, uncertainty_jump: bool = False) -> list[FaceBox]: ...

    def refine(self, face_id: int, roi: Box | None) -> None:
        """The pose model's own ROI for a face in this frame (box head), or None."""
        ...

    def stats(self) -> dict: ...

    def close(self) -> None: ...


class EstimatorStage(Protocol):
    """Head poses for faces given as (frame, box, detector name); `timings` gets "crop" and "infer" ms."""

    meta: ModelMeta

    def predict_faces(self, faces: Sequence[tuple[np.ndarray, Box, str]],
                      yaw_hints: Sequence[float | None] | None = None,
                      timings: dict[str, float] | None = None) -> list[PoseEstimate]: ...


class PublisherStage(Protocol):
    """Sends one encoded message (a list of frames: topic, payload); never blocks; False when dropped."""

    address: str

    def send(self, frames: Sequence[bytes]) -> bool: ...

    def wait_for_subscriber(self, timeout_s: float, stop=None) -> bool: ...

    def stats(self) -> dict: ...

    def close(self) -> None: ...


class SinkStage(Protocol):
    """An extra output beside the ZeroMQ stream (VMC over OSC, opentrack UDP, ...): gets every published
    message. Never blocks a frame and never raises: a sender that cannot send logs once and counts."""

    name: str

    def send(self, msg: PoseMessage) -> None: ...

    def stats(self) -> dict: ...

    def close(self) -> None: ...


class RecorderStage(Protocol):
    """Writes one record per frame (docs/session-format.md)."""

    frames: int

    def write_frame(self, frame_index: int, t_capture: float, frame_size, faces=None, messages=None,
                    timings=None, image=None, payloads=None) -> None: ...

    def write_event(self, name: str, t: float | None = None, **detail) -> None: ...

    def close(self, reason: str = "closed") -> None: ...
