"""Face tracking between detections: stable face ids (IoU association), the detector every N frames
or on demand, and a cheap box follower (template matching) on every frame.

With `detect_in_thread=True` (the daemon's setting) the detector runs in a worker thread
(posebridge.faces.detect_worker) and never holds a frame: its result, found in an earlier frame, is
merged when ready, each matched box moved by how far the followed face has moved since that frame.

A pose model with a box head says where the face's ROI is in each frame (`PoseEstimate.next_roi`);
the loop hands it back with `refine`, and that face is then followed by the model instead of by
template matching: its box is the model's ROI (tagged ROI_TAG, cropped as it is), the detector only
re-checks it every `model_redetect_every` frames, and a detector miss ends it only after
`model_max_missed` re-checks in a row (the model follows turned heads a frontal detector loses). A
detection whose centre leaves the middle of the model's ROI (drift) hands the face back to the detector.
An implausible ROI (off the frame, or its size jumping) does too.

Both update paths run the same association step (`FaceTracker._associate`): matching
(posebridge.faces.association), template following between detections (posebridge.faces.template_follow)
and the choice of the face to publish (posebridge.faces.primary) live in their own modules."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from posebridge.errors import ConfigError
from posebridge.faces.association import centre, inside_middle, match, shifted
from posebridge.faces.base import ROI_TAG, FaceBox, FaceDetector
from posebridge.faces.detect_worker import DetectionWorker
from posebridge.faces.geometry import iou
from posebridge.faces.primary import primary
from posebridge.faces.template_follow import FOLLOW_METHODS, TemplateFollower
from posebridge.timing import StageTimer

log = logging.getLogger(__name__)


@dataclass
class _Track:
    face_id: int
    box: FaceBox
    template: np.ndarray | None = None  # grey patch of the box at the last detection, template_size^2
    missed: int = 0  # detection rounds in a row without a matching detection
    score: float = 1.0  # last follow score (normalised cross-correlation), 1.0 right after a detection
    lost: bool = False  # the follower lost it: not output until a detection (or the follower) finds it
    model: bool = False  # followed by the pose model's box head (box = its ROI) rather than the template


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


class FaceTracker:
    """Faces with stable ids across frames, running the (expensive) detector only when needed.

    The detector runs on the first frame, every `redetect_every` frames, when `update(...,
    uncertainty_jump=True)` asks for it, at once when the follower loses a face, on every frame for
    `search_frames` frames after the last face was lost, and then, while nobody is in view, every
    `idle_redetect_every` frames (an empty room costs a tenth of the detector's time by default).
    Detections are matched to tracks by IoU (Hungarian assignment, at least `iou_threshold`);
    unmatched detections become new ids; a track not re-detected for more than `max_missed` detection
    rounds is dropped. Between detections each box is followed by `follow`: "template" (normalised
    cross-correlation of the last detected face patch in a window around the box; a face whose score
    falls below `min_follow_score` counts as lost) or "hold" (keep the box; costs nothing, lags a
    moving head).

    `update` returns every tracked face, primary first (see `primary`; the primary id is sticky), or
    only the primary with `primary_only=True`. Per-frame costs go to `timer` (stages "detect",
    "track") when given, and to `stats()`.
    """

    def __init__(
        self,
        detector: FaceDetector,
        redetect_every: int = 10,
        follow: str = "template",
        iou_threshold: float = 0.3,
        max_missed: int = 2,
        min_follow_score: float = 0.5,
        search_margin: float = 0.35,
        template_size: int = 40,
        idle_redetect_every: int = 10,
        search_frames: int = 15,
        primary_only: bool = False,
        switch_ratio: float = 1.3,
        detect_in_thread: bool = False,
        model_redetect_every: int = 30,
        model_max_missed: int = 5,
        timer: StageTimer | None = None,
    ) -> None:
        if not isinstance(redetect_every, int) or redetect_every < 1:
            raise ConfigError(f"faces.redetect_every: expected an integer >= 1, got {redetect_every!r}")
        if follow not in FOLLOW_METHODS:
            raise ConfigError(f"faces.follow: expected one of {', '.join(FOLLOW_METHODS)}, got {follow!r}")
        self.detector = detector
        self.redetect_every = redetect_every
        self.follower = TemplateFollower(follow, min_follow_score, search_margin, template_size)
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.idle_redetect_every = max(1, idle_redetect_every)
        self.search_frames = max(0, search_frames)
        self._since_face: int | None = None  # frames since a face was last tracked (None: never)
        self.primary_only = primary_only
        self.switch_ratio = switch_ratio
        self.timer = timer
        self.tracks: list[_Track] = []
        self._next_id = 0
        self._since_detect = 0  # frames since the last detection
        self._primary_id: int | None = None
        self.last_action = ""  # "detect" or "track" for the latest update
        self.last_detect_ms: float | None = None  # a worker detection merged in the latest update (ms)
        self._counts: Counter[str] = Counter()
        self._ms: Counter[str] = Counter()
        self.worker = DetectionWorker(detector) if detect_in_thread else None
        self.model_redetect_every = max(1, int(model_redetect_every))
        self.model_max_missed = max(0, int(model_max_missed))
        self._frame_size = (0, 0)
        self._frame = 0  # frames seen
        self._snapshot: dict[int, tuple[float, float]] = {}  # track id -> box centre in the submitted frame

    # -------------------------------------------------------------------------------------------- API
    def update(self, image: np.ndarray, uncertainty_jump: bool = False) -> list[FaceBox]:
        """Faces in this frame (BGR), each with a stable `face_id`, primary first."""
        self._frame += 1
        self.last_detect_ms = None
        self._frame_size = (image.shape[1], image.shape[0])
        if self.worker is not None:
            return self._update_async(image, uncertainty_jump)
        reason = self._detect_reason(uncertainty_jump)
        t0 = time.perf_counter()
        gray = _gray(image)
        if reason is None:
            if self._follow_all(gray):
                self._account("track", t0, None)
                return self._output(image)
            reason = "lost"  # the follower lost a face: look again now
        dets = self.detector.detect(image)
        self._associate(gray, dets, keep=lambda t: t.model or self._follow_one(gray, t))
        self._account("detect", t0, reason)
        return self._output(image)

    def _update_async(self, image: np.ndarray, uncertainty_jump: bool) -> list[FaceBox]:
        """Merge a finished detection, follow every track, and hand the worker a frame when one is due."""
        assert self.worker is not None
        t0 = time.perf_counter()
        gray = _gray(image)
        done = self.worker.poll()
        if done is not None:
            self._ms["detect"] += done.ms
            self.last_detect_ms = done.ms
            self._associate(_gray(done.image), done.faces, since=self._snapshot)
        for t in self.tracks:
            if not t.model:
                t.lost = not self._follow_one(gray, t)
        if any(t.lost and t.missed > self.max_missed for t in self.tracks):
            self.tracks = [t for t in self.tracks if not (t.lost and t.missed > self.max_missed)]
        reason = self._detect_reason(uncertainty_jump)
        if reason is None and any(t.lost for t in self.tracks):
            reason = "lost"
        if reason is not None and not self.worker.busy:
            self._snapshot = {t.face_id: centre(t.box) for t in self.tracks}
            if self.worker.submit(image, self._frame):
                self._counts["reason:" + reason] += 1
                self._counts["detect"] += 1
                self._since_detect = 0
        else:
            self._since_detect += 1
        ms = (time.perf_counter() - t0) * 1000.0
        self.last_action = "track"
        self._counts["track"] += 1
        self._ms["track"] += ms
        if self.timer is not None:
            self.timer.add("track", ms)
        return self._output(image, [t for t in self.tracks if not t.lost])

    def _associate(self, gray: np.ndarray, dets: list[FaceBox],
                   since: dict[int, tuple[float, float]] | None = None,
                   keep: Callable[[_Track], bool] | None = None) -> None:
        """One detection round, the same for both update paths: match the detections to the tracks where
        they were in the detection's frame; a model-followed track whose ROI a detection confirms stays
        with the model, any other matched track takes the detection's box and a new template; unmatched
        tracks age (and are dropped past `max_missed` / `model_max_missed`, or when `keep` says so); every
        detection left starts a new track unless it overlaps a kept one.

        `since`: each track's box centre in the detection's frame (the worker's detection of an earlier
        frame): boxes are compared where they were then, a matched box is moved on by how far its face
        has been followed since, and a track not in `since` (it started later) neither matches nor ages.
        None: the detection is of this frame. `gray`: the detection's frame, for new templates."""
        if since is None:
            then = {t.face_id: t.box.box for t in self.tracks}
        else:
            then = {t.face_id: shifted(t.box, *(np.subtract(since[t.face_id], centre(t.box))))
                    for t in self.tracks if t.face_id in since}
        pairs = match([then.get(t.face_id) for t in self.tracks], [t.model for t in self.tracks],
                      [d.box for d in dets], self.iou_threshold)
        for ti, di in pairs:
            t, d = self.tracks[ti], dets[di]
            t.missed, t.lost = 0, False
            if t.model and inside_middle(centre(d), then[t.face_id]):
                continue  # the detector confirms the model's ROI: keep following with the model
            t.model = False  # new, or drifted: the detector's box takes over (and the template with it)
            t.template = self.follower.template(gray, d)
            if since is None:
                t.box = replace(d, face_id=t.face_id)
            else:
                dx, dy = np.subtract(centre(t.box), since[t.face_id])  # followed motion since the frame
                t.box = replace(d, face_id=t.face_id, x0=d.x0 + dx, x1=d.x1 + dx, y0=d.y0 + dy, y1=d.y1 + dy)
            t.score = 1.0
        matched = {ti for ti, _ in pairs}
        kept = []
        for i, t in enumerate(self.tracks):
            if i not in matched and t.face_id in then:
                t.missed += 1  # not re-detected: keep following it for a while
            if t.missed <= (self.model_max_missed if t.model else self.max_missed) and (
                    i in matched or t.face_id not in then or keep is None or keep(t)):
                kept.append(t)
            else:
                log.debug("face %d dropped (missed %d detections)", t.face_id, t.missed)
        self.tracks = kept
        matched_dets = {di for _, di in pairs}
        for j, d in enumerate(dets):
            # Overlap with a kept track, in the detection's frame: now, or where the tracks were then.
            where = [t.box.box if since is None else then.get(t.face_id, t.box.box) for t in self.tracks]
            if j in matched_dets or any(iou(d.box, b) >= self.iou_threshold for b in where):
                continue  # a second box on an already-tracked face
            t = _Track(self._next_id, replace(d, face_id=self._next_id))
            t.template = self.follower.template(gray, t.box)
            self._next_id += 1
            self.tracks.append(t)

    def refine(self, face_id: int, roi: tuple[float, float, float, float] | None) -> None:
        """The pose model's ROI for `face_id` in the frame it just saw (its box head's `next_roi`): that
        face is followed by the model from now on; None (no box head, or no estimate) changes nothing.
        An implausible ROI (non-finite, off the frame, or its side jumping by more than 1.5x) hands the
        face back to the detector at once."""
        if roi is None:
            return
        track = next((t for t in self.tracks if t.face_id == face_id), None)
        if track is None:
            return
        x0, y0, x1, y1 = roi
        side, old = x1 - x0, max(track.box.width, track.box.height, 1.0)
        w, h = self._frame_size
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        plausible = (all(np.isfinite(v) for v in roi) and 16.0 <= side and 1 / 1.5 <= side / old <= 1.5
                     and (not w or (0 <= cx < w and 0 <= cy < h)))
        if not plausible:
            track.model, track.lost = False, True
            return
        track.model = True
        track.box = replace(track.box, x0=float(x0), y0=float(y0), x1=float(x1), y1=float(y1),
                            detector=ROI_TAG)

    def close(self) -> None:
        """Stop the detection worker (if any)."""
        if self.worker is not None:
            self.worker.close()

    def reset(self) -> None:
        """Forget all faces (ids keep increasing)."""
        self.tracks.clear()
        self._primary_id = None
        self._since_detect = 0
        self._since_face = None

    @property
    def follow(self) -> str:
        """How boxes are followed between detections: "template" or "hold"."""
        return self.follower.method

    @property
    def primary_id(self) -> int | None:
        return self._primary_id

    def stats(self) -> dict:
        n_det, n_trk = self._counts["detect"], self._counts["track"]
        return {
            "frames": n_det + n_trk,
            "detect_frames": n_det,
            "track_frames": n_trk,
            "detect_ms_mean": self._ms["detect"] / n_det if n_det else 0.0,
            "track_ms_mean": self._ms["track"] / n_trk if n_trk else 0.0,
            "redetect_reasons": {k[7:]: v for k, v in self._counts.items() if k.startswith("reason:")},
            "detect_in_thread": self.worker is not None,
            "detector_errors": self.worker.errors if self.worker is not None else 0,
            "faces": len(self.tracks),
            "next_id": self._next_id,
        }

    # ---------------------------------------------------------------------------------------- helpers
    def _detect_reason(self, uncertainty_jump: bool) -> str | None:
        if uncertainty_jump:
            return "jump"
        if not self.tracks:
            if self._since_face is not None and self._since_face < self.search_frames:
                return "search"  # a face was just lost: look hard
            return "idle" if self._since_detect + 1 >= self.idle_redetect_every or not self._counts else None
        every = self.model_redetect_every if all(t.model for t in self.tracks) else self.redetect_every
        if self._since_detect + 1 >= every:
            return "interval"
        return None

    def _account(self, action: str, t0: float, reason: str | None) -> None:
        ms = (time.perf_counter() - t0) * 1000.0
        self.last_action = action
        self._counts[action] += 1
        self._ms[action] += ms
        if reason:
            self._counts["reason:" + reason] += 1
            self._since_detect = 0
        else:
            self._since_detect += 1
        if self.timer is not None:
            self.timer.add(action, ms)

    def _follow_one(self, gray: np.ndarray, track: _Track) -> bool:
        box, score = self.follower.follow(gray, track.box, track.template)
        if score is not None:
            track.score = score
        if box is None:
            return False
        track.box = box
        return True

    def _follow_all(self, gray: np.ndarray) -> bool:
        ok = True
        for t in self.tracks:
            if not t.model:
                ok = self._follow_one(gray, t) and ok
        return ok

    def _output(self, image: np.ndarray, tracks: list[_Track] | None = None) -> list[FaceBox]:
        faces = [replace(t.box) for t in (self.tracks if tracks is None else tracks)]
        if not faces:
            self._primary_id = None
            if self._since_face is not None:
                self._since_face += 1
            return []
        self._since_face = 0
        size = (image.shape[1], image.shape[0])
        best = primary(faces, size, self._primary_id, self.switch_ratio)
        assert best is not None
        self._primary_id = best.face_id
        if self.primary_only:
            return [best]
        return [best] + sorted((f for f in faces if f is not best), key=lambda f: f.face_id)
