"""Daemon configuration: one dataclass per TOML section, loaded by posebridge.tomlconfig (the loader
training shares), overridden by CLI flags, then range-checked by `validate`.

Every key that can appear in `posebridge.toml` is a field below (see examples/posebridge.toml). Unknown
keys raise ConfigError naming the key path (`filter.proces_noise: unknown key`). The `[filter]` table is
checked against posebridge.filtering.config and `[faces.options]` is passed to the detector as keyword
arguments (which it checks).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from posebridge import validation as v
from posebridge.errors import ConfigError
from posebridge.filtering.position import PositionConfig, validate_position
from posebridge.tomlconfig import apply, apply_overrides, load_toml, parse_value, set_option, tomllib

__all__ = ["ServeConfig", "apply_overrides", "load_config", "parse_value", "set_option", "tomllib",
           "validate"]

DEFAULT_PUB = "tcp://127.0.0.1:5570"
DEFAULT_CONTROL = "tcp://127.0.0.1:5571"
DEFAULT_VIEW = "127.0.0.1:8570"


@dataclass
class SourceConfig:
    spec: str = "0"  # camera index, /dev/videoN, video file, image folder or session file
    realtime: bool = True  # files: pace by their fps (False = as fast as possible, `--fast`)
    loop: bool = False  # files: start again at the end (a video or folder shown forever, e.g. with --view)


@dataclass
class ModelConfig:
    name: str = ""  # name (whenet, posebridge-small), path to a .pt, or "" for the default model
    device: str = "auto"  # auto | cpu | cuda | cuda:N | tensorrt
    backend: str = "onnx"  # onnx | onnx-int8 | torch | torch-bf16 | torch-compile (inference/backends.py)
    threads: int = 1  # threads for inference and OpenCV (0 = libraries' defaults: all cores); docs/speed.md
    zooms: list[float] = field(default_factory=list)  # test-time zoom views ([] = the model's own; [1.0])
    flip: str = "model"  # mirror image: model (its own: both or off) | both | alternate | off


@dataclass
class FacesConfig:
    detector: str = "default"
    options: dict[str, Any] = field(default_factory=dict)  # detector keyword arguments
    redetect_every: int = 10  # run the detector every N frames, track the box in between
    detect_in_thread: bool = True  # the detector runs in a worker thread and never holds a frame
    tracker: dict[str, Any] = field(default_factory=dict)  # more FaceTracker keyword arguments
    all_faces: bool = False  # publish every face (one message per face) instead of the primary one
    jump_ratio: float = 1.6  # re-detect when the pose spread exceeds jump_ratio x its running mean...
    jump_min_deg: float = 4.0  # ...and exceeds it by at least this many degrees


@dataclass
class PublishConfig:
    address: str = DEFAULT_PUB  # ZeroMQ PUB bind address
    hwm: int = 100  # send high-water mark (messages queued per subscriber before dropping)
    mirror: bool = False  # selfie view: negate yaw and roll in `q` (see docs/protocol.md)


@dataclass
class ControlConfig:
    enabled: bool = True
    address: str = DEFAULT_CONTROL  # ZeroMQ REP bind address


@dataclass
class RecordConfig:
    path: str = ""  # session file to write ("" = no recording)
    video: bool = False  # also store every frame as JPEG in the session (large; lets replay show video)
    overwrite: bool = False  # replace an existing session file (otherwise an existing file is an error)


@dataclass
class SecurityConfig:
    """CURVE encryption + client authentication for the PUB and control sockets
    (posebridge.output.security; `posebridge keys DIR` makes the folder)."""

    keys: str = ""  # key folder ("" = plain TCP: keep the sockets on 127.0.0.1)


@dataclass
class RunConfig:
    max_frames: int = 0  # stop after N frames (0 = until the source ends or Ctrl-C)
    wait_subscriber_s: float = 0.0  # wait up to this long for a first subscriber before reading frames
    log_every_s: float = 5.0  # log fps and latency every N seconds (0 = never)


@dataclass
class VmcConfig:
    """VMC protocol (OSC over UDP) output (posebridge.output.vmc, docs/interop.md)."""

    address: str = ""  # HOST:PORT to send to ("" = off); PORT defaults to 39539, HOST to 127.0.0.1
    position_to: str = "root"  # where the head position goes: root (/VMC/Ext/Root/Pos), head (bone), none
    position_scale: float = 1.0  # multiplier on the head position before it is sent
    head_local_position: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.0])  # Head bone, metres


@dataclass
class OpentrackConfig:
    """opentrack "UDP over network" output (posebridge.output.opentrack, docs/interop.md)."""

    address: str = ""  # HOST:PORT to send to ("" = off); PORT defaults to 4242, HOST to 127.0.0.1


@dataclass
class ViewConfig:
    """The live page in a browser (posebridge.view, docs/daemon.md "The live page")."""

    enabled: bool = False  # serve the page (`serve --view [HOST:]PORT`)
    address: str = DEFAULT_VIEW  # HOST:PORT to serve it on (PORT 0 = any free port); keep it on 127.0.0.1
    fps: float = 15.0  # camera preview frames per second at most (1-30); encoded only while a page is open
    width: int = 640  # preview width in pixels at most (16-3840); the frame is shrunk, never enlarged
    quality: int = 70  # preview JPEG quality (10-95)
    allowed_hosts: list[str] = field(default_factory=list)  # more host names the page may be reached by


@dataclass
class ServeConfig:
    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    filter: dict[str, Any] = field(default_factory=dict)  # posebridge.filtering.config.FilterConfig fields
    publish: PublishConfig = field(default_factory=PublishConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    run: RunConfig = field(default_factory=RunConfig)
    position: PositionConfig = field(default_factory=PositionConfig)
    vmc: VmcConfig = field(default_factory=VmcConfig)
    opentrack: OpentrackConfig = field(default_factory=OpentrackConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    view: ViewConfig = field(default_factory=ViewConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------- loading


def filter_field_names() -> set[str]:
    from posebridge.filtering.config import FilterConfig

    return {f.name for f in dataclasses.fields(FilterConfig)}


def validate_filter_params(params: dict, prefix: str = "filter.") -> None:
    names = filter_field_names()
    for key in params:
        if key not in names:
            raise ConfigError(f"{prefix}{v.key(key)}: unknown key (filter parameters: "
                              f"{', '.join(sorted(names))})")


ENDPOINT_RE = re.compile(r"^(tcp://(?P<host>[^:/\s]+|\[[0-9a-fA-F:.]+\]):(?P<port>\*|\d{1,5})"
                         r"|ipc://\S+|inproc://\S+)$")


def check_endpoint(field: str, address: str) -> str:
    """A ZeroMQ bind address: tcp://HOST:PORT (PORT 0-65535, or * / 0 for any free port), ipc:// or
    inproc://."""
    m = ENDPOINT_RE.match(address)
    if not m or (m.group("port") not in (None, "*") and not 0 <= int(m.group("port")) <= 65535):
        raise ConfigError(f"{field}: {v.show(address)} is not a ZeroMQ address (tcp://HOST:PORT with PORT "
                          "0-65535, ipc://PATH)")
    return address


