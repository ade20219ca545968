"""What the page may change, through the control socket's own handlers
(posebridge.daemon.control_handlers), so a value from the page is validated exactly as a control `set`
request is: `recenter`, `set` of filter parameters and `mirror`.

`SLIDERS` gives each numeric filter parameter a slider span inside its accepted range
(posebridge.filtering.config.RANGES); the span is only the page's convenience, the accepted range is
the filter's. A request body is a small JSON object; anything else is one line of refusal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from posebridge import validation as v
from posebridge.errors import ConfigError
from posebridge.filtering.config import RANGES

if TYPE_CHECKING:
    from posebridge.daemon.pipeline import Pipeline

MAX_BODY_BYTES = 4096  # as the control socket's MAX_REQUEST_BYTES


@dataclass(frozen=True)
class Slider:
    name: str
    lo: float  # slider span (inside the accepted range)
    hi: float
    log: bool  # logarithmic slider
    help: str


SLIDERS: tuple[Slider, ...] = (
    Slider("process_noise", 1e-3, 100.0, True, "how fast the head may speed up (higher: follows faster, "
           "smooths less)"),
    Slider("meas_scale", 1e-3, 1.0, True, "measurement noise per degree of the model's spread"),
    Slider("meas_floor_deg", 0.01, 10.0, True, "smallest measurement noise, degrees"),
    Slider("default_meas_deg", 0.05, 10.0, True, "measurement noise when the model gives no spread"),
    Slider("gate_sigma", 1.0, 10.0, False, "two innovations beyond this many sigmas = motion"),
    Slider("jump_sigma", 1.0, 30.0, False, "one innovation beyond this many sigmas = motion at once"),
    Slider("gate_rate_s", 0.01, 10.0, True, "how strongly detected motion opens the filter"),
    Slider("rate_decay_s", 0.0, 5.0, False, "turn rate decays with this time constant, s"),
    Slider("lost_after_s", 0.0, 5.0, False, "no face for this long = lost, s"),
    Slider("dropout_rate_decay_s", 0.0, 2.0, False, "turn-rate decay while predicting blind, s"),
    Slider("max_dt_s", 0.05, 2.0, False, "longer gaps between frames are clamped, s"),
    Slider("initial_rate_std", 0.01, 100.0, True, "turn-rate uncertainty at (re)start, deg/s"),
)


def slider_specs() -> list[dict]:
    """The sliders with the accepted range of each (for the page)."""
    out = []
    for s in SLIDERS:
        lo, hi, lo_open = RANGES[s.name]
        out.append({**asdict(s), "range": [lo, hi], "lo_open": lo_open})
    return out


def parse_body(body: bytes) -> dict:
    """A request body -> a JSON object; ConfigError (one line) otherwise."""
    if len(body) > MAX_BODY_BYTES:
        raise ConfigError(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        value = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"request body is not JSON: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"request body must be a JSON object, got {type(value).__name__}")
    return value


def recenter(pipe: Pipeline, req: dict) -> dict:
    from posebridge.daemon import control_handlers

    reset = v.boolean("recenter: reset", req.get("reset", False))
    return {"neutral": control_handlers.recenter(pipe, reset=reset)}


def set_params(pipe: Pipeline, req: dict) -> dict:
    """`{"params": {NAME: VALUE, ...}}`, as the control socket's `set` (all or nothing)."""
    from posebridge.daemon import control_handlers

    return control_handlers.set_from_request(pipe, req)


ACTIONS = {"/api/recenter": recenter, "/api/set": set_params}
