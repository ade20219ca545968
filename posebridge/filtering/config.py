"""Filter parameters with their documented ranges (docs/filter.md). Every way a value arrives (TOML,
`--filter.NAME`, control `set`, a model's calibrated defaults) goes through `FilterConfig.replace`,
which rejects anything non-finite or out of range with one line naming the field, value and range."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from posebridge import validation as v
from posebridge.errors import ConfigError

KINDS = ("kalman", "none")

# name -> (low, high, low end open): the accepted range of each numeric parameter
RANGES: dict[str, tuple[float, float, bool]] = {
    "process_noise": (0.0, 1e6, False),
    "meas_scale": (0.0, 100.0, False),
    "meas_floor_deg": (0.0, 90.0, False),
    "default_meas_deg": (0.0, 90.0, True),
    "gate_sigma": (1.0, 100.0, False),
    "jump_sigma": (1.0, 1000.0, False),
    "gate_rate_s": (0.01, 10.0, False),
    "rate_decay_s": (0.0, 60.0, False),
    "lost_after_s": (0.0, 60.0, False),
    "dropout_rate_decay_s": (0.0, 60.0, False),
    "max_dt_s": (0.0, 10.0, True),
    "initial_rate_std": (0.0, 1000.0, False),
}


@dataclass(frozen=True)
class FilterConfig:
    """Filter parameters (degrees, seconds). All settable at run time (control `set`)."""

    kind: str = "kalman"  # "kalman" or "none" (raw angles, no smoothing)
    process_noise: float = 0.1  # white-noise angular acceleration spectral density, deg^2/s^3
    meas_scale: float = 0.015  # measurement std = meas_scale x the model's per-angle spread...
    meas_floor_deg: float = 0.3  # ...but at least this (deg)
    default_meas_deg: float = 0.5  # measurement std when the caller passes no spreads
    gate_sigma: float = 2.0  # two consecutive same-sign innovations beyond this many std devs = motion
    jump_sigma: float = 6.0  # one innovation beyond this many std devs = motion at once
    gate_rate_s: float = 0.3  # on detected motion, rate variance grows by (excess / gate_rate_s)^2
    rate_decay_s: float = 0.05  # rate reverts to 0 with this time constant (0 = pure constant velocity)
    lost_after_s: float = 0.5  # no measurement for this long -> lost
    dropout_rate_decay_s: float = 0.15  # rate decays with this time constant while predicting blind
    max_dt_s: float = 0.5  # longer gaps between frames are clamped when predicting
    initial_rate_std: float = 1.0  # deg/s, rate uncertainty at (re)start
    wrap: tuple[bool, bool, bool] = field(default=(True, False, False))  # wrap innovation per angle

    def replace(self, **params: object) -> FilterConfig:
        """A copy with `params` changed; unknown names or invalid values raise ConfigError."""
        known = {f.name for f in dataclasses.fields(self)}
        values = dataclasses.asdict(self)
        for name, value in params.items():
            if name not in known:
                names = ", ".join(sorted(known))
                raise ConfigError(f"filter.{v.key(name)}: unknown parameter (known: {names})")
            values[name] = check_param(name, value)
        return FilterConfig(**values)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["wrap"] = list(self.wrap)
        return d


def check_param(name: str, value: object) -> object:
    """One parameter, validated against its documented range."""
    where = f"filter.{name}"
    if name == "kind":
        return v.choice(where, value, KINDS)
    if name == "wrap":
        if not (isinstance(value, (list, tuple)) and len(value) == 3
                and all(isinstance(b, bool) for b in value)):
            raise ConfigError(f"{where}: expected 3 booleans [yaw, pitch, roll], got {v.show(value)}")
        return tuple(value)
    lo, hi, lo_open = RANGES[name]
    return v.number(where, value, lo, hi, lo_open=lo_open)


def config_for_model(meta: object | None, overrides: dict | None = None) -> FilterConfig:
    """Filter settings for a model: its calibrated defaults (model metadata `extra["filter"]`, e.g. the
    `meas_scale` that maps its softmax spread to frame-to-frame noise), then the user's `overrides`
    (config file, CLI, control `set`) on top."""
    calibrated = dict(getattr(meta, "extra", {}) or {}).get("filter", {}) if meta is not None else {}
    return FilterConfig().replace(**calibrated).replace(**(overrides or {}))
