"""Rotation convention: dataset angles -> Unity quaternions, the shipped test vectors, and the sign
meaning of each angle checked against AFLW2000 landmarks.

Regenerate tests/vectors/rotations.json (only when the convention deliberately changes):
    .venv/bin/python -m tests.formats.test_rotation --write
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posebridge.formats.rotation import (
    canonical,
    dataset_matrix,
    quat_inverse,
    quat_multiply,
    recenter,
    unity_quaternion,
    unity_to_euler,
    wrap_degrees,
)
from tests.helpers import paths

VECTORS = paths.VECTORS / "rotations.json"

# (yaw, pitch, roll, mirror, note)
CASES = [
    (0, 0, 0, False, "neutral: facing the camera"),
    (30, 0, 0, False, "yaw alone: turns to own right"),
    (-30, 0, 0, False, "yaw alone: turns to own left"),
    (90, 0, 0, False, "yaw alone: right profile"),
    (-90, 0, 0, False, "yaw alone: left profile"),
    (179, 0, 0, False, "yaw near the wrap"),
    (-179, 0, 0, False, "yaw near the wrap, other side"),
    (20, 0, 0, False, "yaw alone"),
    (0, 20, 0, False, "pitch alone: looks up"),
    (0, -20, 0, False, "pitch alone: looks down"),
    (0, 89, 0, False, "pitch extreme"),
    (0, -89, 0, False, "pitch extreme"),
    (0, 0, 10, False, "roll alone: tilts towards left shoulder"),
    (0, 0, -10, False, "roll alone: tilts towards right shoulder"),
    (0, 0, 60, False, "roll large"),
    (30, 20, 10, False, "combination"),
    (-45, -15, 25, False, "combination"),
    (60, -30, -20, False, "combination"),
    (-99, 99, -99, False, "extremes of the dataset protocol"),
    (170, -80, 60, False, "extreme: back view"),
    (30, 0, 0, True, "mirror: yaw negated"),
    (0, 20, 0, True, "mirror: pitch unchanged"),
    (0, 0, 10, True, "mirror: roll negated"),
    (30, 20, 10, True, "mirror combination"),
    (-45, -15, 25, True, "mirror combination"),
    (170, -80, 60, True, "mirror extreme"),
]


def build_vectors() -> dict:
    rows = []
    for yaw, pitch, roll, mirror, note in CASES:
        q = unity_quaternion(yaw, pitch, roll, mirror=mirror)
        rot = Rotation.from_quat(q)
        rows.append({
            "yaw": float(yaw), "pitch": float(pitch), "roll": float(roll), "mirror": mirror,
            "q_unity": [round(float(x), 12) for x in q],
            "forward": [round(float(x), 12) for x in rot.apply([0.0, 0.0, 1.0])],
            "up": [round(float(x), 12) for x in rot.apply([0.0, 1.0, 0.0])],
            "note": note,
        })
    return {
        "description": "posebridge rotation test vectors: dataset yaw/pitch/roll degrees -> Unity head-local "
        "quaternion [x, y, z, w] (w >= 0; q and -q are the same rotation). forward/up = q * Vector3.forward "
        "and q * Vector3.up. See docs/protocol.md 'Rotation convention'.",
        "formula": "q = AngleAxis(-pitch, right) * AngleAxis(s*yaw, up) * AngleAxis(s*roll, forward), "
        "s = -1 if mirror else 1",
        "tolerance": 1e-9,
        "vectors": rows,
    }


def test_vectors_file_matches_implementation():
    shipped = json.loads(VECTORS.read_text())
    assert len(shipped["vectors"]) == len(CASES)
    for row in shipped["vectors"]:
        q = unity_quaternion(row["yaw"], row["pitch"], row["roll"], mirror=row["mirror"])
        assert abs(abs(np.dot(q, row["q_unity"])) - 1.0) < 1e-9, row
        np.testing.assert_allclose(q, row["q_unity"], atol=1e-9)
        np.testing.assert_allclose(Rotation.from_quat(q).apply([0, 0, 1]), row["forward"], atol=1e-9)


def test_worked_numbers_from_protocol_doc():
    s15, c15 = np.sin(np.radians(15)), np.cos(np.radians(15))
    np.testing.assert_allclose(unity_quaternion(30, 0, 0), [0, s15, 0, c15], atol=1e-12)
    np.testing.assert_allclose(unity_quaternion(0, 20, 0), [-np.sin(np.radians(10)), 0, 0,
                                                           np.cos(np.radians(10))], atol=1e-12)
    np.testing.assert_allclose(unity_quaternion(0, 0, 10), [0, 0, np.sin(np.radians(5)),
                                                           np.cos(np.radians(5))], atol=1e-12)
    np.testing.assert_allclose(unity_quaternion(30, 20, 10),
                               [-0.144878, 0.268536, 0.038135, 0.951549], atol=1e-6)


def test_meaning_in_unity_frame():
    """Unity: x = head's right, y = up, z = out of the face."""
    fwd = lambda *a, **k: Rotation.from_quat(unity_quaternion(*a, **k)).apply([0, 0, 1])  # noqa: E731
    assert fwd(30, 0, 0)[0] > 0.4  # positive yaw: nose to the head's right
    assert fwd(0, 20, 0)[1] > 0.3  # positive pitch: nose up
    up = Rotation.from_quat(unity_quaternion(0, 0, 10)).apply([0, 1, 0])
    assert up[0] < -0.1  # positive roll: top of the head towards the head's left
    assert fwd(30, 0, 0, mirror=True)[0] < -0.4


