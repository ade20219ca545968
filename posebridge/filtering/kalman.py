"""Pose smoothing: a Kalman filter per angle (filterpy) driven by real capture times.

Per angle the state is (angle, rate), the rate decaying towards 0 with `rate_decay_s` (0 = pure
constant velocity). Each frame:
1. predict over the real elapsed time dt (white-noise acceleration, spectral density `process_noise`);
2. measurement noise from the model's spread: R = max(meas_scale * std, meas_floor_deg)^2, so confident
   frames move the estimate more;
3. the innovation is wrapped into [-180, 180) for yaw, so 179 -> -179 is a 2-degree move;
4. motion gate: an innovation beyond `jump_sigma` standard deviations, or beyond `gate_sigma` on two
   consecutive frames with the same sign, inflates the angle (and rate) variance by the excess, so a
   real head turn is followed at once while still heads stay heavily smoothed (docs/filter.md has the
   measurements and the trade-off).
Without a measurement the filter predicts (rate decaying), and after `lost_after_s` without one the
stream is "lost" (the next measurement restarts the filter). `kind="none"` passes raw angles through.
Recentering is not done here (the pipeline applies the neutral offset).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from posebridge.errors import ConfigError

KINDS = ("kalman", "none")


@dataclass
class FilterConfig:
    """Filter parameters (degrees, seconds). All settable at run time through `PoseFilter.set`."""

    kind: str = "kalman"  # "kalman" or "none" (raw angles, no smoothing)
    process_noise: float = 0.1  # white-noise angular acceleration spectral density, deg^2/s^3
    meas_scale: float = 0.015  # measurement std = meas_scale x the model's per-angle spread...
    meas_floor_deg: float = 0.3  # ...but at least this (deg)
    default_meas_deg: float = 0.5  # measurement std when the caller passes no spreads
    gate_sigma: float = 3.0  # two consecutive same-sign innovations beyond this many std devs = motion
    jump_sigma: float = 6.0  # one innovation beyond this many std devs = motion at once
    gate_rate_s: float = 0.3  # on detected motion, rate variance grows by (excess / gate_rate_s)^2
    rate_decay_s: float = 0.5  # rate reverts to 0 with this time constant (0 = pure constant velocity)
    lost_after_s: float = 0.5  # no measurement for this long -> lost
    dropout_rate_decay_s: float = 0.15  # rate decays with this time constant while predicting blind
    max_dt_s: float = 0.5  # longer gaps between frames are clamped when predicting
    initial_rate_std: float = 1.0  # deg/s, rate uncertainty at (re)start
    wrap: tuple[bool, bool, bool] = field(default=(True, False, False))  # wrap innovation per angle

    def replace(self, **params: object) -> FilterConfig:
        """A copy with `params` changed; unknown names or invalid values raise ConfigError."""
        known = {f.name: f for f in dataclasses.fields(self)}
        values = dataclasses.asdict(self)
        for name, value in params.items():
            if name not in known:
                raise ConfigError(f"filter.{name}: unknown parameter (known: {', '.join(known)})")
            values[name] = _check(name, value, values[name])
        return FilterConfig(**values)


def config_for_model(meta: object | None, overrides: dict | None = None) -> FilterConfig:
    """Filter settings for a model: its calibrated defaults (checkpoint metadata
    `extra["filter"]`, e.g. the `meas_scale` that maps its softmax spread to frame-to-frame noise),
    then the user's `overrides` (config file, CLI, control `set`) on top."""
    calibrated = dict(getattr(meta, "extra", {}) or {}).get("filter", {}) if meta is not None else {}
    return FilterConfig().replace(**calibrated).replace(**(overrides or {}))


def _check(name: str, value: object, current: object) -> object:
    if name == "kind":
        if value not in KINDS:
            raise ConfigError(f"filter.kind: {value!r} is not one of {', '.join(KINDS)}")
        return value
    if name == "wrap":
        if not (isinstance(value, (list, tuple)) and len(value) == 3
                and all(isinstance(v, bool) for v in value)):
            raise ConfigError(f"filter.wrap: expected 3 booleans [yaw, pitch, roll], got {value!r}")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"filter.{name}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and name in ("max_dt_s", "gate_rate_s")):
        raise ConfigError(f"filter.{name}: must be a positive number, got {value!r}")
    return value


@dataclass
class FilterOutput:
    angles: np.ndarray  # filtered [yaw, pitch, roll], degrees (yaw in [-180, 180))
    rates: np.ndarray  # angular rates, deg/s
    tracked: bool  # a pose is being tracked (measured now or predicted through a short dropout)
    lost: bool  # no measurement for longer than lost_after_s (or never)
    stds: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))  # posterior std, degrees
    measured: bool = False  # this update had a measurement
    gated: tuple[bool, bool, bool] = (False, False, False)  # the motion gate fired per angle


def _wrap(x: float) -> float:
    return (x + 180.0) % 360.0 - 180.0


