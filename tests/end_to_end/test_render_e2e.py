"""End to end on rendered clips of a head that really turns: `posebridge serve` in a subprocess on the
clip in real time, with the default detector (BlazeFace, or its fallback when not pulled), the packaged
model, the Kalman filter and a real ZeroMQ subscriber on 127.0.0.1 (tests/helpers/render_support.py).

- the shipped demo clip (examples/demo/head-turn.mp4, exact truth in head-turn.csv; needs no OpenGL):
  the sign of every axis, `q` against the truth's quaternion, the error per axis, losing the head when
  it leaves the frame and finding it again when it comes back, the demo's score command;
- clips rendered here once per session (need OpenGL; skipped with the reason otherwise): tracking
  through +-80 degrees of yaw without a loss, and `recenter` on a turned head.

The bounds asserted are the ones docs/motion.md states ("What the end-to-end tests hold")."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posebridge.formats.rotation import unity_quaternion
from posebridge.offline.motion import VISIBLE, Tracked, from_messages
from posebridge.offline.render.clip import Truth, read_truth
from posebridge.output.control import request
from tests.helpers.render_support import DEMO_CLIP, DEMO_TRUTH, render_preset, require_gl, serve_clip

AXES = ("yaw", "pitch", "roll")
# docs/motion.md, "What the end-to-end tests hold": the demo clip through the default configuration
DEMO_MAE_MAX = {"yaw": 7.0, "pitch": 4.0, "roll": 4.0}  # raw and filtered, degrees (measured 5.4 2.1 1.9)
Q_ANGLE_MEDIAN_MAX, Q_ANGLE_P90_MAX = 9.0, 14.0  # degrees between q and the truth's (measured 6.0, 9.3)
WITH_POSE_MIN = 0.95  # demo frames with the face wholly in view that have a pose (measured 96.5%)
LOST_WITHIN_S = 0.5 + 0.3  # filter.lost_after_s + slack: nobody in view -> tracked false
FOUND_WITHIN_FRAMES = 15  # back in view -> a pose again within 0.5 s (measured 5 frames)


def angle_between(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    dot = np.abs(np.sum(q1 * q2, axis=-1))
    return 2.0 * np.degrees(np.arccos(np.clip(dot, 0.0, 1.0)))


@pytest.fixture(scope="module")
def demo() -> tuple[list[dict], Tracked, Truth]:
    truth = read_truth(DEMO_TRUTH)
    msgs = serve_clip(DEMO_CLIP)
    return msgs, from_messages(msgs, len(truth), truth.fps), truth


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """Clips rendered on first use, once per test session."""
    folder = tmp_path_factory.mktemp("rendered")
    return lambda preset: render_preset(folder, preset)


def in_view(tracked: Tracked, truth: Truth) -> np.ndarray:
    return (truth.visible >= VISIBLE) & np.isfinite(tracked.raw[:, 0])


def test_every_axis_has_the_truths_sign(demo):
    """Frames where one axis is turned at least 15 degrees and the others under 3: the measured angle
    has the truth's sign on (nearly) every frame and grows with it (slope of raw on truth)."""
    _, tracked, truth = demo
    for k, name in enumerate(AXES):
        others = [j for j in range(3) if j != k]
        m = in_view(tracked, truth) & (np.abs(truth.angles[:, k]) >= 15.0)
        m &= np.abs(truth.angles[:, others]).max(axis=1) < 3.0
        assert m.sum() >= 20, f"{name}: only {m.sum()} single-axis frames"
        for sign in (1.0, -1.0):
            side = m & (np.sign(truth.angles[:, k]) == sign)
            assert side.sum() >= 8, f"{name} {sign:+.0f}: too few frames"
            agree = np.mean(np.sign(tracked.raw[side, k]) == sign)
            assert agree >= 0.95, f"{name} {sign:+.0f}: the measured sign agrees on {agree:.0%} of frames"
            assert np.mean(np.sign(tracked.filtered[side, k]) == sign) >= 0.95, f"{name} filtered"
        slope = np.polyfit(truth.angles[m, k], tracked.raw[m, k], 1)[0]
        assert 0.7 < slope < 1.4, f"{name}: measured/true slope {slope:.2f}"


def test_q_follows_the_truths_quaternion(demo):
    msgs, tracked, truth = demo
    ok = in_view(tracked, truth) & tracked.tracked
    q_truth = unity_quaternion(truth.angles[ok, 0], truth.angles[ok, 1], truth.angles[ok, 2])
    ang = angle_between(tracked.q[ok], q_truth)
    assert np.median(ang) <= Q_ANGLE_MEDIAN_MAX and np.percentile(ang, 90) <= Q_ANGLE_P90_MAX, (
        f"q vs truth: median {np.median(ang):.1f}, p90 {np.percentile(ang, 90):.1f} degrees")
    # q is exactly the published euler in Unity's frame (no recenter, no mirror)
    q_euler = unity_quaternion(tracked.filtered[ok, 0], tracked.filtered[ok, 1], tracked.filtered[ok, 2])
    assert angle_between(tracked.q[ok], q_euler).max() < 1e-4
    assert all(abs(np.linalg.norm(m["q"]) - 1.0) < 1e-9 and m["q"][3] >= 0 for m in msgs)


