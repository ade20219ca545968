"""Head motion over time: per-frame pose (yaw, pitch, roll in degrees, face-centre offset as frame
fractions, distance in metres) with a label per frame saying what kind of motion it is.

Build one by hand with `Builder` (holds, minimum-jerk moves, instant steps), take a named preset
(`PRESETS`: the demo, the end-to-end tests' clips), or draw a seeded random mix (`random_mix`) of slow
turns, fast turns (peak speed up to 300 deg/s), steps, holds and exits from the frame.

Labels (`KINDS`): hold (still), slow / fast (a turn whose peak angular speed is below / at least
FAST_DEG_S), step (the still frames after an instant jump: the step response), exit / enter (moving out
of / into the frame), out (off the frame).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

FIELDS = ("yaw", "pitch", "roll", "x", "y", "distance_m")
KINDS = ("hold", "slow", "fast", "step", "exit", "out", "enter")
FAST_DEG_S = 120.0  # a turn this fast at its peak counts as fast
MAX_DEG_S = 300.0  # the fastest turn `random_mix` draws
LIMITS = (70.0, 30.0, 35.0)  # random yaw, pitch, roll within +- these (the clips)


@dataclass(frozen=True)
class Pose:
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    x: float = 0.0  # face centre, fraction of the frame width from the centre (+ = right)
    y: float = 0.0  # fraction of the frame height from the centre (+ = down)
    distance_m: float = 0.6

    def array(self) -> np.ndarray:
        return np.array([getattr(self, f) for f in FIELDS], np.float64)


@dataclass
class Trajectory:
    fps: float
    poses: np.ndarray  # (N, 6): FIELDS per frame
    kinds: list[str]  # per frame, one of KINDS
    segments: np.ndarray  # (N,) int: index of the segment each frame belongs to

    def __len__(self) -> int:
        return len(self.poses)

    @property
    def seconds(self) -> float:
        return len(self) / self.fps

    def pose(self, i: int) -> Pose:
        return Pose(*(float(v) for v in self.poses[i]))

    def angular_speed(self) -> np.ndarray:
        """(N,) largest per-axis angular speed reaching each frame, deg/s (0 for the first frame)."""
        d = np.abs(np.diff(self.poses[:, :3], axis=0)).max(axis=1) * self.fps
        return np.concatenate([[0.0], d])


def min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile 0 -> 1 over tau in [0, 1]; its peak slope is 1.875."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau ** 3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)


class Builder:
    """Appends segments; each call starts from where the previous one ended."""

    def __init__(self, fps: float = 30.0, start: Pose | None = None) -> None:
        self.fps = fps
        self.current = start or Pose()
        self._poses: list[np.ndarray] = [self.current.array()]
        self._kinds: list[str] = ["hold"]
        self._segments: list[int] = [0]
        self._segment = 0

    def _frames(self, seconds: float) -> int:
        return max(1, int(round(seconds * self.fps)))

    def _append(self, rows: np.ndarray, kind: str) -> Builder:
        self._segment += 1
        self._poses.extend(rows)
        self._kinds.extend([kind] * len(rows))
        self._segments.extend([self._segment] * len(rows))
        self.current = Pose(*(float(v) for v in rows[-1]))
        return self

    def hold(self, seconds: float, kind: str = "hold") -> Builder:
        return self._append(np.repeat(self.current.array()[None], self._frames(seconds), 0), kind)

    def move(self, seconds: float, kind: str | None = None, **target: float) -> Builder:
        """A minimum-jerk move to `target` (any FIELDS) over `seconds`; labelled slow or fast by its
        peak angular speed unless `kind` is given."""
        goal = replace(self.current, **target).array()
        start = self.current.array()
        n = self._frames(seconds)
        s = min_jerk(np.arange(1, n + 1) / n)
        rows = start[None] + (goal - start)[None] * s[:, None]
        if kind is None:
            peak = 1.875 * float(np.abs(goal[:3] - start[:3]).max()) / (n / self.fps)
            kind = "fast" if peak >= FAST_DEG_S else "slow"
        return self._append(rows, kind)

    def step(self, hold_s: float, **target: float) -> Builder:
        """Jump to `target` at the next frame and stay there for `hold_s` (labelled step)."""
        self.current = replace(self.current, **target)
        return self.hold(hold_s, kind="step")

    def build(self) -> Trajectory:
        return Trajectory(self.fps, np.array(self._poses), list(self._kinds), np.array(self._segments))


# ------------------------------------------------------------------------------------------ presets


def demo(fps: float = 30.0) -> Trajectory:
    """The shipped demo clip (10 s): yaw +-45, pitch +-20, roll +-25, a mixed turn, then the head slides
    out of the frame (the stream reports LOST) and comes back."""
    b = Builder(fps, Pose(distance_m=0.7)).hold(0.3)
    b.move(0.8, yaw=45).move(1.3, yaw=-45).move(0.7, yaw=0)
    b.move(0.6, pitch=20).move(0.8, pitch=-20).move(0.6, pitch=0)
    b.move(0.6, roll=25).move(0.8, roll=-25).move(0.6, roll=0)
    b.move(0.7, yaw=30, pitch=12, roll=12).move(0.6, kind="exit", yaw=0, pitch=0, roll=0, x=1.0)
    b.hold(1.0, kind="out").move(0.5, kind="enter", x=0.0).hold(0.3)
    return b.build()


def signs(fps: float = 30.0) -> Trajectory:
    """One axis at a time, each held for 1 s: yaw +-30, pitch +-20, roll +-20 (the sign tests)."""
    b = Builder(fps).hold(1.0)
    for axis, size in (("yaw", 30.0), ("pitch", 20.0), ("roll", 20.0)):
        for sign in (1.0, -1.0):
            b.move(0.5, **{axis: sign * size}).hold(1.0).move(0.5, **{axis: 0.0})
    return b.hold(0.5).build()


def sweep80(fps: float = 30.0) -> Trajectory:
    """Slow yaw sweeps to +80 and -80 degrees and back (60 deg/s at the peak)."""
    b = Builder(fps).hold(0.5)
    b.move(2.5, yaw=80).hold(0.5).move(5.0, yaw=-80).hold(0.5).move(2.5, yaw=0).hold(0.5)
    return b.build()


def leave(fps: float = 30.0) -> Trajectory:
    """The head slides out of the frame to the right, stays out 1.5 s, comes back and holds."""
    b = Builder(fps).hold(1.0)
    b.move(0.8, kind="exit", x=1.0).hold(1.5, kind="out").move(0.8, kind="enter", x=0.0).hold(2.0)
    return b.build()


def recenter(fps: float = 30.0) -> Trajectory:
    """Turn to yaw 25, pitch 10 and hold there for 4 s (recenter on a turned head)."""
    return Builder(fps).hold(0.5).move(0.7, yaw=25.0, pitch=10.0).hold(4.0).build()


PRESETS: dict[str, Callable[[float], Trajectory]] = {
    "demo": demo, "signs": signs, "sweep80": sweep80, "leave": leave, "recenter": recenter,
}


# --------------------------------------------------------------------------------------- random mix

MIX_KINDS = ("slow", "fast", "step", "hold", "leave")


def _target(rng: np.random.Generator, current: Pose, axes: int, limits: tuple[float, float, float],
            min_change: float) -> dict[str, float]:
    """New angles for 1-3 random axes, each within its limit and the largest change >= min_change."""
    names = ("yaw", "pitch", "roll")
    chosen = rng.choice(3, size=axes, replace=False)
    for _ in range(50):
        out = {names[i]: float(rng.uniform(-limits[i], limits[i])) for i in chosen}
        if max(abs(v - getattr(current, k)) for k, v in out.items()) >= min_change:
            return out
    i = int(chosen[0])  # fall back: the far side of the first axis
    return {names[i]: -np.sign(getattr(current, names[i]) or 1.0) * limits[i]}


def _step_target(rng: np.random.Generator, current: Pose, axes: int,
                 limits: tuple[float, float, float]) -> dict[str, float]:
    """A jump of 15-40 degrees on 1-2 random axes, kept within the limits (it turns back at a limit)."""
    names = ("yaw", "pitch", "roll")
    out = {}
    for i in rng.choice(3, size=axes, replace=False):
        now = getattr(current, names[i])
        size = float(rng.uniform(15.0, 40.0)) * float(rng.choice([-1.0, 1.0]))
        if abs(now + size) > limits[i]:
            size = -size
        out[names[i]] = float(np.clip(now + size, -limits[i], limits[i]))
    return out


def random_mix(seed: int, seconds: float = 15.0, fps: float = 30.0, kinds: tuple[str, ...] = MIX_KINDS[:4],
               limits: tuple[float, float, float] = LIMITS, max_speed: float = MAX_DEG_S) -> Trajectory:
    """A seeded mix of `kinds` (any of MIX_KINDS) lasting `seconds` (the last segment may run over by a
    few seconds), starting and ending still and frontal. Slow turns peak at 30-90 deg/s, fast ones at
    150-`max_speed`; steps jump 15-40 degrees and hold 1 s; holds last 0.6-1.5 s; a leave slides out of
    the frame, stays out 0.5-1 s and comes back. Slow turns also drift the head a little sideways and in
    depth."""
    for k in kinds:
        if k not in MIX_KINDS:
            raise ValueError(f"motion kind {k!r}: expected some of {', '.join(MIX_KINDS)}")
    rng = np.random.default_rng(seed)
    b = Builder(fps).hold(0.6)
    weights = {"slow": 3.0, "fast": 2.0, "step": 1.5, "hold": 1.5, "leave": 0.5}
    p = np.array([weights[k] for k in kinds])
    last = ""
    while len(b._poses) < (seconds - 1.2) * fps:
        kind = str(rng.choice(kinds, p=p / p.sum()))
        if kind == last and kind in ("hold", "leave"):
            continue
        last = kind
        if kind == "hold":
            b.hold(rng.uniform(0.6, 1.5))
        elif kind == "slow":
            target = _target(rng, b.current, int(rng.integers(1, 4)), limits, 15.0)
            change = max(abs(v - getattr(b.current, k)) for k, v in target.items())
            drift = {"x": float(rng.uniform(-0.12, 0.12)), "y": float(rng.uniform(-0.08, 0.08)),
                     "distance_m": float(rng.uniform(0.5, 0.8))}
            b.move(max(0.5, 1.875 * change / rng.uniform(30.0, 90.0)), kind="slow", **target, **drift)
        elif kind == "fast":
            target = _target(rng, b.current, int(rng.integers(1, 3)), limits, 30.0)
            change = max(abs(v - getattr(b.current, k)) for k, v in target.items())
            frames = int(np.ceil(1.875 * change / rng.uniform(150.0, max_speed) * fps))
            while 1.875 * change * fps / frames > max_speed:  # rounding must not exceed the limit
                frames += 1
            b.move(frames / fps, kind="fast", **target)
        elif kind == "step":
            b.step(1.0, **_step_target(rng, b.current, int(rng.integers(1, 3)), limits))
        elif kind == "leave":
            side = float(rng.choice([-1.0, 1.0]))
            back = b.current.x
            b.move(rng.uniform(0.6, 1.0), kind="exit", x=side * 1.0)
            b.hold(rng.uniform(0.5, 1.0), kind="out")
            b.move(rng.uniform(0.6, 1.0), kind="enter", x=back)
    b.move(0.8, kind="slow", yaw=0.0, pitch=0.0, roll=0.0, x=0.0, y=0.0).hold(0.6)
    return b.build()