class PoseFilter:
    """One tracked face's smoother: `update(t, angles | None, stds | None) -> FilterOutput`."""

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()
        self.reset()

    def set(self, **params: object) -> FilterConfig:
        """Change parameters at run time (all-or-nothing); returns the new config."""
        self.config = self.config.replace(**params)
        return self.config

    def reset(self) -> None:
        self._kfs: list[KalmanFilter] | None = None
        self._t_last: float | None = None  # time of the last update (measured or not)
        self._t_meas: float | None = None  # time of the last measurement
        self._raw = np.zeros(3)
        self._raw_std = np.zeros(3)
        self._last_d = [0.0, 0.0, 0.0]  # previous normalised innovation per angle, when beyond the gate

    # -- helpers -------------------------------------------------------------------------------------

    def _meas_var(self, stds: np.ndarray | None) -> np.ndarray:
        c = self.config
        if stds is None:
            return np.full(3, max(c.default_meas_deg, c.meas_floor_deg) ** 2)
        s = c.meas_scale * np.abs(np.asarray(stds, dtype=np.float64)).reshape(3)
        s = np.where(np.isfinite(s), s, c.default_meas_deg)
        return np.maximum(s, c.meas_floor_deg) ** 2

    def _start(self, z: np.ndarray, r: np.ndarray) -> None:
        self._kfs = []
        self._last_d = [0.0, 0.0, 0.0]
        for i in range(3):
            kf = KalmanFilter(dim_x=2, dim_z=1)
            kf.x = np.array([[z[i]], [0.0]])
            kf.P = np.diag([r[i], self.config.initial_rate_std**2])
            kf.H = np.array([[1.0, 0.0]])
            self._kfs.append(kf)

    def _predict(self, dt: float, blind: bool) -> None:
        c = self.config
        dt = min(dt, c.max_dt_s)
        if dt <= 0.0 or self._kfs is None:
            return
        if c.rate_decay_s > 0:  # Ornstein-Uhlenbeck rate: position gains tau (1 - e^(-dt/tau)) x rate
            decay = math.exp(-dt / c.rate_decay_s)
            f = np.array([[1.0, c.rate_decay_s * (1.0 - decay)], [0.0, decay]])
        else:
            f = np.array([[1.0, dt], [0.0, 1.0]])
        q = Q_discrete_white_noise(dim=2, dt=dt, var=c.process_noise)  # var * [[dt^3/3, dt^2/2], [., dt]]
        for i, kf in enumerate(self._kfs):
            kf.predict(F=f, Q=q)
            if blind and c.dropout_rate_decay_s > 0:
                kf.x[1, 0] *= math.exp(-dt / c.dropout_rate_decay_s)
            if self.config.wrap[i]:
                kf.x[0, 0] = _wrap(kf.x[0, 0])

    def _output(self, measured: bool, lost: bool, gated=(False, False, False)) -> FilterOutput:
        if self._kfs is None:
            z = np.zeros(3)
            return FilterOutput(z, z.copy(), tracked=False, lost=True, stds=np.zeros(3), measured=measured)
        angles = np.array([kf.x[0, 0] for kf in self._kfs])
        rates = np.array([kf.x[1, 0] for kf in self._kfs])
        stds = np.sqrt(np.array([kf.P[0, 0] for kf in self._kfs]))
        return FilterOutput(angles, rates, tracked=not lost, lost=lost, stds=stds, measured=measured,
                            gated=tuple(gated))

    # -- public --------------------------------------------------------------------------------------

    def update(self, t: float, angles=None, stds=None) -> FilterOutput:
        """Advance to capture time `t` (seconds) with a measurement `angles` [yaw, pitch, roll] or None."""
        c = self.config
        if angles is not None:
            z = np.asarray(angles, dtype=np.float64).reshape(3)
            if not np.all(np.isfinite(z)):
                angles = None
        dt = 0.0 if self._t_last is None else t - self._t_last
        if dt < 0:  # out-of-order timestamp: treat as simultaneous
            dt = 0.0
        self._t_last = t if self._t_last is None else max(t, self._t_last)

        if c.kind == "none":
            if angles is None:
                out = FilterOutput(self._raw.copy(), np.zeros(3), tracked=False, lost=True,
                                   stds=self._raw_std.copy(), measured=False)
                return out
            self._raw = np.array([_wrap(z[0]), z[1], z[2]])
            self._raw_std = np.zeros(3) if stds is None else np.abs(np.asarray(stds, dtype=np.float64))
            self._kfs = None
            self._t_meas = t
            return FilterOutput(self._raw.copy(), np.zeros(3), tracked=True, lost=False,
                                stds=self._raw_std.copy(), measured=True)

        if angles is None:
            if self._kfs is None or self._t_meas is None:
                return self._output(measured=False, lost=True)
            lost = t - self._t_meas > c.lost_after_s
            if not lost:
                self._predict(dt, blind=True)
            return self._output(measured=False, lost=lost)

        r = self._meas_var(stds)
        if self._kfs is None or self._t_meas is None or t - self._t_meas > c.lost_after_s:
            self._start(np.array([_wrap(z[0]) if c.wrap[0] else z[0], z[1], z[2]]), r)
            self._t_meas = t
            return self._output(measured=True, lost=False)

        self._predict(dt, blind=False)
        gated = [False, False, False]
        for i, kf in enumerate(self._kfs):
            x_pred = kf.x[0, 0]
            innovation = _wrap(z[i] - x_pred) if c.wrap[i] else z[i] - x_pred
            s = kf.P[0, 0] + r[i]
            d = innovation / math.sqrt(s)  # normalised innovation
            beyond = abs(d) > c.gate_sigma
            motion = abs(d) > c.jump_sigma or (beyond and self._last_d[i] * d > c.gate_sigma**2)
            self._last_d[i] = d if beyond else 0.0
            if motion:  # real motion, not noise: inflate the variances by the excess so the filter catches up
                gated[i] = True
                excess = innovation**2 - min(c.gate_sigma, c.jump_sigma) ** 2 * s
                kf.P[0, 0] += excess
                kf.P[1, 1] += excess / c.gate_rate_s**2
            kf.update(np.array([[x_pred + innovation]]), R=np.array([[r[i]]]))
            if c.wrap[i]:
                kf.x[0, 0] = _wrap(kf.x[0, 0])
        self._t_meas = t
        return self._output(measured=True, lost=False, gated=gated)


def create_filter(config: FilterConfig | None = None) -> PoseFilter:
    """A filter for one stream (kind "kalman" or "none", switchable later with `set(kind=...)`)."""
    return PoseFilter(config)
