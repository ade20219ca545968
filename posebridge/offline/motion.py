"""Scoring a tracker's output against a rendered clip's exact truth (posebridge.offline.render.clip):
the stream aligned frame by frame, then error per kind of motion, lag, step overshoot, jitter on holds
and frames without a pose. Used by the demo's score, the end-to-end tests and benchmarks/bench_motion.py.

Definitions (every angle in degrees, dataset convention):
- evaluated frames: the face wholly inside the frame (`visible` >= VISIBLE);
- MAE: mean |estimate - truth| per axis over a kind's evaluated frames with a measurement, for the raw
  and the filtered angles alike (the same frames, so the two compare); `filtered_mae_dropout`: the
  filtered angles on evaluated frames without a measurement (predicted or held through a dropout);
- lag: the delay d (frames, 0.1 steps) minimising the mean |filtered(t) - truth(t - d)| over the moving
  (slow + fast) frames, all axes together; the raw angles' lag is reported the same way;
- overshoot: after each step (an instant jump of at least 10 degrees on an axis), how far the filtered
  angle passes its settled value (the mean of the step's last 10 frames) in the jump's direction,
  degrees and % of the jump; rise: frames until it first covers 90% of the way;
- jitter: mean |frame-to-frame change| on holds and step holds, leaving out each hold's first
  SETTLE_FRAMES frames;
- without a pose: evaluated frames whose message has no measurement (`raw` nil); evaluated frames
  with no message at all (a real-time run that fell behind skips frames, as with a camera) are counted
  apart as `not_processed`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posebridge.errors import InputFileError

AXES = ("yaw", "pitch", "roll")
VISIBLE = 0.99  # a frame counts when this much of the face's box is inside the frame
SETTLE_FRAMES = 10  # jitter leaves out the first frames of each hold (the filter settling)
MOVING = ("slow", "fast")
STEP_MIN_DEG = 10.0


@dataclass
class Tracked:
    """A tracker's output per clip frame (NaN / False where there was none)."""

    raw: np.ndarray  # (N, 3) the measurement, NaN on frames without one
    filtered: np.ndarray  # (N, 3) the published (filtered) angles, NaN on frames without a message
    q: np.ndarray  # (N, 4) the published quaternion, NaN on frames without a message
    tracked: np.ndarray  # (N,) bool: a message said tracked
    received: np.ndarray  # (N,) bool: a message for this frame arrived

    @staticmethod
    def empty(n: int) -> Tracked:
        return Tracked(np.full((n, 3), np.nan), np.full((n, 3), np.nan), np.full((n, 4), np.nan),
                       np.zeros(n, bool), np.zeros(n, bool))

    def put(self, i: int, msg: dict) -> None:
        """Store one wire map (docs/protocol.md) as frame i."""
        if not 0 <= i < len(self.raw):
            return
        self.received[i] = True
        self.tracked[i] = bool(msg.get("tracked"))
        self.filtered[i] = msg["euler"]
        self.q[i] = msg["q"]
        if msg.get("raw") is not None:
            self.raw[i] = msg["raw"]


def from_messages(messages: list[dict], n: int, fps: float) -> Tracked:
    """Wire maps of one `serve` run on a clip file in real time: frame i was captured at
    t0 + i / fps, t0 the first message's capture time (the source's clock starts at its first frame)."""
    out = Tracked.empty(n)
    if messages:
        t0 = messages[0]["t_capture"]
        for m in messages:
            out.put(int(round((m["t_capture"] - t0) * fps)), m)
    return out


