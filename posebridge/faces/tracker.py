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
An implausible ROI (off the frame, or its size jumping) does too."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, replace

import cv2
import numpy as np

from posebridge.errors import ConfigError
from posebridge.faces.base import ROI_TAG, FaceBox, FaceDetector
from posebridge.faces.detect_worker import DetectionWorker
from posebridge.faces.geometry import iou
from posebridge.timing import StageTimer

log = logging.getLogger(__name__)

FOLLOW_METHODS = ("template", "hold")


def primary_score(face: FaceBox, frame_size: tuple[int, int]) -> float:
    """Bigger and more central is better: box side x (1 - 0.5 x distance from the frame centre as a
    fraction of the half-diagonal), so a face at the corner counts as half its size."""
    w, h = frame_size
    cx, cy = (face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2
    d = np.hypot(cx - w / 2, cy - h / 2) / max(np.hypot(w / 2, h / 2), 1e-6)
    return float(np.sqrt(max(face.width, 0.0) * max(face.height, 0.0)) * (1.0 - 0.5 * min(d, 1.0)))


def primary(faces: list[FaceBox], frame_size: tuple[int, int], prefer_id: int | None = None,
            switch_ratio: float = 1.0) -> FaceBox | None:
    """The face to publish: the largest / nearest the centre (see `primary_score`). With `prefer_id`,
    that face stays primary unless another scores `switch_ratio` times higher (no flicker between two
    similar faces)."""
    if not faces:
        return None
    best = max(faces, key=lambda f: primary_score(f, frame_size))
    if prefer_id is not None and best.face_id != prefer_id:
        current = next((f for f in faces if f.face_id == prefer_id), None)
        if current is not None and primary_score(best, frame_size) < switch_ratio * primary_score(
            current, frame_size
        ):
            return current
    return best


@dataclass
class _Track:
    face_id: int
    box: FaceBox
    template: np.ndarray | None = None  # grey patch of the box at the last detection, template_size^2
    missed: int = 0  # detection rounds in a row without a matching detection
    score: float = 1.0  # last follow score (normalised cross-correlation), 1.0 right after a detection
    lost: bool = False  # the follower lost it: not output until a detection (or the follower) finds it
    model: bool = False  # followed by the pose model's box head (box = its ROI) rather than the template


def _patch(gray: np.ndarray, box: tuple[float, float, float, float], scale: float, out: tuple[int, int]):
    """Region `box` of `gray` resampled by `scale` into an `out`=(w, h) image (edges replicated)."""
    m = np.array([[scale, 0.0, -box[0] * scale], [0.0, scale, -box[1] * scale]])
    return cv2.warpAffine(gray, m, out, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


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
        self.follow = follow
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.min_follow_score = min_follow_score
        self.search_margin = search_margin
        self.template_size = template_size
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
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if reason is None:
            if self._follow_all(gray):
                self._account("track", t0, None)
                return self._output(image)
            reason = "lost"  # the follower lost a face: look again now
        self._detect(image, gray)
        self._account("detect", t0, reason)
        return self._output(image)

    def _update_async(self, image: np.ndarray, uncertainty_jump: bool) -> list[FaceBox]:
        """Merge a finished detection, follow every track, and hand the worker a frame when one is due."""
        assert self.worker is not None
        t0 = time.perf_counter()
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        done = self.worker.poll()
        if done is not None:
            self._merge(done)
        for t in self.tracks:
            if not t.model:
                t.lost = not self._follow_one(gray, t)
        if any(t.lost and t.missed > self.max_missed for t in self.tracks):
            self.tracks = [t for t in self.tracks if not (t.lost and t.missed > self.max_missed)]
        reason = self._detect_reason(uncertainty_jump)
        if reason is None and any(t.lost for t in self.tracks):
            reason = "lost"
        if reason is not None and not self.worker.busy:
            self._snapshot = {t.face_id: _centre(t.box) for t in self.tracks}
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

    def _merge(self, done) -> None:
        """A detection of an earlier frame: match it to the tracks as they were then, move matched boxes
        by the distance their face has been followed since, start new tracks, age unmatched ones."""
        self._ms["detect"] += done.ms
        self.last_detect_ms = done.ms
        gray = cv2.cvtColor(done.image, cv2.COLOR_BGR2GRAY) if done.image.ndim == 3 else done.image
        snap = self._snapshot
        then = {t.face_id: _shifted(t.box, *(np.subtract(snap[t.face_id], _centre(t.box))))
                for t in self.tracks if t.face_id in snap}
        pairs = _match([then[t.face_id] if t.face_id in then else None for t in self.tracks],
                       [t.model for t in self.tracks], [d.box for d in done.faces], self.iou_threshold)
        matched_dets = set()
        for ti, di in pairs:
            t, d = self.tracks[ti], done.faces[di]
            dx, dy = np.subtract(_centre(t.box), snap[t.face_id])  # followed motion since the frame
            matched_dets.add(di)
            t.missed, t.lost = 0, False
            if t.model and _inside_middle(_centre(d), then[t.face_id]):
                continue  # the detector confirms the model's ROI: keep following with the model
            t.model = False  # new, or drifted: the detector's box takes over (and the template with it)
            t.template = self._template(gray, d)
            t.box = replace(d, face_id=t.face_id, x0=d.x0 + dx, x1=d.x1 + dx, y0=d.y0 + dy, y1=d.y1 + dy)
            t.score = 1.0
        matched = {ti for ti, _ in pairs}
        for i, t in enumerate(self.tracks):
            if i not in matched and t.face_id in snap:
                t.missed += 1
        self.tracks = [t for t in self.tracks
                       if t.missed <= (self.model_max_missed if t.model else self.max_missed)]
        for j, d in enumerate(done.faces):
            if j in matched_dets or any(iou(d.box, then.get(t.face_id, t.box.box)) >= self.iou_threshold
                                        for t in self.tracks):
                continue
            t = _Track(self._next_id, replace(d, face_id=self._next_id))
            t.template = self._template(gray, t.box)
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

    def _template(self, gray: np.ndarray, box: FaceBox) -> np.ndarray:
        s = self.template_size / max(box.width, box.height, 1.0)
        side = max(box.width, box.height)
        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        square = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        return _patch(gray, square, s, (self.template_size, self.template_size))

    def _follow_one(self, gray: np.ndarray, track: _Track) -> bool:
        if self.follow == "hold" or track.template is None:
            return True
        b = track.box
        side = max(b.width, b.height, 1.0)
        s = self.template_size / side
        cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
        half = side * (0.5 + self.search_margin)
        region = (cx - half, cy - half, cx + half, cy + half)
        n = int(round(2 * half * s))
        window = _patch(gray, region, s, (n, n))
        res = cv2.matchTemplate(window, track.template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (mx, my) = cv2.minMaxLoc(res)
        track.score = float(score)
        if not np.isfinite(score) or score < self.min_follow_score:
            return False
        # Top-left of the best match in the window -> frame pixels; the square's centre moves by that.
        new_cx = region[0] + (mx + self.template_size / 2) / s
        new_cy = region[1] + (my + self.template_size / 2) / s
        dx, dy = new_cx - cx, new_cy - cy
        track.box = replace(b, x0=b.x0 + dx, y0=b.y0 + dy, x1=b.x1 + dx, y1=b.y1 + dy)
        return True

    def _follow_all(self, gray: np.ndarray) -> bool:
        ok = True
        for t in self.tracks:
            if not t.model:
                ok = self._follow_one(gray, t) and ok
        return ok

    def _detect(self, image: np.ndarray, gray: np.ndarray) -> None:
        dets = self.detector.detect(image)
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        boxes = [t.box.box for t in self.tracks]
        for r, c in _match(boxes, [t.model for t in self.tracks], [d.box for d in dets], self.iou_threshold):
            t = self.tracks[r]
            matched_tracks.add(r)
            matched_dets.add(c)
            t.missed = 0
            if t.model and _inside_middle(_centre(dets[c]), t.box.box):
                continue  # the detector confirms the model's ROI: keep following with the model
            t.box, t.score, t.model = replace(dets[c], face_id=t.face_id), 1.0, False
            t.template = self._template(gray, t.box)
        survivors = []
        for i, t in enumerate(self.tracks):
            if i in matched_tracks:
                survivors.append(t)
                continue
            t.missed += 1  # not re-detected: keep following it for a while
            if t.model and t.missed <= self.model_max_missed:
                survivors.append(t)
            elif not t.model and t.missed <= self.max_missed and self._follow_one(gray, t):
                survivors.append(t)
            else:
                log.debug("face %d dropped (missed %d detections)", t.face_id, t.missed)
        for j, d in enumerate(dets):
            if j in matched_dets:
                continue
            if any(iou(d.box, t.box.box) >= self.iou_threshold for t in survivors):
                continue  # a second box on an already-tracked face
            t = _Track(self._next_id, replace(d, face_id=self._next_id))
            t.template = self._template(gray, t.box)
            self._next_id += 1
            survivors.append(t)
        self.tracks = survivors

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


def _inside_middle(point: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    """Whether `point` lies in the middle half (in each direction) of `box`."""
    x0, y0, x1, y1 = box
    qx, qy = (x1 - x0) / 4, (y1 - y0) / 4
    return x0 + qx <= point[0] <= x1 - qx and y0 + qy <= point[1] <= y1 - qy


def _centre(box: FaceBox) -> tuple[float, float]:
    return ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)


def _shifted(box: FaceBox, dx: float, dy: float) -> tuple[float, float, float, float]:
    return (box.x0 + dx, box.y0 + dy, box.x1 + dx, box.y1 + dy)


def _match(tracks: list, models: list[bool], dets: list, threshold: float) -> list[tuple[int, int]]:
    """(track, detection) index pairs by descending IoU, each used once, IoU at least `threshold`
    (`tracks` entries may be None: not matchable). A model-followed track's box is the pose model's ROI,
    larger than a detector box and possibly drifted: a detection whose centre lies inside it matches it
    too. For the handful of faces in a webcam frame this is the same assignment as the Hungarian method,
    without SciPy."""

    def score(t, model: bool, d) -> float:
        s = iou(t, d)
        if model and t[0] <= (d[0] + d[2]) / 2 <= t[2] and t[1] <= (d[1] + d[3]) / 2 <= t[3]:
            s = max(s, threshold)
        return s

    scored = sorted(((score(t, m, d), i, j) for i, (t, m) in enumerate(zip(tracks, models, strict=True))
                     if t is not None for j, d in enumerate(dets)), reverse=True)
    used_t, used_d, pairs = set(), set(), []
    for score, i, j in scored:
        if score < threshold:
            break
        if i in used_t or j in used_d:
            continue
        used_t.add(i)
        used_d.add(j)
        pairs.append((i, j))
    return pairs
