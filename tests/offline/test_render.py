"""The renderer (posebridge.offline.render): the head scan's file, the head turning on its neck in the
project's angle conventions, trajectories, truth, reproducibility and its one-line errors.

The sign tests render the scan with coloured markers painted into its texture (the nose tip, two points
beside the eyes) and find them in the image: yaw +30 moves the nose to the image's left, pitch +20 raises
it, roll +10 turns the face clockwise on screen, and every marker lands where the truth's projection
says (which also checks the texture's (u, 1 - v) flip). Tests that draw skip with the one-line reason
when no OpenGL context can be made here (render_support.gl_skip_reason)."""

from __future__ import annotations

import csv
import math

import cv2
import numpy as np
import pytest

from posebridge.errors import InputFileError
from posebridge.formats.rotation import dataset_matrix
from posebridge.offline.render.camera import FACE_CENTRE, Camera
from posebridge.offline.render.clip import Truth, read_truth, truth_for, write_clip, write_truth
from posebridge.offline.render.effects import Look
from posebridge.offline.render.gl import Light
from posebridge.offline.render.mesh import HeadMesh, default_assets, load_glb, load_head
from posebridge.offline.render.posing import (
    BLEND_BOTTOM,
    BLEND_TOP,
    NECK_PIVOT,
    pose_points,
    pose_vertices,
    scan_rotation,
)
from posebridge.offline.render.trajectory import MAX_DEG_S, MIX_KINDS, PRESETS, Builder, random_mix
from tests.helpers.render_support import require_gl

CAMERA = Camera()
FLAT = Light(colour=(0.0, 0.0, 0.0), ambient=(1.0, 1.0, 1.0), specular=0.0)  # texture colours as they are
MARKERS = {"nose": (255, 0, 0), "left": (0, 255, 0), "right": (0, 0, 255)}  # RGB; left/right as seen


@pytest.fixture(scope="module")
def head() -> HeadMesh:
    return load_head()


def landmarks(head: HeadMesh) -> dict[str, int]:
    """Vertex indices: the nose tip (the most forward point) and one point on each cheek below the
    outer eye corners (left/right as seen in the image: -x / +x)."""
    p = head.positions
    out = {"nose": int(np.argmax(p[:, 2]))}
    for name, side in (("left", -1.0), ("right", 1.0)):
        x = p[out["nose"], 0] + 0.8 * side
        target = np.array([x, 0.9, p[(np.abs(p[:, 0] - x) < 0.1) & (np.abs(p[:, 1] - 0.9) < 0.1), 2].max()])
        out[name] = int(np.argmin(np.linalg.norm(p - target, axis=1)))
    return out


@pytest.fixture(scope="module")
def marked(head) -> tuple[HeadMesh, dict[str, int]]:
    """The head with a grey texture and three coloured discs painted at the landmarks' UVs, read at
    (u, 1 - v) as the renderer does."""
    marks = landmarks(head)
    tex = np.full_like(head.texture, 128)
    h, w = tex.shape[:2]
    for name, idx in marks.items():
        u, v = head.uvs[idx]
        cv2.circle(tex, (int(round(u * w)), int(round((1.0 - v) * h))), 7, MARKERS[name], -1)
    return HeadMesh(head.positions, head.normals, head.uvs, head.indices, tex), marks


