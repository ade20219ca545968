"""Head position from the face box and the camera's field of view, Kalman-filtered per face stream.

A pinhole camera with square pixels and its principal point at the frame centre, focal length
`f = (W / 2) / tan(hfov / 2)` pixels. A face box `[x0, y0, x1, y1]` of width `w` pixels seen in a
`W x H` frame puts the head at depth `d = f * face_width_m / w` and, from the box centre `(cx, cy)`,

    x = -(cx - W/2) * d / f      the person's right (image left in an unmirrored camera image)
    y = -(cy - H/2) * d / f      up
    z = -d                       towards the camera (the forward direction of a head facing it)

metres, with the origin at the camera: the same axes as the stream's quaternion `q` (Unity's left-handed
frame of a head looking into the camera: x right, y up, z forward; docs/protocol.md). The published
`pos` is the displacement from the neutral position, in the neutral head's own axes (as `q` is the
rotation relative to the neutral pose): before any `recenter` the neutral is the camera's axis at
`neutral_distance_m` facing the camera; a `recenter` makes the current filtered position (and head
rotation) neutral. `mirror` negates x, as it mirrors `q`.

The filter is the angle filter (posebridge.filtering.kalman.PoseFilter) with wrapping off and metre
settings: measurement noise from `box_noise_px` of box jitter (x, y: `box_noise_px * d / f`; z:
`d * box_noise_px / w`, the depth error of a width error), white-noise acceleration `process_noise`
in m^2/s^3, and the same motion gate, so a lean is followed at once and a still head is smoothed.
benchmarks/bench_head_position.py measures it on a clip of a real face with a known trajectory.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from posebridge import validation as v
from posebridge.errors import ConfigError
from posebridge.filtering.config import FilterConfig
from posebridge.filtering.kalman import PoseFilter
from posebridge.formats.rotation import Quat

Vec3 = tuple[float, float, float]
Box = Sequence[float]


@dataclass
class PositionConfig:
    """Head position from the face box and the camera's field of view (posebridge.filtering.position)."""

    enabled: bool = True  # estimate the head position: `pos` in the stream, VMC root/head, opentrack X/Y/Z
    hfov_deg: float = 60.0  # the camera's horizontal field of view, degrees (a typical webcam: 55-78)
    face_width_m: float = 0.15  # real width spanned by the detector's face box, metres (calibrate once)
    neutral_distance_m: float = 0.6  # before any recenter, pos = 0 on the camera's axis at this distance
    process_noise: float = 0.01  # white-noise acceleration spectral density of the filter, m^2/s^3
    box_noise_px: float = 2.0  # jitter of the face box edges, pixels: the filter's measurement noise


def validate_position(p: PositionConfig, prefix: str = "position.") -> PositionConfig:
    """The `[position]` ranges (examples/posebridge.toml)."""
    v.boolean(f"{prefix}enabled", p.enabled)
    v.number(f"{prefix}hfov_deg", p.hfov_deg, 10.0, 170.0)
    v.number(f"{prefix}face_width_m", p.face_width_m, 0.05, 0.5)
    v.number(f"{prefix}neutral_distance_m", p.neutral_distance_m, 0.1, 5.0)
    v.number(f"{prefix}process_noise", p.process_noise, 0.0, 1e6)
    v.number(f"{prefix}box_noise_px", p.box_noise_px, 0.01, 100.0)
    return p


def settings_from(section: object | None) -> PositionConfig:
    """The `[position]` settings from a config section or a recorded header's dict (validated; unknown
    or missing names keep their defaults)."""
    if section is None:
        return PositionConfig()
    if isinstance(section, PositionConfig):
        return validate_position(section)
    if not isinstance(section, dict):
        raise ConfigError(f"position: expected a table, got {type(section).__name__}")
    known = {f.name for f in dataclasses.fields(PositionConfig)}
    return validate_position(PositionConfig(**{k: v for k, v in section.items() if k in known}))


def focal_px(width: float, hfov_deg: float) -> float:
    """Focal length in pixels of a frame `width` pixels wide seen with horizontal field of view `hfov_deg`."""
    return (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)


