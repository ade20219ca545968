"""Pose smoothing: a Kalman filter per angle driven by real capture times, in closed form.

Per angle the state is (angle, rate), the rate decaying towards 0 with `rate_decay_s` (0 = pure
constant velocity). Each frame:
1. predict over the real elapsed time dt (discrete white-noise acceleration with variance
   `process_noise`: Q = q [[dt^4/4, dt^3/2], [dt^3/2, dt^2]], as filterpy's Q_discrete_white_noise);
2. measurement noise from the model's spread: R = max(meas_scale * std, meas_floor_deg)^2, so confident
   frames move the estimate more;
3. the innovation is wrapped into [-180, 180) for yaw, so 179 -> -179 is a 2-degree move;
4. motion gate: an innovation beyond `jump_sigma` standard deviations, or beyond `gate_sigma` on two
   consecutive frames with the same sign, inflates the angle (and rate) variance by the excess, so a
   real head turn is followed at once while still heads stay heavily smoothed (docs/filter.md has the
   measurements and the trade-off);
5. the update uses the Joseph form, as filterpy's KalmanFilter does
   (tests/filtering/test_filter_reference.py checks the two agree to 1e-9 on random sequences).
The 2x2 algebra is written out on Python floats: an update costs far less than filterpy's general
matrices, and the daemon does not pay for importing filterpy and SciPy at start-up (docs/filter.md has
the measurements).

Without a measurement the filter predicts (rate decaying), and after `lost_after_s` without one the
stream is "lost" (the next measurement restarts the filter). `kind="none"` passes raw angles through.
If any state ever becomes non-finite the filter restarts from the next measurement; outputs are always
finite. Recentering is not done here (posebridge.filtering.streams applies the neutral pose).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from posebridge.filtering.config import FilterConfig

Triple = tuple[float, float, float]
ZERO: Triple = (0.0, 0.0, 0.0)
_MIN_VAR = 1e-12  # deg^2: floor of an innovation variance (zero noise settings are allowed)


@dataclass(frozen=True)
class FilterOutput:
    angles: Triple  # filtered [yaw, pitch, roll], degrees (yaw in [-180, 180) when wrapped)
    rates: Triple  # angular rates, deg/s
    tracked: bool  # a pose is being tracked (measured now or predicted through a short dropout)
    lost: bool  # no measurement for longer than lost_after_s (or never)
    stds: Triple = ZERO  # posterior std, degrees
    measured: bool = False  # this update had a measurement
    gated: tuple[bool, bool, bool] = (False, False, False)  # the motion gate fired per angle


def _wrap(x: float) -> float:
    return (x + 180.0) % 360.0 - 180.0


class _Axis:
    """One angle's (angle, rate) state and its 2x2 covariance [[p00, p01], [p01, p11]]."""

    __slots__ = ("x", "r", "p00", "p01", "p11", "last_d")

    def __init__(self, z: float, var_z: float, var_rate: float) -> None:
        self.x, self.r = z, 0.0
        self.p00, self.p01, self.p11 = var_z, 0.0, var_rate
        self.last_d = 0.0  # previous normalised innovation, when beyond the gate

    def predict(self, f01: float, f11: float, q00: float, q01: float, q11: float) -> None:
        """x = F x, P = F P F' + Q with F = [[1, f01], [0, f11]]."""
        p00, p01, p11 = self.p00, self.p01, self.p11
        self.x += f01 * self.r
        self.r *= f11
        self.p00 = p00 + 2.0 * f01 * p01 + f01 * f01 * p11 + q00
        self.p01 = f11 * (p01 + f01 * p11) + q01
        self.p11 = f11 * f11 * p11 + q11

    def update(self, y: float, var_z: float) -> None:
        """Joseph-form update with H = [1, 0] for innovation `y`."""
        p00, p01, p11 = self.p00, self.p01, self.p11
        s = max(p00 + var_z, _MIN_VAR)  # a certain state meeting an exact measurement (both 0)
        k0, k1 = p00 / s, p01 / s
        self.x += k0 * y
        self.r += k1 * y
        a = 1.0 - k0
        self.p00 = a * a * p00 + var_z * k0 * k0
        self.p01 = a * (p01 - k1 * p00) + var_z * k0 * k1
        self.p11 = k1 * k1 * p00 - 2.0 * k1 * p01 + p11 + var_z * k1 * k1

    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.x, self.r, self.p00, self.p01, self.p11))