def test_mirror_is_reflection_of_x():
    """Selfie mirror = reflecting x: q (x, y, z, w) -> (x, -y, -z, w)."""
    rng = np.random.default_rng(0)
    a = rng.uniform(-90, 90, size=(50, 3))
    q = unity_quaternion(a[:, 0], a[:, 1], a[:, 2])
    qm = unity_quaternion(a[:, 0], a[:, 1], a[:, 2], mirror=True)
    np.testing.assert_allclose(qm, q * np.array([1, -1, -1, 1]), atol=1e-12)


def test_unity_is_dataset_turned_about_z():
    rng = np.random.default_rng(1)
    m = np.diag([-1.0, -1.0, 1.0])
    for yaw, pitch, roll in rng.uniform(-170, 170, size=(20, 3)):
        r_u = Rotation.from_quat(unity_quaternion(yaw, pitch, roll)).as_matrix()
        np.testing.assert_allclose(m @ dataset_matrix(yaw, pitch, roll) @ m, r_u, atol=1e-12)


def test_round_trip_and_vectorised():
    rng = np.random.default_rng(2)
    a = np.column_stack([rng.uniform(-179, 179, 200), rng.uniform(-89, 89, 200), rng.uniform(-179, 179, 200)])
    for mirror in (False, True):
        q = unity_quaternion(a[:, 0], a[:, 1], a[:, 2], mirror=mirror)
        assert q.shape == (200, 4)
        assert np.all(q[:, 3] >= 0)
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(unity_to_euler(q, mirror=mirror), a, atol=1e-7)
        np.testing.assert_allclose(unity_quaternion(*a[7], mirror=mirror), q[7], atol=1e-12)


def test_quaternion_helpers():
    q1 = unity_quaternion(20, 5, -3)
    q2 = unity_quaternion(-10, 30, 8)
    prod = Rotation.from_quat(q1) * Rotation.from_quat(q2)
    np.testing.assert_allclose(canonical(quat_multiply(q1, q2)), canonical(prod.as_quat()), atol=1e-12)
    np.testing.assert_allclose(canonical(quat_multiply(q1, quat_inverse(q1))), [0, 0, 0, 1], atol=1e-12)
    # Recentering on a yawed neutral leaves a pure pitch in the head's own frame.
    neutral = unity_quaternion(20, 0, 0)
    looked_up = quat_multiply(neutral, unity_quaternion(0, 15, 0))
    np.testing.assert_allclose(recenter(looked_up, neutral), unity_quaternion(0, 15, 0), atol=1e-12)
    np.testing.assert_allclose(wrap_degrees([179.0, 181.0, -181.0, 540.0]), [179.0, -179.0, 179.0, -180.0])


@pytest.mark.shared
def test_sign_convention_matches_aflw2000_landmarks(shared):
    """Positive yaw moves the nose to image-left, positive roll turns the eye line clockwise on screen,
    and the composition Rx(p) Ry(-y) Rz(r) explains the 3-D landmarks better than other orders."""
    import scipy.io as sio

    folder = shared("data", "aflw2000-dev")
    mats = sorted(folder.glob("*.mat"))[:300]
    data = []
    for path in mats:
        m = sio.loadmat(path)
        pitch, yaw, roll = np.degrees(m["Pose_Para"][0][:3])
        if max(abs(pitch), abs(yaw), abs(roll)) <= 99:
            data.append((yaw, pitch, roll, m["pt3d_68"].astype(np.float64)))
    assert len(data) > 200
    yaw = np.array([d[0] for d in data])
    roll = np.array([d[2] for d in data])
    nose_dx, eye_angle = [], []
    for _, _, _, pts in data:
        eyes = (pts[:2, 36] + pts[:2, 45]) / 2
        mouth = (pts[:2, 48] + pts[:2, 54]) / 2
        nose_dx.append((pts[0, 30] - eyes[0]) / np.linalg.norm(mouth - eyes))
        eye_angle.append(np.degrees(np.arctan2(pts[1, 45] - pts[1, 36], pts[0, 45] - pts[0, 36])))
    assert np.corrcoef(yaw, nose_dx)[0, 1] < -0.8
    assert np.corrcoef(roll, eye_angle)[0, 1] > 0.5
    # pt3d_68 z grows towards the camera (nose tip in front of the jaw): frame C is x right, y down, z out.
    ref = min(data, key=lambda d: abs(d[0]) + abs(d[1]) + abs(d[2]))
    assert ref[3][2, 30] > ref[3][2, [0, 16]].max()

    def fit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = a - a.mean(0), b - b.mean(0)
        u, _, vt = np.linalg.svd(b.T @ a)
        return u @ np.diag([1, 1, np.sign(np.linalg.det(u @ vt))]) @ vt

    def median_error(matrix) -> float:
        r0 = matrix(*ref[:3])
        errs = []
        for y, p, r, pts in data:
            fitted = fit(ref[3].T, pts.T) @ r0
            errs.append(Rotation.from_matrix(matrix(y, p, r).T @ fitted).magnitude())
        return float(np.degrees(np.median(errs)))

    ours = median_error(dataset_matrix)
    other_order = median_error(
        lambda y, p, r: Rotation.from_euler("ZYX", [r, -y, p], degrees=True).as_matrix())
    pitch_flipped = median_error(lambda y, p, r: dataset_matrix(y, -p, r))
    assert ours < 8.0
    assert ours < other_order and ours < pitch_flipped - 5.0


if __name__ == "__main__":
    if "--write" in sys.argv:
        VECTORS.parent.mkdir(exist_ok=True)
        VECTORS.write_text(json.dumps(build_vectors(), indent=1) + "\n")
        print(f"wrote {VECTORS}")
