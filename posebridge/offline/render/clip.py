"""A rendered clip on disk: the video (mp4v, or any extension OpenCV writes) and its truth CSV, one row
per frame with the exact pose.

Truth columns: `frame`, `t` (s), `yaw_deg`, `pitch_deg`, `roll_deg` (dataset convention, exact), `x`,
`y` (face-centre offset, frame fractions), `distance_m`, `visible` (fraction of the face's box inside
the frame: 1 = the whole face, 0 = none), `box_x0..box_y1` (the face's box in pixels: the projection of
the scan's face vertices, possibly beyond the frame), `kind` (posebridge.offline.render.trajectory
KINDS) and `segment` (index of the motion segment).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posebridge.errors import InputFileError
from posebridge.offline.render.camera import Camera
from posebridge.offline.render.effects import Look, background, camera_noise, composite
from posebridge.offline.render.mesh import HeadMesh, load_head
from posebridge.offline.render.posing import pose_points, scan_rotation
from posebridge.offline.render.trajectory import Trajectory

COLUMNS = ("frame", "t", "yaw_deg", "pitch_deg", "roll_deg", "x", "y", "distance_m", "visible",
           "box_x0", "box_y0", "box_x1", "box_y1", "kind", "segment")


@dataclass
class Truth:
    """A clip's truth, as arrays (one row per frame)."""

    fps: float
    t: np.ndarray  # (N,) s
    angles: np.ndarray  # (N, 3) yaw, pitch, roll, degrees
    offset: np.ndarray  # (N, 2) x, y frame fractions
    distance_m: np.ndarray  # (N,)
    visible: np.ndarray  # (N,) 0..1
    box: np.ndarray  # (N, 4) pixels
    kinds: list[str]
    segments: np.ndarray  # (N,) int

    def __len__(self) -> int:
        return len(self.t)


def face_points(head: HeadMesh) -> np.ndarray:
    """The scan's face (front of the head, chin to brow): the points whose projection is the face box."""
    p = head.positions
    return p[(p[:, 2] > 0.6) & (p[:, 1] > -0.7) & (p[:, 1] < 2.6)].astype(np.float64)


def face_box(points: np.ndarray, camera: Camera, yaw: float, pitch: float, roll: float,
             offset: tuple[float, float], distance_m: float) -> tuple[np.ndarray, float]:
    """The face's box in pixels and the fraction of its area inside the frame."""
    eye = pose_points(points, scan_rotation(yaw, pitch, roll)) + camera.placement(offset, distance_m)
    uv = camera.project(eye)
    x0, y0 = uv.min(axis=0)
    x1, y1 = uv.max(axis=0)
    area = max((x1 - x0) * (y1 - y0), 1e-9)
    inside = max(0.0, min(x1, camera.width) - max(x0, 0.0)) * max(0.0, min(y1, camera.height) - max(y0, 0.0))
    return np.array([x0, y0, x1, y1]), float(inside / area)


def truth_for(trajectory: Trajectory, camera: Camera, head: HeadMesh) -> Truth:
    """The truth of a trajectory seen by `camera` (no rendering needed)."""
    pts = face_points(head)
    boxes, visible = [], []
    for i in range(len(trajectory)):
        p = trajectory.pose(i)
        box, vis = face_box(pts, camera, p.yaw, p.pitch, p.roll, (p.x, p.y), p.distance_m)
        boxes.append(box)
        visible.append(vis)
    poses = trajectory.poses
    return Truth(trajectory.fps, np.arange(len(trajectory)) / trajectory.fps, poses[:, :3].copy(),
                 poses[:, 3:5].copy(), poses[:, 5].copy(), np.array(visible), np.array(boxes),
                 list(trajectory.kinds), trajectory.segments.copy())


def write_truth(path: str | Path, truth: Truth) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(len(truth)):
            w.writerow([i, f"{truth.t[i]:.4f}", *(f"{a:.3f}" for a in truth.angles[i]),
                        *(f"{v:.4f}" for v in truth.offset[i]), f"{truth.distance_m[i]:.4f}",
                        f"{truth.visible[i]:.3f}", *(f"{v:.1f}" for v in truth.box[i]), truth.kinds[i],
                        int(truth.segments[i])])


def read_truth(path: str | Path) -> Truth:
    """A truth CSV written by `write_truth` (InputFileError naming the file otherwise)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from None
    if not rows or any(c not in rows[0] for c in COLUMNS):
        raise InputFileError(path, "not a rendered clip's truth CSV (expected columns "
                                   + ", ".join(COLUMNS) + ")")
    try:
        num = np.array([[float(r[c]) for c in COLUMNS if c != "kind"] for r in rows])
    except ValueError as exc:
        raise InputFileError(path, f"truth CSV has a non-numeric value ({exc})") from None
    t = num[:, 1]
    fps = (len(t) - 1) / float(t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 30.0
    return Truth(round(fps, 2), t, num[:, 2:5], num[:, 5:7], num[:, 7], num[:, 8], num[:, 9:13],
                 [r["kind"] for r in rows], num[:, 13].astype(int))


def render_frames(trajectory: Trajectory, look: Look, camera: Camera, head: HeadMesh, seed: int):
    """Yield each frame as BGR uint8 (background, rendered head, camera noise). Deterministic in
    (trajectory, look, camera, seed)."""
    from posebridge.offline.render.gl import HeadRenderer

    rng = np.random.default_rng(seed)
    back = background(look.background, (camera.width, camera.height), rng)
    with HeadRenderer(head, camera) as renderer:
        for i in range(len(trajectory)):
            p = trajectory.pose(i)
            rgba = renderer.render(p.yaw, p.pitch, p.roll, (p.x, p.y), p.distance_m, look.light)
            rgb = camera_noise(composite(rgba, back), rng, look.noise, look.flicker, look.blur)
            yield cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def write_clip(video: str | Path, trajectory: Trajectory, look: Look = Look(), camera: Camera = Camera(),
               seed: int = 0, truth_path: str | Path | None = None, head: HeadMesh | None = None,
               fourcc: str = "mp4v", progress: Callable[[int], None] | None = None) -> Truth:
    """Render `trajectory` into `video` (and its truth CSV when `truth_path` is given); the truth."""
    head = head or load_head()
    video = Path(video)
    video.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*fourcc), trajectory.fps,
                             (camera.width, camera.height))
    if not writer.isOpened():
        raise InputFileError(video, f"OpenCV cannot write a {fourcc} video here")
    try:
        for frame in render_frames(trajectory, look, camera, head, seed):
            writer.write(frame)
            if progress is not None:
                progress(1)
    finally:
        writer.release()
    truth = truth_for(trajectory, camera, head)
    if truth_path is not None:
        write_truth(truth_path, truth)
    return truth
