"""Rotation conventions: dataset (yaw, pitch, roll) degrees <-> unit quaternions in Unity's frame.

Dataset convention (300W_LP / AFLW2000 `Pose_Para`, HopeNet), checked against the AFLW2000 landmarks
(see docs/protocol.md "Rotation convention"): in the camera frame C (x = image right, y = image down,
z = towards the camera; left-handed) the head rotation is the matrix product

    R_C = Rx(pitch) @ Ry(-yaw) @ Rz(roll)

so positive yaw = the person turns to their own right (nose moves to image-left in an unmirrored
camera image), positive pitch = looks up, positive roll = tilts the head towards their left shoulder.

Unity frame (left-handed, y up, z forward), head-local and relative to a neutral pose that faces the
camera: x = the head's right, y = up, z = out of the face. Mapping C -> Unity is a 180-degree turn about
z, giving

    R_U = Rx(-pitch) @ Ry(yaw) @ Rz(roll)
    q   = AngleAxis(-pitch, right) * AngleAxis(yaw, up) * AngleAxis(roll, forward)   (Unity C#)

`mirror=True` (selfie view) negates yaw and roll first. Quaternions are `[x, y, z, w]` with w >= 0.
All functions accept scalars or equal-length arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.transform import Rotation

__all__ = [
    "canonical",
    "dataset_matrix",
    "quat_inverse",
    "quat_multiply",
    "recenter",
    "unity_quaternion",
    "unity_to_euler",
    "wrap_degrees",
]


def wrap_degrees(angle: ArrayLike) -> np.ndarray | float:
    """Angle(s) wrapped into [-180, 180)."""
    out = (np.asarray(angle, dtype=np.float64) + 180.0) % 360.0 - 180.0
    return float(out) if out.ndim == 0 else out


def canonical(q: ArrayLike) -> np.ndarray:
    """Unit quaternion(s) `[x, y, z, w]` normalised with w >= 0 (q and -q are the same rotation)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0.0, -q, q)


def _angles(yaw: ArrayLike, pitch: ArrayLike, roll: ArrayLike) -> tuple[np.ndarray, bool]:
    arr = np.stack(np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (yaw, pitch, roll))), -1)
    return arr.reshape(-1, 3), arr.ndim == 1


def dataset_matrix(yaw: ArrayLike, pitch: ArrayLike, roll: ArrayLike) -> np.ndarray:
    """Rotation matrix (3x3, or Nx3x3) in the camera frame C: Rx(pitch) @ Ry(-yaw) @ Rz(roll)."""
    arr, single = _angles(yaw, pitch, roll)
    rot = Rotation.from_euler("XYZ", np.stack([arr[:, 1], -arr[:, 0], arr[:, 2]], -1), degrees=True)
    m = rot.as_matrix()
    return m[0] if single else m


def unity_quaternion(yaw: ArrayLike, pitch: ArrayLike, roll: ArrayLike, mirror: bool = False) -> np.ndarray:
    """Dataset angles (degrees) -> head-local rotation in Unity's frame as `[x, y, z, w]`, w >= 0.

    Intrinsic order X, Y, Z: q = Rx(-pitch) * Ry(yaw) * Rz(roll) (scipy's "XYZ" Euler sequence).
    """
    arr, single = _angles(yaw, pitch, roll)
    sign = -1.0 if mirror else 1.0
    euler = np.stack([-arr[:, 1], sign * arr[:, 0], sign * arr[:, 2]], -1)
    q = canonical(Rotation.from_euler("XYZ", euler, degrees=True).as_quat())
    return q[0] if single else q


def unity_to_euler(q: ArrayLike, mirror: bool = False) -> np.ndarray:
    """Inverse of `unity_quaternion`: `[yaw, pitch, roll]` degrees, pitch in [-90, 90]."""
    q = np.asarray(q, dtype=np.float64)
    single = q.ndim == 1
    e = Rotation.from_quat(q.reshape(-1, 4)).as_euler("XYZ", degrees=True)
    # scipy keeps the middle (yaw) angle in [-90, 90]; the equivalent triple (X+180, 180-Y, Z+180)
    # gives yaw its full range and keeps |pitch| <= 90 instead.
    flip = np.abs(e[:, 0]) > 90.0
    e[flip] = wrap_degrees(np.stack([e[flip, 0] + 180.0, 180.0 - e[flip, 1], e[flip, 2] + 180.0], -1))
    sign = -1.0 if mirror else 1.0
    out = np.stack([sign * e[:, 1], -e[:, 0], sign * e[:, 2]], -1)
    return out[0] if single else out


def quat_multiply(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Hamilton product a * b (apply b, then a), `[x, y, z, w]`, same as Unity's `a * b`."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ], -1)


def quat_inverse(q: ArrayLike) -> np.ndarray:
    """Inverse of a unit quaternion (its conjugate)."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def recenter(q: ArrayLike, q_neutral: ArrayLike) -> np.ndarray:
    """The rotation relative to a neutral pose, in the neutral head's own frame: neutral^-1 * q."""
    return canonical(quat_multiply(quat_inverse(q_neutral), q))