def from_jsonl(path: str | Path, n: int, fps: float) -> Tracked:
    """A stream saved by `posebridge listen --save` (JSON lines)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from None
    try:
        msgs = [json.loads(line) for line in lines if line.strip()]
    except ValueError as exc:
        raise InputFileError(path, f"not JSON lines ({exc})") from None
    if not msgs:
        raise InputFileError(path, "no messages")
    return from_messages(msgs, n, fps)


def from_session(path: str | Path, n: int) -> Tracked:
    """A session recorded by `serve --record` (frame records carry the source's frame index)."""
    from posebridge.formats.session_file import SessionReader

    out = Tracked.empty(n)
    for rec in SessionReader(path).frames():
        if rec.get("messages"):
            out.put(int(rec["index"]), rec["messages"][0])
    return out


def concat(parts: list[tuple[Tracked, object]], pad: int = 30) -> tuple[Tracked, object]:
    """Several (tracked, truth) pairs as one, with `pad` empty frames (kind "pad") between clips so that
    shifts and differences never reach across a boundary."""
    from posebridge.offline.render.clip import Truth

    def cat(arrays, fill):
        out = []
        for a in arrays:
            out += [a, np.full((pad, *a.shape[1:]), fill, dtype=a.dtype)]
        return np.concatenate(out[:-1])

    ts = [p[0] for p in parts]
    us = [p[1] for p in parts]
    tracked = Tracked(*(cat([getattr(t, f) for t in ts], fill) for f, fill in
                        (("raw", np.nan), ("filtered", np.nan), ("q", np.nan), ("tracked", False),
                         ("received", False))))
    kinds: list[str] = []
    for u in us:
        kinds += list(u.kinds) + ["pad"] * pad
    truth = Truth(us[0].fps, cat([u.t for u in us], np.nan), cat([u.angles for u in us], np.nan),
                  cat([u.offset for u in us], np.nan), cat([u.distance_m for u in us], np.nan),
                  cat([u.visible for u in us], 0.0), cat([u.box for u in us], np.nan), kinds[:-pad],
                  cat([u.segments for u in us], -1))
    return tracked, truth


# ------------------------------------------------------------------------------------------- metrics


def _mask(truth, kinds: tuple[str, ...] | None) -> np.ndarray:
    ok = truth.visible >= VISIBLE
    if kinds is not None:
        ok &= np.isin(np.array(truth.kinds), kinds)
    return ok


def _mae(est: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> list[float | None]:
    err = np.abs(est[mask] - truth[mask])
    return [float(np.nanmean(err[:, k])) if np.isfinite(err[:, k]).any() else None for k in range(3)]


def _shifted(values: np.ndarray, delay: float) -> np.ndarray:
    """values(t - delay) at every frame, linear between frames (NaN outside)."""
    idx = np.arange(len(values), dtype=np.float64)
    out = np.empty_like(values)
    for k in range(values.shape[1]):
        col = values[:, k]
        good = np.isfinite(col)
        out[:, k] = np.interp(idx - delay, idx[good], col[good], left=np.nan, right=np.nan)
        # no interpolation across a missing stretch
        src = np.floor(idx - delay).astype(int)
        bad = (src < 0) | (src + 1 >= len(col))
        src = np.clip(src, 0, len(col) - 2)
        bad |= ~(good[src] & good[src + 1])
        out[bad, k] = np.nan
    return out


def lag_frames(est: np.ndarray, truth, kinds: tuple[str, ...] = MOVING, max_lag: float = 10.0,
               step: float = 0.1) -> float | None:
    """The delay (frames) that best aligns `est` with the truth on `kinds` (see the module docstring)."""
    mask = _mask(truth, kinds)
    if mask.sum() < 5:
        return None
    best, best_err = None, np.inf
    for d in np.arange(-3.0, max_lag + step / 2, step):
        ref = _shifted(truth.angles, d)
        err = np.abs(est[mask] - ref[mask])
        if not np.isfinite(err).any():
            continue
        e = float(np.nanmean(err))
        if e < best_err:
            best, best_err = float(round(d, 3)), e
    return best


def _runs(truth, name: str) -> list[tuple[int, int]]:
    """(start, stop) of each motion segment of kind `name` (two steps in a row are two runs: the
    second one's jump is motion, not jitter on a hold)."""
    out, start = [], None
    keys = [*zip(truth.kinds, truth.segments.tolist(), strict=True), ("", -1)]
    for i, (k, seg) in enumerate(keys):
        if start is not None and (k != name or seg != keys[start][1]):
            out.append((start, i))
            start = None
        if k == name and start is None:
            start = i
    return out


def step_response(filtered: np.ndarray, truth) -> dict:
    """Overshoot and 90% rise over every step (see the module docstring) of an estimate (the filtered
    angles, or the raw ones: their overshoot is the measurement's own, e.g. a face box that lags a jump)."""
    over_deg, over_pct, rise = [], [], []
    for a, b in _runs(truth, "step"):
        if a == 0 or b - a < 2 * SETTLE_FRAMES or truth.visible[a - 1:b].min() < VISIBLE:
            continue
        jump = truth.angles[a] - truth.angles[a - 1]
        for k in range(3):
            if abs(jump[k]) < STEP_MIN_DEG:
                continue
            seg = filtered[a:b, k]
            before = filtered[a - 1, k]
            if not np.isfinite(seg).all() or not np.isfinite(before):
                continue
            settled = float(seg[-SETTLE_FRAMES:].mean())
            sign = np.sign(jump[k])
            o = max(0.0, float(((seg - settled) * sign).max()))
            over_deg.append(o)
            over_pct.append(100.0 * o / abs(jump[k]))
            covered = (seg - before) * sign >= 0.9 * abs(settled - before)
            rise.append(float(np.argmax(covered)) if covered.any() else float(b - a))
    if not over_deg:
        return {"steps": 0}
    return {"steps": len(over_deg), "overshoot_deg": float(np.mean(over_deg)),
            "overshoot_deg_max": float(np.max(over_deg)), "overshoot_pct": float(np.mean(over_pct)),
            "rise90_frames": float(np.median(rise))}


def jitter(est: np.ndarray, truth, kinds: tuple[str, ...] = ("hold", "step")) -> list[float | None]:
    """Mean |frame-to-frame change| per axis on still frames after SETTLE_FRAMES (deg/frame)."""
    diffs = []
    for name in kinds:
        for a, b in _runs(truth, name):
            if b - a <= SETTLE_FRAMES + 1 or truth.visible[a:b].min() < VISIBLE:
                continue
            d = np.abs(np.diff(est[a + SETTLE_FRAMES:b], axis=0))
            diffs.append(d[np.isfinite(d).all(axis=1)])
    if not diffs or not len(np.concatenate(diffs)):
        return [None, None, None]
    return [float(v) for v in np.concatenate(diffs).mean(axis=0)]


def gain(est: np.ndarray, truth, axis: int = 0) -> float | None:
    """Least-squares slope of an estimated angle against the truth over evaluated frames (1 = right
    size; the issue's yaw gain)."""
    mask = _mask(truth, None) & np.isfinite(est[:, axis])
    x, y = truth.angles[mask, axis], est[mask, axis]
    if len(x) < 5 or np.ptp(x) < 5:
        return None
    return float(np.polyfit(x, y, 1)[0])


def summarize(tracked: Tracked, truth, kinds: tuple[str, ...] = ("slow", "fast", "step", "hold")) -> dict:
    """Every metric of the module docstring, per kind and over the moving frames."""
    evaluated = _mask(truth, None)
    processed = evaluated & tracked.received
    missing = processed & ~np.isfinite(tracked.raw[:, 0])
    measured = np.isfinite(tracked.raw[:, 0])
    out: dict = {"frames": int(len(truth)), "evaluated": int(evaluated.sum()),
                 "not_processed": int((evaluated & ~tracked.received).sum()),
                 "without_pose": int(missing.sum()),
                 "with_pose_pct": float(100.0 * (1 - missing.sum() / max(1, processed.sum()))),
                 "lost_while_visible": int((evaluated & tracked.received & ~tracked.tracked).sum()),
                 "yaw_gain_raw": gain(tracked.raw, truth), "per_kind": {}}
    groups = {k: (k,) for k in kinds}
    groups["moving"] = MOVING
    for name, group in groups.items():
        m = _mask(truth, group)
        if not m.any():
            continue
        out["per_kind"][name] = {
            "frames": int(m.sum()), "without_pose": int((m & missing).sum()),
            "raw_mae": dict(zip(AXES, _mae(tracked.raw, truth.angles, m), strict=True)),
            "filtered_mae": dict(zip(AXES, _mae(tracked.filtered, truth.angles, m & measured), strict=True)),
            "filtered_mae_dropout": dict(zip(AXES, _mae(tracked.filtered, truth.angles, m & missing),
                                             strict=True)),
        }
    fps = truth.fps
    lag_f, lag_r = lag_frames(tracked.filtered, truth), lag_frames(tracked.raw, truth)
    out["lag"] = {"filtered_frames": lag_f, "raw_frames": lag_r,
                  "filtered_ms": None if lag_f is None else 1000.0 * lag_f / fps,
                  "raw_ms": None if lag_r is None else 1000.0 * lag_r / fps}
    out["step"] = step_response(tracked.filtered, truth)
    out["step_raw"] = step_response(tracked.raw, truth)
    out["jitter_deg_per_frame"] = {"filtered": dict(zip(AXES, jitter(tracked.filtered, truth), strict=True)),
                                   "raw": dict(zip(AXES, jitter(tracked.raw, truth), strict=True))}
    return out