def validate(cfg: ServeConfig) -> ServeConfig:
    """Every value's documented range (examples/posebridge.toml); one ConfigError line naming the first
    value out of range. The filter's own table is checked by posebridge.filtering.config."""
    v.boolean("source.loop", cfg.source.loop)
    v.integer("model.threads", cfg.model.threads, 0, 256)
    v.text("model.device", cfg.model.device, 64)
    v.choice("model.flip", cfg.model.flip, ("model", "both", "alternate", "off"))
    if cfg.model.zooms:
        if len(cfg.model.zooms) > 8:
            raise ConfigError(f"model.zooms: at most 8 zoom views, got {len(cfg.model.zooms)}")
        for i, z in enumerate(cfg.model.zooms):
            v.number(f"model.zooms[{i}]", z, 0.5, 2.0)
    v.integer("faces.redetect_every", cfg.faces.redetect_every, 1, 100_000)
    v.number("faces.jump_ratio", cfg.faces.jump_ratio, 1.0, 100.0)
    v.number("faces.jump_min_deg", cfg.faces.jump_min_deg, 0.0, 180.0)
    v.table("faces.options", cfg.faces.options, 64)
    v.table("faces.tracker", cfg.faces.tracker, 64)
    from posebridge.filtering.config import FilterConfig

    validate_filter_params(cfg.filter)
    FilterConfig().replace(**cfg.filter)
    check_endpoint("publish.address", cfg.publish.address)
    v.integer("publish.hwm", cfg.publish.hwm, 1, 1_000_000)
    check_endpoint("control.address", cfg.control.address)
    v.integer("run.max_frames", cfg.run.max_frames, 0, 2**31 - 1)
    v.number("run.wait_subscriber_s", cfg.run.wait_subscriber_s, 0.0, 86400.0)
    v.number("run.log_every_s", cfg.run.log_every_s, 0.0, 86400.0)
    validate_position(cfg.position)
    from posebridge.output.opentrack import DEFAULT_PORT as OPENTRACK_DEFAULT_PORT
    from posebridge.output.udp import parse_destination
    from posebridge.output.vmc import DEFAULT_PORT as VMC_DEFAULT_PORT
    from posebridge.output.vmc import POSITION_TO as VMC_POSITION_TO

    if cfg.vmc.address:
        parse_destination("vmc.address", cfg.vmc.address, VMC_DEFAULT_PORT)
    v.choice("vmc.position_to", cfg.vmc.position_to, VMC_POSITION_TO)
    v.number("vmc.position_scale", cfg.vmc.position_scale, 0.0, 10.0)
    v.numbers("vmc.head_local_position", cfg.vmc.head_local_position, 3, -2.0, 2.0)
    if cfg.opentrack.address:
        parse_destination("opentrack.address", cfg.opentrack.address, OPENTRACK_DEFAULT_PORT)
    validate_view(cfg.view)
    return cfg