def test_error_per_axis_within_the_documented_bounds(demo):
    _, tracked, truth = demo
    view = truth.visible >= VISIBLE
    with_pose = in_view(tracked, truth).sum() / view.sum()
    assert with_pose >= WITH_POSE_MIN, f"a pose on {with_pose:.1%} of the frames with the face in view"
    for k, name in enumerate(AXES):
        raw = np.nanmean(np.abs(tracked.raw[view, k] - truth.angles[view, k]))
        filt = np.nanmean(np.abs(tracked.filtered[view, k] - truth.angles[view, k]))
        assert max(raw, filt) <= DEMO_MAE_MAX[name], f"{name}: raw {raw:.1f}, filtered {filt:.1f}"


def test_the_head_leaves_and_is_found_again(demo):
    """Nobody in view for 1 s: the stream says tracked=false within lost_after_s; back in view, a pose
    within FOUND_WITHIN_FRAMES frames and tracked again, near the truth."""
    _, tracked, truth = demo
    gone = np.nonzero(truth.visible <= 0.0)[0]
    assert len(gone) >= 25 and np.all(np.diff(gone) == 1)
    assert np.isnan(tracked.raw[gone, 0]).all(), "a pose measured while nobody is in view"
    first_lost = gone[0] + int(np.argmax(~tracked.tracked[gone] & tracked.received[gone]))
    assert not tracked.tracked[first_lost] and (first_lost - gone[0]) / truth.fps <= LOST_WITHIN_S
    back = gone[-1] + 1 + int(np.argmax(truth.visible[gone[-1] + 1:] >= VISIBLE))
    measured = np.nonzero(np.isfinite(tracked.raw[back:, 0]))[0]
    assert len(measured), "no pose at all after the face came back"
    found = back + int(measured[0])
    assert found - back <= FOUND_WITHIN_FRAMES, f"a pose {found - back} frames after the face is back in view"
    after = slice(found + 3, len(truth))
    assert tracked.tracked[after][tracked.received[after]].all()
    assert np.nanmax(np.abs(tracked.raw[after] - truth.angles[after])) < 10.0


def test_demo_score_prints_the_error_per_axis(demo, tmp_path, capsys):
    from posebridge.offline.demo import main

    msgs, _, _ = demo
    stream = tmp_path / "stream.jsonl"
    stream.write_text("\n".join(json.dumps(m) for m in msgs) + "\n")
    assert main(["score", str(stream)]) == 0  # the shipped truth is the default
    out = capsys.readouterr().out
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in out.splitlines()
            if line.strip().startswith(("raw ", "filtered "))}
    assert set(rows) == {"raw", "filtered"} and all(len(v) == 3 for v in rows.values()), out
    assert all(v <= DEMO_MAE_MAX[a] for vals in rows.values() for a, v in zip(AXES, vals, strict=True))
    assert "yaw" in out and "LOST" in out


def test_tracks_through_80_degrees_of_yaw_without_a_loss(rendered):
    """Slow sweeps to +80 and -80 (60 deg/s at the peak): after the first detection no frame is
    reported lost, a pose on >= 98% of the frames, and the yaw at +-80 reads within 12 degrees."""
    require_gl()
    video, truth = rendered("sweep80")
    tracked = from_messages(serve_clip(video), len(truth), truth.fps)
    first = int(np.argmax(np.isfinite(tracked.raw[:, 0])))
    assert first <= 10
    after = np.arange(len(truth)) > first
    assert tracked.tracked[after & tracked.received].all(), "lost while the head turned"
    with_pose = np.isfinite(tracked.raw[after, 0]).mean()
    assert with_pose >= 0.98, f"a pose on {with_pose:.1%} of the frames"
    for sign in (1.0, -1.0):
        held = np.isclose(truth.angles[:, 0], 80.0 * sign) & np.isfinite(tracked.raw[:, 0])
        assert held.sum() >= 10
        err = np.abs(tracked.raw[held, 0] - 80.0 * sign)
        assert np.median(err) <= 12.0, f"yaw {80 * sign:+.0f} reads {np.median(tracked.raw[held, 0]):.1f}"


def test_recenter_on_a_turned_head(rendered):
    """The head holds yaw 25, pitch 10; a `recenter` request on the control socket makes q the identity
    from then on (within 3 degrees while the head stays), while `euler` stays absolute."""
    require_gl()
    video, truth = rendered("recenter")
    hold = [i for i, k in enumerate(truth.kinds) if k == "hold" and truth.angles[i, 0] == 25.0]
    at = hold[0] + 30  # 1 s into the turned hold
    state: dict = {}

    def on_message(m: dict, control: str | None) -> None:
        state.setdefault("t0", m["t_capture"])
        i = round((m["t_capture"] - state["t0"]) * truth.fps)
        if i >= at and "reply" not in state:
            state["reply"], state["frame"] = request(control, {"cmd": "recenter"}), i

    tracked = from_messages(serve_clip(video, control=True, on_message=on_message), len(truth), truth.fps)
    assert state.get("reply", {}).get("ok"), state
    identity = np.array([0.0, 0.0, 0.0, 1.0])
    before = np.arange(len(truth)) < at - 5
    turned = before & np.isclose(truth.angles[:, 0], 25.0) & tracked.received
    assert angle_between(tracked.q[turned], identity).min() > 20.0
    later = (np.arange(len(truth)) > state["frame"] + 2) & tracked.received
    assert later.sum() >= 60
    off = angle_between(tracked.q[later], identity).max()
    assert off < 3.0, f"after recenter q is up to {off:.1f} degrees from the identity"
    assert (tracked.filtered[later, 0] > 15.0).all()  # euler stays absolute
    neutral = state["reply"]["neutral"]  # the turned head's filtered pose became the neutral one
    assert neutral is not None and neutral[0] > 15.0 and neutral[1] > 3.0, neutral