def render(mesh: HeadMesh, yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    from posebridge.offline.render.gl import HeadRenderer

    with HeadRenderer(mesh, CAMERA) as r:
        return r.render(yaw, pitch, roll, light=FLAT)


def find(rgba: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Centroid (x, y) of the pixels of a marker colour."""
    diff = np.abs(rgba[..., :3].astype(int) - np.array(colour)).max(axis=2)
    ys, xs = np.nonzero((diff < 60) & (rgba[..., 3] > 250))
    assert len(xs) >= 4, f"marker {colour} not visible"
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def predicted(mesh: HeadMesh, idx: int, yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    eye = pose_points(mesh.positions[idx][None], scan_rotation(yaw, pitch, roll))
    return CAMERA.project(eye + CAMERA.placement((0.0, 0.0), 0.6))[0]


# -------------------------------------------------------------------------------- without OpenGL


def test_glb_is_read_with_numpy():
    pos, nrm, uv, idx = load_glb(default_assets()[0])
    assert pos.shape == (9279, 3) and nrm.shape == (9279, 3) and uv.shape == (9279, 2)
    assert len(idx) == 3 * 17684 and idx.max() == 9278
    assert np.allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=1e-3)


TRUNCATED = b"glTF\x02\x00\x00\x00\xff\xff\x00\x00" + b"\0" * 8  # declares 65,535 bytes, has 20


@pytest.mark.parametrize("data, problem", [(b"not a model", "no glTF magic"), (TRUNCATED, "truncated")])
def test_bad_glb_is_one_line(tmp_path, data, problem):
    path = tmp_path / "bad.glb"
    path.write_bytes(data)
    with pytest.raises(InputFileError) as err:
        load_glb(path)
    assert problem in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_scan_rotation_is_the_dataset_rotation_in_gl_axes():
    flip = np.diag([1.0, -1.0, 1.0])
    for angles in [(30, 0, 0), (0, 20, 0), (0, 0, 10), (-40, 15, 25)]:
        assert np.allclose(scan_rotation(*angles), flip @ dataset_matrix(*angles) @ flip)
    # yaw +30: the nose (+z) swings to -x (image left); pitch +20: up (+y); roll +10: +x side goes down
    assert (scan_rotation(30, 0, 0) @ [0, 0, 1])[0] < -0.49
    assert (scan_rotation(0, 20, 0) @ [0, 0, 1])[1] > 0.34
    assert (scan_rotation(0, 0, 10) @ [1, 0, 0])[1] < -0.17


def test_only_the_head_turns(head):
    rot = scan_rotation(35, -20, 15)
    pos, nrm = pose_vertices(head.positions, head.normals, rot)
    p = head.positions.astype(np.float64)
    below = p[:, 1] <= BLEND_BOTTOM
    above = p[:, 1] >= BLEND_TOP
    assert below.sum() > 500 and above.sum() > 5000
    assert np.allclose(pos[below], p[below], atol=1e-5)  # shoulders stay put
    assert np.allclose(pos[above], (p[above] - NECK_PIVOT) @ rot.T + NECK_PIVOT, atol=1e-4)  # rigid head
    assert np.allclose(nrm[above], head.normals[above].astype(np.float64) @ rot.T, atol=1e-4)
    mid = ~below & ~above  # the neck bends part of the way
    moved = np.linalg.norm(pos[mid] - p[mid], axis=1)
    assert (moved > 0).all() and moved.max() < np.linalg.norm(pos[above] - p[above], axis=1).max()


def test_trajectories_are_seeded_and_within_limits():
    a, b, c = random_mix(7, 20.0), random_mix(7, 20.0), random_mix(8, 20.0)
    assert np.array_equal(a.poses, b.poses) and a.kinds == b.kinds
    assert not np.array_equal(a.poses[: len(c)], c.poses[: len(a)])
    for seed in range(6):
        t = random_mix(seed, 20.0, kinds=MIX_KINDS)
        assert 19.0 <= t.seconds <= 26.0  # the last segment may run over
        moving = np.array([k not in ("step",) for k in t.kinds])
        speed = t.angular_speed()
        assert speed[moving].max() <= MAX_DEG_S + 1e-6
        assert np.abs(t.poses[:, 0]).max() <= 70.0 and np.abs(t.poses[:, 1]).max() <= 30.0
        assert np.abs(t.poses[:, 2]).max() <= 35.0
        assert {"slow", "fast"} <= set(t.kinds)
    mixes = [random_mix(s, 30.0) for s in range(4)]
    fast = np.concatenate([m.angular_speed()[np.array(m.kinds) == "fast"] for m in mixes])
    assert fast.max() > 200.0  # fast turns do reach towards 300 deg/s


def test_builder_moves_steps_and_holds():
    t = Builder(30.0).hold(0.5).move(1.0, yaw=30).step(1.0, pitch=20).move(0.1, roll=25).build()
    assert t.kinds[1:16] == ["hold"] * 15 and t.kinds[16:46] == ["slow"] * 30
    assert t.kinds[46:76] == ["step"] * 30 and t.kinds[-3:] == ["fast"] * 3
    assert tuple(t.poses[45, :3]) == (30.0, 0.0, 0.0) and tuple(t.poses[46, :3]) == (30.0, 20.0, 0.0)
    assert set(PRESETS) >= {"demo", "sweep80", "recenter"}


def test_truth_knows_when_the_face_is_in_view(head, tmp_path):
    t = Builder(30.0).hold(0.1).move(1.0, kind="exit", x=1.0).build()
    truth = truth_for(t, CAMERA, head)
    assert truth.visible[0] == 1.0 and truth.visible[-1] == 0.0
    x0, y0, x1, y1 = truth.box[0]
    centre = CAMERA.project(FACE_CENTRE + CAMERA.placement((0, 0), 0.6))[0]
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1 and 100 < x1 - x0 < 200
    write_truth(tmp_path / "t.csv", truth)
    back = read_truth(tmp_path / "t.csv")
    assert isinstance(back, Truth) and back.fps == 30.0 and back.kinds == truth.kinds
    assert np.allclose(back.angles, truth.angles, atol=1e-3)
    assert np.allclose(back.visible, truth.visible, atol=1e-3)
    with open(tmp_path / "t.csv") as f:
        assert next(csv.reader(f))[:5] == ["frame", "t", "yaw_deg", "pitch_deg", "roll_deg"]
    (tmp_path / "bad.csv").write_text("frame,t\n0,0\n")
    with pytest.raises(InputFileError, match="not a rendered clip's truth CSV"):
        read_truth(tmp_path / "bad.csv")


def test_no_gl_context_is_one_line(monkeypatch, tmp_path, capsys):
    moderngl = pytest.importorskip("moderngl")

    def broken(**kwargs):
        raise Exception("eglInitialize failed\n  (0x3001)\nmore text")

    monkeypatch.setattr(moderngl, "create_standalone_context", broken)
    from posebridge.offline.render.__main__ import main
    from posebridge.offline.render.gl import RenderUnavailable, create_context

    with pytest.raises(RenderUnavailable) as err:
        create_context()
    text = str(err.value)
    assert "\n" not in text and "eglInitialize failed" in text and "libegl-mesa0" in text
    assert main(["frame", str(tmp_path / "f.png")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posebridge render: error: no OpenGL context"), lines


def test_cli_bad_input_is_one_line(capsys):
    from posebridge.offline.render.__main__ import main

    assert main(["clip", "x.mp4", "--mix", "10", "--kinds", "slow,wobble"]) == 2
    assert main(["clip", "x.mp4", "--preset", "demo", "--size", "640by480"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "--kinds" in lines[0] and "--size" in lines[1]


# ----------------------------------------------------------------------------------- with OpenGL


def nose_straight_and_turned(marked, **angles: float) -> tuple[np.ndarray, np.ndarray]:
    """The nose marker's image position with the head straight and turned by `angles` (yaw, pitch,
    roll in degrees); the turned one must land on the truth's projection of the nose (2 px)."""
    require_gl()
    mesh, marks = marked
    front, turned = find(render(mesh), MARKERS["nose"]), find(render(mesh, **angles), MARKERS["nose"])
    assert np.allclose(turned, predicted(mesh, marks["nose"], **angles), atol=2.0)
    return front, turned


def test_yaw_plus_30_moves_the_nose_to_the_image_left(marked):
    front, turned = nose_straight_and_turned(marked, yaw=30)
    assert turned[0] < front[0] - 30 and abs(turned[1] - front[1]) < 8


def test_pitch_plus_20_raises_the_nose(marked):
    front, up = nose_straight_and_turned(marked, pitch=20)
    assert up[1] < front[1] - 15 and abs(up[0] - front[0]) < 3


def test_roll_plus_10_turns_the_face_clockwise_on_screen(marked):
    require_gl()
    mesh, marks = marked

    def eye_line(img):  # angle of the line left -> right marker, image y down: + = clockwise
        (lx, ly), (rx, ry) = find(img, MARKERS["left"]), find(img, MARKERS["right"])
        assert lx < rx
        return math.degrees(math.atan2(ry - ly, rx - lx))

    front, rolled = eye_line(render(mesh)), eye_line(render(mesh, roll=10))
    assert abs(front) < 1.0 and 8.5 < rolled - front < 11.5
    img = render(mesh, roll=10)
    for name in ("left", "right"):  # the eye on the image's right drops, the left one rises
        assert np.allclose(find(img, MARKERS[name]), predicted(mesh, marks[name], roll=10), atol=2.0)


def test_mixed_pose_markers_land_on_the_truths_projection(marked):
    require_gl()
    mesh, marks = marked
    angles = (-20.0, 12.0, -18.0)
    img = render(mesh, *angles)
    for name in ("nose", "left", "right"):
        assert np.allclose(find(img, MARKERS[name]), predicted(mesh, marks[name], *angles), atol=2.5), name


def test_shoulders_stay_while_the_head_turns(head):
    require_gl()
    front, turned = render(head)[..., 3] > 128, render(head, yaw=45, pitch=15)[..., 3] > 128
    shoulder_row = int(CAMERA.project(np.array([0.0, -2.6, 0.0]) + CAMERA.placement((0, 0), 0.6))[0][1])
    a, b = front[shoulder_row:], turned[shoulder_row:]
    assert a.sum() > 5000 and (a & b).sum() / (a | b).sum() > 0.98
    assert (front[:shoulder_row] ^ turned[:shoulder_row]).sum() > 3000  # the head moved


def test_a_seed_reproduces_a_clip_exactly(tmp_path, head):
    require_gl()
    traj = Builder(30.0).move(0.2, yaw=20, x=0.1).build()
    look = Look.random(np.random.default_rng((5, 1)))
    t1 = write_clip(tmp_path / "a.mp4", traj, look, seed=5, truth_path=tmp_path / "a.csv", head=head)
    write_clip(tmp_path / "b.mp4", traj, look, seed=5, truth_path=tmp_path / "b.csv", head=head)
    write_clip(tmp_path / "c.mp4", traj, look, seed=6, head=head)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.mp4").read_bytes() != (tmp_path / "c.mp4").read_bytes()  # noise differs
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == len(t1) == len(traj) == 7
