"""Turning the scanned head on its neck: dataset angles -> the rotation in the scan's frame, and the
posed vertices (the head turns rigidly about a pivot at the top of the neck; the rotation fades out
down the neck so the shoulders stay put).

Frames: the project's camera frame C is x = image right, y = image down, z = towards the camera
(docs/protocol.md); the scan and OpenGL use x = image right, y = up, z = towards the viewer. With
F = diag(1, -1, 1) the head rotation in the scan's frame is F R_C F, R_C = Rx(pitch) Ry(-yaw) Rz(roll)
from posebridge.formats.rotation.dataset_matrix, so the rendered head has exactly the dataset angles.
"""

from __future__ import annotations

import numpy as np

from posebridge.formats.rotation import dataset_matrix

FLIP_Y = np.diag([1.0, -1.0, 1.0])
NECK_PIVOT = np.array([0.0, -0.8, -0.25])  # top of the neck, model units (head-scan README)
BLEND_TOP = -0.8  # vertices above turn fully with the head
BLEND_BOTTOM = -2.0  # vertices below (shoulders) do not turn
UNIT_M = 0.046  # one model unit is about 4.6 cm


def scan_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation of the head in the scan's (OpenGL) frame for dataset angles in degrees."""
    return FLIP_Y @ dataset_matrix(yaw, pitch, roll) @ FLIP_Y


def neck_weights(y: np.ndarray) -> np.ndarray:
    """How much of the head's rotation each vertex gets from its height: 1 above BLEND_TOP, 0 below
    BLEND_BOTTOM, a smoothstep in between."""
    s = np.clip((np.asarray(y, np.float64) - BLEND_BOTTOM) / (BLEND_TOP - BLEND_BOTTOM), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _axis_angle(rot: np.ndarray) -> tuple[np.ndarray, float]:
    angle = float(np.arccos(np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)))
    if angle < 1e-9:
        return np.array([0.0, 1.0, 0.0]), 0.0
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # 180 degrees: the axis is the eigenvector of eigenvalue 1
        w, v = np.linalg.eigh((rot + np.eye(3)) / 2.0)
        return v[:, int(np.argmax(w))], angle
    return axis / norm, angle


def _rodrigues(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(K, 3, 3) rotations by `angles` (K,) about one unit axis."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3)[None] + s * k[None] + (1.0 - c) * (k @ k)[None]


def pose_vertices(positions: np.ndarray, normals: np.ndarray, rot: np.ndarray,
                  weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions and normals with the head turned by `rot` (scan frame) about NECK_PIVOT; each vertex
    turns by its neck weight's share of the rotation's angle (about the same axis)."""
    pos = np.asarray(positions, np.float64)
    nrm = np.asarray(normals, np.float64)
    w = neck_weights(pos[:, 1]) if weights is None else weights
    axis, angle = _axis_angle(rot)
    out_p, out_n = pos.copy(), nrm.copy()
    full = w >= 1.0
    out_p[full] = (pos[full] - NECK_PIVOT) @ rot.T + NECK_PIVOT
    out_n[full] = nrm[full] @ rot.T
    part = (w > 0.0) & ~full
    if part.any() and angle > 0.0:
        mats = _rodrigues(axis, angle * w[part])
        out_p[part] = np.einsum("kij,kj->ki", mats, pos[part] - NECK_PIVOT) + NECK_PIVOT
        out_n[part] = np.einsum("kij,kj->ki", mats, nrm[part])
    return out_p.astype(np.float32), out_n.astype(np.float32)


def pose_points(points: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Points of the rigid head (above the neck) turned by `rot`: landmarks such as the nose tip."""
    return (np.asarray(points, np.float64) - NECK_PIVOT) @ rot.T + NECK_PIVOT