def validate_view(view: ViewConfig) -> None:
    from posebridge.view.address import check_host_name, parse_view_address

    v.boolean("view.enabled", view.enabled)
    parse_view_address("view.address", view.address)
    v.number("view.fps", view.fps, 1.0, 30.0)
    v.integer("view.width", view.width, 16, 3840)
    v.integer("view.quality", view.quality, 10, 95)
    if not isinstance(view.allowed_hosts, list) or len(view.allowed_hosts) > 32:
        raise ConfigError(f"view.allowed_hosts: expected a list of at most 32 host names, got "
                          f"{v.show(view.allowed_hosts)}")
    for i, name in enumerate(view.allowed_hosts):
        check_host_name(f"view.allowed_hosts[{i}]", name)


def load_config(path: str | os.PathLike | None = None) -> ServeConfig:
    """Defaults, then the TOML file if given. A bad file is one InputFileError / ConfigError line."""
    cfg = ServeConfig()
    if path is None:
        return cfg
    table = load_toml(path)
    try:
        apply(cfg, table)
        if isinstance(table.get("filter"), dict):
            validate_filter_params(table["filter"])
        validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg


# ---------------------------------------------------------------------------------- CLI filter flags


def add_filter_flags(parser) -> None:
    """`--filter.NAME VALUE` for every FilterConfig field (dest `filter__NAME`)."""
    names = filter_field_names() or set()
    for name in sorted(names):
        parser.add_argument(f"--filter.{name}", dest=f"filter__{name}", metavar="V", default=None,
                            help=argparse_suppress())


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def filter_flags(args) -> dict[str, object]:
    """The `--filter.NAME` values given on the command line, parsed as TOML values."""
    out = {}
    for key, value in vars(args).items():
        if key.startswith("filter__") and value is not None:
            out[key[len("filter__"):]] = parse_value(value)
    return out
