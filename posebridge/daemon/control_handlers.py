"""The daemon's control commands (docs/protocol.md, "Control"): `status`, `get`, `recenter` and `set`. Each
takes the loop's lock, so a request sees and changes a consistent state between two frames; the
socket and its request parsing are posebridge.output.control."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from posebridge import validation as v
from posebridge.errors import ConfigError

if TYPE_CHECKING:
    from posebridge.daemon.pipeline import Pipeline


def start_control(pipe: Pipeline, address: str, keys=None):
    """Open the control socket for `pipe` (a CURVE server with `keys`) and start serving it."""
    from posebridge.output.control import ControlServer

    handlers = {
        "status": lambda req: status(pipe),
        "get": lambda req: {"params": settable(pipe)},
        "recenter": lambda req: {"neutral": recenter(pipe, reset=bool(req.get("reset", False)))},
        "set": lambda req: set_from_request(pipe, req),
    }
    return ControlServer(handlers, address, keys=keys).start()


def status(pipe: Pipeline) -> dict:
    with pipe.lock:
        src = pipe.source.stats() if pipe.source is not None else {}
        pub = pipe.publisher.stats()
        drops = {"source": int(src.get("dropped", 0) or 0), "publish_refused": int(pub.get("refused", 0)),
                 "no_frame": pipe.no_frame}
        return {
            "fps": pipe.fps(),
            "stages": pipe.timer.summary(),
            "drops": drops["source"] + drops["publish_refused"],
            "drops_detail": drops,
            "frames": pipe.frames,
            "frame_errors": pipe.frame_errors,
            "model": pipe.model_name,
            "source": getattr(pipe.source, "name", str(pipe.cfg.source.spec)),
            "tracked": pipe.streams.tracked,
            "seq": pipe.seq,
            "filter": settable(pipe),
            "mirror": pipe.cfg.publish.mirror,
            "uptime_s": time.monotonic() - pipe.t_start,
            "neutral": pipe.streams.neutral(),
            "source_stats": src,
            "publisher": pub,
            "tracker": pipe.tracker.stats() if pipe.tracker is not None else {},
            "redetect_jumps": pipe.jumps,
            "view": pipe.view.stats() if pipe.view is not None else None,
            "record": {"path": pipe.cfg.record.path, "error": pipe.record_error,
                       "frames": pipe.recorder.frames if pipe.recorder is not None else 0},
        }


def recenter(pipe: Pipeline, reset: bool = False) -> list[float] | None:
    """The current filtered pose of every tracked stream becomes its neutral pose (`reset`: back to
    facing the camera). Only `q` changes; `euler` and `raw` stay absolute. Recorded as an event, which
    `replay --refilter` applies at the same point."""
    with pipe.lock:
        neutral = pipe.streams.recenter(reset=reset)
        pipe.record_event("recenter", neutral=neutral)
        return neutral


def settable(pipe: Pipeline) -> dict:
    """The values `set` changes: every filter parameter and `mirror`."""
    out = pipe.filter_config.to_dict()
    out["mirror"] = pipe.cfg.publish.mirror
    return out


def set_from_request(pipe: Pipeline, req: dict) -> dict:
    params = req.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError("set: 'params' must be a non-empty map of filter parameters (or mirror)")
    set_params(pipe, **params)
    return {"params": settable(pipe)}


def set_params(pipe: Pipeline, **params: object) -> None:
    """Change filter parameters (and `mirror`) at run time, all or nothing; every value is validated
    against its documented range (posebridge.filtering.config) before anything changes."""
    params = dict(params)
    mirror = params.pop("mirror", None)
    if mirror is not None:
        v.boolean("set: mirror", mirror)
    with pipe.lock:
        new_config = pipe.filter_config.replace(**params) if params else pipe.filter_config  # validates
        pipe.filter_config = new_config
        pipe.streams.set_config(new_config)
        if mirror is not None:
            pipe.cfg.publish.mirror = mirror
        pipe.record_event("set", params=settable(pipe))
