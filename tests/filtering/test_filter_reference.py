"""The closed-form Kalman filter (posebridge.filtering.kalman) against the same filter written with
filterpy's general KalmanFilter (the implementation it replaced, kept here as the reference): identical
outputs to 1e-9 on long random sequences with motion, dropouts, lost/restart and yaw wrap-around."""

from __future__ import annotations

import math

import numpy as np
import pytest
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from posebridge.filtering.config import FilterConfig
from posebridge.filtering.kalman import PoseFilter


def _wrap(x: float) -> float:
    return (x + 180.0) % 360.0 - 180.0


class FilterpyReference:
    """The per-angle (angle, rate) filter on filterpy matrices, step for step as documented in
    posebridge/filtering/kalman.py."""

    def __init__(self, c: FilterConfig) -> None:
        self.c, self.kfs, self.t_last, self.t_meas = c, None, None, None
        self.last_d = [0.0, 0.0, 0.0]

    def _r(self, stds):
        s = self.c.meas_scale * np.abs(np.asarray(stds, float))
        return np.maximum(s, self.c.meas_floor_deg) ** 2

    def _predict(self, dt, blind):
        c = self.c
        dt = min(dt, c.max_dt_s)
        if dt <= 0 or self.kfs is None:
            return
        decay = math.exp(-dt / c.rate_decay_s)
        f = np.array([[1.0, c.rate_decay_s * (1 - decay)], [0.0, decay]])
        q = Q_discrete_white_noise(dim=2, dt=dt, var=c.process_noise)
        for i, kf in enumerate(self.kfs):
            kf.predict(F=f, Q=q)
            if blind:
                kf.x[1, 0] *= math.exp(-dt / c.dropout_rate_decay_s)
            if c.wrap[i]:
                kf.x[0, 0] = _wrap(kf.x[0, 0])

    def update(self, t, z, stds):
        c = self.c
        dt = 0.0 if self.t_last is None else max(0.0, t - self.t_last)
        self.t_last = t if self.t_last is None else max(t, self.t_last)
        if z is None:
            if self.kfs is None:
                return None
            if t - self.t_meas > c.lost_after_s:
                return None
            self._predict(dt, True)
            return [kf.x[0, 0] for kf in self.kfs]
        r = self._r(stds)
        if self.kfs is None or t - self.t_meas > c.lost_after_s:
            self.kfs, self.last_d = [], [0.0, 0.0, 0.0]
            for i in range(3):
                kf = KalmanFilter(dim_x=2, dim_z=1)
                kf.x = np.array([[_wrap(z[0]) if i == 0 else z[i]], [0.0]])
                kf.P = np.diag([r[i], c.initial_rate_std**2])
                kf.H = np.array([[1.0, 0.0]])
                self.kfs.append(kf)
            self.t_meas = t
            return [kf.x[0, 0] for kf in self.kfs]
        self._predict(dt, False)
        for i, kf in enumerate(self.kfs):
            x_pred = kf.x[0, 0]
            innovation = _wrap(z[i] - x_pred) if c.wrap[i] else z[i] - x_pred
            s = kf.P[0, 0] + r[i]
            d = innovation / math.sqrt(s)
            beyond = abs(d) > c.gate_sigma
            motion = abs(d) > c.jump_sigma or (beyond and self.last_d[i] * d > c.gate_sigma**2)
            self.last_d[i] = d if beyond else 0.0
            if motion:
                excess = innovation**2 - min(c.gate_sigma, c.jump_sigma) ** 2 * s
                kf.P[0, 0] += excess
                kf.P[1, 1] += excess / c.gate_rate_s**2
            kf.update(np.array([[x_pred + innovation]]), R=np.array([[r[i]]]))
            if c.wrap[i]:
                kf.x[0, 0] = _wrap(kf.x[0, 0])
        self.t_meas = t
        return [kf.x[0, 0] for kf in self.kfs]


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_equals_filterpy(seed):
    rng = np.random.default_rng(seed)
    config = FilterConfig(meas_scale=0.3 if seed % 2 else 0.015, process_noise=[0.1, 5.0, 50.0, 0.01][seed])
    ours, ref = PoseFilter(config), FilterpyReference(config)
    t, angles = 100.0, np.array([170.0, 0.0, 0.0])
    compared = 0
    for step in range(3000):
        t += rng.uniform(0.01, 0.06)
        if rng.random() < 0.01:
            t += rng.uniform(0.3, 1.0)  # dropouts long enough to be lost now and then
        if rng.random() < 0.02:
            angles = angles + rng.normal(0, 25, 3)  # a fast head movement
        angles[0] = _wrap(angles[0] + rng.normal(0, 0.5))
        missing = rng.random() < 0.05
        z = None if missing else angles + rng.normal(0, 0.7, 3)
        stds = rng.uniform(2, 10, 3)
        out = ours.update(t, z, stds)
        want = ref.update(t, z, stds)
        if want is None:
            assert not out.tracked
            continue
        assert out.tracked
        for a, b in zip(out.angles, want, strict=True):
            assert abs(_wrap(a - b)) < 1e-9, (step, out.angles, want)
        compared += 1
    assert compared > 2500