class PoseFilter:
    """One tracked face's smoother: `update(t, angles | None, stds | None) -> FilterOutput`."""

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()
        self.restarts = 0  # times the state became non-finite and the filter restarted
        self.reset()

    def set(self, **params: object) -> FilterConfig:
        """Change parameters at run time (all-or-nothing, validated); returns the new config."""
        self.config = self.config.replace(**params)
        return self.config

    def reset(self) -> None:
        self._axes: list[_Axis] | None = None
        self._t_last: float | None = None  # time of the last update (measured or not)
        self._t_meas: float | None = None  # time of the last measurement
        self._raw: Triple = ZERO
        self._raw_std: Triple = ZERO

    # -- helpers -------------------------------------------------------------------------------------

    def _meas_var(self, stds: Sequence[float] | None) -> Triple:
        c = self.config
        if stds is None:
            v = max(c.default_meas_deg, c.meas_floor_deg) ** 2
            return (v, v, v)
        out = []
        for s in stds:
            s = c.meas_scale * abs(float(s))
            if not math.isfinite(s):
                s = c.default_meas_deg
            out.append(max(s, c.meas_floor_deg) ** 2)
        return (out[0], out[1], out[2])

    def _start(self, z: Triple, r: Triple) -> None:
        var_rate = self.config.initial_rate_std**2
        self._axes = [_Axis(z[i], r[i], var_rate) for i in range(3)]

    def _predict(self, dt: float, blind: bool) -> None:
        c = self.config
        dt = min(dt, c.max_dt_s)
        if dt <= 0.0 or self._axes is None:
            return
        if c.rate_decay_s > 0:  # Ornstein-Uhlenbeck rate: position gains tau (1 - e^(-dt/tau)) x rate
            decay = math.exp(-dt / c.rate_decay_s)
            f01, f11 = c.rate_decay_s * (1.0 - decay), decay
        else:
            f01, f11 = dt, 1.0
        q = c.process_noise
        q00, q01, q11 = q * dt**4 / 4.0, q * dt**3 / 2.0, q * dt * dt
        blind_decay = math.exp(-dt / c.dropout_rate_decay_s) if blind and c.dropout_rate_decay_s > 0 else 1.0
        for i, ax in enumerate(self._axes):
            ax.predict(f01, f11, q00, q01, q11)
            ax.r *= blind_decay
            if c.wrap[i]:
                ax.x = _wrap(ax.x)

    def _output(self, measured: bool, lost: bool, gated=(False, False, False)) -> FilterOutput:
        axes = self._axes
        if axes is None:
            return FilterOutput(ZERO, ZERO, tracked=False, lost=True, stds=ZERO, measured=measured)
        if not all(ax.finite() for ax in axes):  # never publish a non-finite pose: restart instead
            self.restarts += 1
            self.reset()
            return FilterOutput(ZERO, ZERO, tracked=False, lost=True, stds=ZERO, measured=measured)
        a, b, c = axes
        return FilterOutput((a.x, b.x, c.x), (a.r, b.r, c.r), tracked=not lost, lost=lost,
                            stds=(math.sqrt(max(a.p00, 0.0)), math.sqrt(max(b.p00, 0.0)),
                                  math.sqrt(max(c.p00, 0.0))),
                            measured=measured, gated=tuple(gated))

    # -- public --------------------------------------------------------------------------------------

    def update(self, t: float, angles: Sequence[float] | None = None,
               stds: Sequence[float] | None = None) -> FilterOutput:
        """Advance to capture time `t` (seconds) with a measurement `angles` [yaw, pitch, roll] or None.
        A measurement with a non-finite angle counts as none."""
        c = self.config
        z: Triple | None = None
        if angles is not None:
            z0, z1, z2 = (float(a) for a in angles)
            if math.isfinite(z0) and math.isfinite(z1) and math.isfinite(z2):
                z = (z0, z1, z2)
        if not math.isfinite(t):
            return self._output(measured=False, lost=self._axes is None)
        dt = 0.0 if self._t_last is None else t - self._t_last
        if dt < 0:  # out-of-order timestamp: treat as simultaneous
            dt = 0.0
        self._t_last = t if self._t_last is None else max(t, self._t_last)

        if c.kind == "none":
            if z is None:
                return FilterOutput(self._raw, ZERO, tracked=False, lost=True, stds=self._raw_std,
                                    measured=False)
            self._raw = (_wrap(z[0]), z[1], z[2])
            s = ZERO if stds is None else tuple(abs(float(x)) for x in stds)
            self._raw_std = tuple(x if math.isfinite(x) else 0.0 for x in s)  # type: ignore[assignment]
            self._axes = None
            self._t_meas = t
            return FilterOutput(self._raw, ZERO, tracked=True, lost=False, stds=self._raw_std, measured=True)

        if z is None:
            if self._axes is None or self._t_meas is None:
                return self._output(measured=False, lost=True)
            lost = t - self._t_meas > c.lost_after_s
            if not lost:
                self._predict(dt, blind=True)
            return self._output(measured=False, lost=lost)

        r = self._meas_var(stds)
        if self._axes is None or self._t_meas is None or t - self._t_meas > c.lost_after_s:
            self._start((_wrap(z[0]) if c.wrap[0] else z[0], z[1], z[2]), r)
            self._t_meas = t
            return self._output(measured=True, lost=False)

        self._predict(dt, blind=False)
        gated = [False, False, False]
        gate2 = c.gate_sigma**2
        floor = min(c.gate_sigma, c.jump_sigma) ** 2
        for i, ax in enumerate(self._axes):
            innovation = _wrap(z[i] - ax.x) if c.wrap[i] else z[i] - ax.x
            s = max(ax.p00 + r[i], _MIN_VAR)
            d = innovation / math.sqrt(s)  # normalised innovation
            beyond = abs(d) > c.gate_sigma
            motion = abs(d) > c.jump_sigma or (beyond and ax.last_d * d > gate2)
            ax.last_d = d if beyond else 0.0
            if motion:  # real motion, not noise: inflate the variances by the excess so the filter catches up
                gated[i] = True
                excess = innovation * innovation - floor * s
                ax.p00 += excess
                ax.p11 += excess / c.gate_rate_s**2
            ax.update(innovation, r[i])
            if c.wrap[i]:
                ax.x = _wrap(ax.x)
        self._t_meas = t
        return self._output(measured=True, lost=False, gated=gated)


def create_filter(config: FilterConfig | None = None) -> PoseFilter:
    """A filter for one stream (kind "kalman" or "none", switchable later with `set(kind=...)`)."""
    return PoseFilter(config)