def box_position(box: Box, frame_size: Sequence[int], s: PositionConfig) -> Vec3 | None:
    """The head position (metres, camera at the origin, axes as in the module docstring) from a face
    box; None for a degenerate box or frame."""
    x0, y0, x1, y1 = (float(v) for v in box)
    width, height = float(frame_size[0]), float(frame_size[1])
    w = x1 - x0
    if not (w > 0.0 and width > 0.0 and height > 0.0) or not all(map(math.isfinite, (x0, y0, x1, y1))):
        return None
    f = focal_px(width, s.hfov_deg)
    depth = f * s.face_width_m / w
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return (-(cx - width / 2.0) * depth / f, -(cy - height / 2.0) * depth / f, -depth)


def measurement_std(box: Box, frame_size: Sequence[int], s: PositionConfig) -> Vec3:
    """Standard deviation (metres) of `box_position` for `box_noise_px` of box jitter."""
    w = float(box[2]) - float(box[0])
    f = focal_px(float(frame_size[0]), s.hfov_deg)
    depth = f * s.face_width_m / w
    lateral = s.box_noise_px * depth / f
    return (lateral, lateral, depth * s.box_noise_px / w)


def filter_config(s: PositionConfig, angles: FilterConfig) -> FilterConfig:
    """The angle filter's settings for metres: no wrapping, measurement noise passed per frame; the kind
    ("kalman" / "none") and `lost_after_s` follow the angle filter's."""
    return FilterConfig(kind=angles.kind, process_noise=s.process_noise, meas_scale=1.0, meas_floor_deg=1e-4,
                        default_meas_deg=0.01, initial_rate_std=0.05, lost_after_s=angles.lost_after_s,
                        wrap=(False, False, False))


def rotation_matrix(q: Quat) -> tuple[Vec3, Vec3, Vec3]:
    """3x3 rotation matrix (rows) of a unit quaternion `[x, y, z, w]` (same convention as `q`)."""
    x, y, z, w = q
    return ((1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
            (2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
            (2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)))


class PositionTracker:
    """One stream's head position: fed a box (or None) per frame, filtered, relative to its neutral.

    `update(t, box, frame_size)` runs the filter on one frame's box (None: no measurement) and returns
    the filtered absolute position."""

    def __init__(self, settings: PositionConfig, angles: FilterConfig | None = None) -> None:
        self.settings = settings
        self.filt = PoseFilter(filter_config(settings, angles or FilterConfig()))
        self.current: Vec3 | None = None  # filtered, camera-anchored (module docstring), None when unknown
        self.neutral: tuple[Vec3, tuple[Vec3, Vec3, Vec3]] | None = None  # (position, neutral rotation)

    def follow(self, angles: FilterConfig) -> None:
        """The angle filter's settings changed (control `set`): take its kind and `lost_after_s`."""
        self.filt.config = filter_config(self.settings, angles)

    def update(self, t: float, box: Box | None, frame_size: Sequence[int]) -> Vec3 | None:
        """Run the filter on one frame's box (None: no measurement); the filtered absolute position or
        None when unknown."""
        z = std = None
        if box is not None:
            z = box_position(box, frame_size, self.settings)
            std = measurement_std(box, frame_size, self.settings) if z is not None else None
        out = self.filt.update(t, z, std)
        self.current = out.angles if out.tracked else None
        return self.current

    def recenter(self, neutral_q: Quat | None) -> None:
        """The current position (and the head rotation `neutral_q`, unmirrored) become the neutral;
        `None` rotation = back to the camera-facing default."""
        if neutral_q is None or self.current is None:
            self.neutral = None
            return
        self.neutral = (self.current, rotation_matrix(neutral_q))

    def relative(self, mirror: bool = False) -> Vec3 | None:
        """The published `pos`: displacement from the neutral in the neutral head's axes (x negated with
        `mirror`), metres; None when unknown."""
        p = self.current
        if p is None:
            return None
        if self.neutral is None:
            d = (p[0], p[1], p[2] + self.settings.neutral_distance_m)
        else:
            (nx, ny, nz), r = self.neutral
            v = (p[0] - nx, p[1] - ny, p[2] - nz)  # R^T v: into the neutral head's axes
            d = tuple(r[0][i] * v[0] + r[1][i] * v[1] + r[2][i] * v[2] for i in range(3))  # type: ignore
        x, y, z = d
        if not all(map(math.isfinite, (x, y, z))):
            return None
        return (-x if mirror else x, y, z)
