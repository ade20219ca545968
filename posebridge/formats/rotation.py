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
The closed forms below are plain NumPy (no SciPy in the daemon); `tests/formats/test_rotation.py` checks them
against SciPy's Rotation and the shared vectors in tests/vectors/rotations.json. All functions accept
scalars or equal-length arrays; `pose_quaternion` is the per-frame scalar fast path.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "canonical",
    "dataset_angles",
    "dataset_matrix",
    "pose_quaternion",
    "quat_inverse",
    "quat_multiply",
    "quaternion_matrix",
    "recenter",
    "rotate_in_plane",
    "unity_quaternion",
    "unity_to_euler",
    "wrap_degrees",
    "xyz_euler",
]

Quat = tuple[float, float, float, float]


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


def _xyz_quaternion(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Quaternion of Rx(a) @ Ry(b) @ Rz(c) (radians), i.e. qx * qy * qz, as (N, 4) [x, y, z, w]."""
    sa, ca = np.sin(a / 2), np.cos(a / 2)
    sb, cb = np.sin(b / 2), np.cos(b / 2)
    sc, cc = np.sin(c / 2), np.cos(c / 2)
    return np.stack([
        sa * cb * cc + ca * sb * sc,
        ca * sb * cc - sa * cb * sc,
        ca * cb * sc + sa * sb * cc,
        ca * cb * cc - sa * sb * sc,
    ], -1)


def _xyz_matrix(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Rx(a) @ Ry(b) @ Rz(c) (radians) as (N, 3, 3)."""
    sa, ca, sb, cb, sc, cc = np.sin(a), np.cos(a), np.sin(b), np.cos(b), np.sin(c), np.cos(c)
    return np.stack([
        np.stack([cb * cc, -cb * sc, sb], -1),
        np.stack([ca * sc + sa * sb * cc, ca * cc - sa * sb * sc, -sa * cb], -1),
        np.stack([sa * sc - ca * sb * cc, sa * cc + ca * sb * sc, ca * cb], -1),
    ], -2)


def dataset_matrix(yaw: ArrayLike, pitch: ArrayLike, roll: ArrayLike) -> np.ndarray:
    """Rotation matrix (3x3, or Nx3x3) in the camera frame C: Rx(pitch) @ Ry(-yaw) @ Rz(roll)."""
    arr, single = _angles(yaw, pitch, roll)
    r = np.radians(arr)
    m = _xyz_matrix(r[:, 1], -r[:, 0], r[:, 2])
    return m[0] if single else m


def dataset_angles(matrix: ArrayLike) -> np.ndarray:
    """Inverse of `dataset_matrix`: (yaw, pitch, roll) degrees of a rotation matrix (3x3 or Nx3x3) in the
    camera frame, yaw in [-90, 90] (R = Rx(pitch) Ry(-yaw) Rz(roll); at |yaw| = 90 roll is set to 0)."""
    m = np.asarray(matrix, dtype=np.float64)
    single = m.ndim == 2
    a, b, c = _xyz_angles(m.reshape(-1, 3, 3))  # b = -yaw
    out = np.degrees(np.stack([-b, a, c], -1))
    return out[0] if single else out


def rotate_in_plane(yaw: ArrayLike, pitch: ArrayLike, roll: ArrayLike, theta: ArrayLike) -> np.ndarray:
    """The pose after turning the image by `theta` degrees clockwise about the view axis (an in-plane
    rotation of a face crop): R' = Rz(theta) R in the camera frame, as (yaw, pitch, roll) degrees. For a
    frontal face this adds `theta` to the roll. OpenCV's `getRotationMatrix2D(centre, -theta, 1)` turns
    the image so."""
    arr, single = _angles(yaw, pitch, roll)
    t = np.radians(np.broadcast_to(np.asarray(theta, dtype=np.float64), arr.shape[:1]))
    rz = _xyz_matrix(np.zeros_like(t), np.zeros_like(t), t)
    out = dataset_angles(rz @ dataset_matrix(arr[:, 0], arr[:, 1], arr[:, 2]).reshape(-1, 3, 3))
    return out[0] if single else out


def unity_quaternion(yaw: ArrayLike, pitch: ArrayLike, roll: ArrayLike, mirror: bool = False) -> np.ndarray:
    """Dataset angles (degrees) -> head-local rotation in Unity's frame as `[x, y, z, w]`, w >= 0.

    Intrinsic order X, Y, Z: q = Rx(-pitch) * Ry(yaw) * Rz(roll).
    """
    arr, single = _angles(yaw, pitch, roll)
    sign = -1.0 if mirror else 1.0
    r = np.radians(arr)
    q = canonical(_xyz_quaternion(-r[:, 1], sign * r[:, 0], sign * r[:, 2]))
    return q[0] if single else q


def pose_quaternion(yaw: float, pitch: float, roll: float, mirror: bool = False,
                    neutral: Quat | None = None) -> Quat:
    """The per-frame scalar path of `unity_quaternion` (and, with `neutral`, of `recenter`): floats in,
    a canonical `(x, y, z, w)` tuple out."""
    sign = -0.5 if mirror else 0.5
    a, b, c = math.radians(-pitch) * 0.5, math.radians(yaw) * sign, math.radians(roll) * sign
    sa, ca, sb, cb, sc, cc = math.sin(a), math.cos(a), math.sin(b), math.cos(b), math.sin(c), math.cos(c)
    x = sa * cb * cc + ca * sb * sc
    y = ca * sb * cc - sa * cb * sc
    z = ca * cb * sc + sa * sb * cc
    w = ca * cb * cc - sa * sb * sc
    if neutral is not None:  # neutral^-1 * q
        nx, ny, nz, nw = -neutral[0], -neutral[1], -neutral[2], neutral[3]
        x, y, z, w = (nw * x + nx * w + ny * z - nz * y, nw * y - nx * z + ny * w + nz * x,
                      nw * z + nx * y - ny * x + nz * w, nw * w - nx * x - ny * y - nz * z)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if w < 0.0:
        n = -n
    return (x / n, y / n, z / n, w / n)


def _xyz_angles(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 3, 3) rotation matrices -> radians (a, b, c) with R = Rx(a) Ry(b) Rz(c), b in [-pi/2, pi/2].
    At gimbal lock (|b| = pi/2) c is set to 0 and a carries the whole rotation."""
    r02 = np.clip(m[:, 0, 2], -1.0, 1.0)
    b = np.arcsin(r02)
    locked = np.abs(r02) > 1.0 - 1e-12
    a = np.where(locked, np.arctan2(np.sign(r02) * m[:, 1, 0], m[:, 1, 1]),
                 np.arctan2(-m[:, 1, 2], m[:, 2, 2]))
    c = np.where(locked, 0.0, np.arctan2(-m[:, 0, 1], m[:, 0, 0]))
    return a, b, c


def quaternion_matrix(q: ArrayLike) -> np.ndarray:
    """Unit quaternion(s) `[x, y, z, w]` (4 or N x 4) -> rotation matrix (3 x 3 or N x 3 x 3)."""
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def xyz_euler(q: ArrayLike) -> np.ndarray:
    """Unit quaternion(s) `[x, y, z, w]` (4 or N x 4) -> degrees (a, b, c) with R = Rx(a) Ry(b) Rz(c),
    b in [-90, 90]; at gimbal lock (|b| = 90) c is 0 and a carries the whole rotation. Another axis
    order is this one of a quaternion whose axes are renamed (output/opentrack.py: y, x, z)."""
    q = np.asarray(q, dtype=np.float64)
    a, b, c = _xyz_angles(quaternion_matrix(q.reshape(-1, 4)))
    out = np.degrees(np.stack([a, b, c], -1))
    return out[0] if q.ndim == 1 else out


def unity_to_euler(q: ArrayLike, mirror: bool = False) -> np.ndarray:
    """Inverse of `unity_quaternion`: `[yaw, pitch, roll]` degrees, pitch in [-90, 90]."""
    q = np.asarray(q, dtype=np.float64)
    single = q.ndim == 1
    e = xyz_euler(canonical(q.reshape(-1, 4)))
    # The decomposition keeps the middle (yaw) angle in [-90, 90]; the equivalent triple
    # (X+180, 180-Y, Z+180) gives yaw its full range and keeps |pitch| <= 90 instead.
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
