"""The motion benchmark's scoring (posebridge/offline/motion.py) on hand-made truths: a step that
follows a step is motion, not jitter on a hold."""

from __future__ import annotations

import numpy as np
import pytest

from posebridge.offline.motion import jitter, step_response
from posebridge.offline.render.clip import Truth


def truth_of(kinds: list[str], segments: list[int], yaw: np.ndarray) -> Truth:
    n = len(kinds)
    angles = np.zeros((n, 3))
    angles[:, 0] = yaw
    return Truth(fps=30.0, t=np.arange(n) / 30.0, angles=angles, offset=np.zeros((n, 2)),
                 distance_m=np.full(n, 0.6), visible=np.ones(n), box=np.zeros((n, 4)), kinds=kinds,
                 segments=np.asarray(segments))


def two_steps() -> tuple[Truth, np.ndarray]:
    """Two 30-frame steps in a row (yaw 0 -> 20 -> 40), each estimated exactly but for a 0.1-degree
    wobble on every frame."""
    yaw = np.r_[np.zeros(10), np.full(30, 20.0), np.full(30, 40.0)]
    truth = truth_of(["hold"] * 10 + ["step"] * 60, [0] * 10 + [1] * 30 + [2] * 30, yaw)
    est = truth.angles.copy()
    est[1::2, 0] += 0.1
    return truth, est


def test_jitter_does_not_count_the_jump_of_a_step_that_follows_a_step():
    truth, est = two_steps()
    # each step's frames after the first 10 settle: 19 differences of 0.1 each, per step
    assert jitter(est, truth, kinds=("step",))[0] == pytest.approx(0.1)


def test_every_step_of_a_run_of_steps_is_scored():
    truth, est = two_steps()
    assert step_response(est, truth)["steps"] == 2
