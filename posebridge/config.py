"""Daemon configuration: one dataclass per TOML section, loaded with `tomllib`, overridden by CLI flags.

Every key that can appear in `posebridge.toml` is a field below (see examples/posebridge.toml). Unknown
keys raise ConfigError naming the key path (`filter.proces_noise: unknown key`). The `[filter]` table is
checked against `posebridge.filtering.kalman.FilterConfig` and `[faces.options]` is passed to the detector as
keyword arguments.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posebridge.errors import ConfigError, InputFileError

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_PUB = "tcp://127.0.0.1:5570"
DEFAULT_CONTROL = "tcp://127.0.0.1:5571"


@dataclass
class SourceConfig:
    spec: str = "0"  # camera index, /dev/videoN, video file, image folder or session file
    realtime: bool = True  # files: pace by their fps (False = as fast as possible, `--fast`)


@dataclass
class ModelConfig:
    name: str = ""  # name (whenet, posebridge-small), path to a .pt, or "" for the default model
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    backend: str = "torch"  # torch | onnx (when posebridge.inference.backends provides it)
    threads: int = 1  # CPU threads for inference (0 = the library default); see docs/daemon.md
    zooms: list[float] = field(default_factory=list)  # test-time zoom views ([] = the model's own; [1.0])


@dataclass
class FacesConfig:
    detector: str = "default"
    options: dict[str, Any] = field(default_factory=dict)  # detector keyword arguments
    redetect_every: int = 10  # run the detector every N frames, track the box in between
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


@dataclass
class RunConfig:
    max_frames: int = 0  # stop after N frames (0 = until the source ends or Ctrl-C)
    wait_subscriber_s: float = 0.0  # wait up to this long for a first subscriber before reading frames
    log_every_s: float = 5.0  # log fps and latency every N seconds (0 = never)


@dataclass
class ServeConfig:
    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    filter: dict[str, Any] = field(default_factory=dict)  # posebridge.filtering.kalman.FilterConfig fields
    publish: PublishConfig = field(default_factory=PublishConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------- loading


def _type_ok(value: object, tp: object) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, (str, int)) and not isinstance(value, bool)  # `spec = 0` means camera 0
    return isinstance(value, tp) if isinstance(tp, type) else True


def _coerce(value: object, tp: object) -> object:
    if tp is float and isinstance(value, int):
        return float(value)
    if tp is str and isinstance(value, int):
        return str(value)
    return value


def _apply(obj: object, table: dict, prefix: str) -> None:
    """Set fields of dataclass `obj` from `table`, recursing into nested dataclasses."""
    if not isinstance(table, dict):
        raise ConfigError(f"{prefix.rstrip('.')}: expected a table")
    hints = typing.get_type_hints(type(obj))
    for key, value in table.items():
        path = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(f"{path}: unknown key")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, path + ".")
            continue
        tp = hints[key]
        if not _type_ok(value, tp):
            want = getattr(tp, "__name__", str(tp))
            raise ConfigError(f"{path}: expected {want}, got {type(value).__name__} {value!r}")
        if key == "filter" and prefix == "":
            validate_filter_params(value)
            merged = dict(current)
            merged.update(value)
            value = merged
        setattr(obj, key, _coerce(value, tp))


def filter_field_names() -> set[str] | None:
    """Names FilterConfig accepts, or None if posebridge.filtering.kalman is unavailable."""
    try:
        from posebridge.filtering.kalman import FilterConfig
    except ImportError:
        return None
    return {f.name for f in dataclasses.fields(FilterConfig)}


def validate_filter_params(params: dict, prefix: str = "filter.") -> None:
    names = filter_field_names()
    if names is None:
        return
    for key in params:
        if key not in names:
            raise ConfigError(f"{prefix}{key}: unknown key (filter parameters: {', '.join(sorted(names))})")


def load_config(path: str | os.PathLike | None = None) -> ServeConfig:
    """Defaults, then the TOML file if given. A bad file is one InputFileError / ConfigError line."""
    cfg = ServeConfig()
    if path is None:
        return cfg
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "config file not found")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"not valid TOML: {exc}") from None
    try:
        _apply(cfg, table, "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg


def parse_value(text: str) -> object:
    """A CLI value as TOML would read it (`0.5`, `true`, `"x"`); bare words stay strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_option(cfg: ServeConfig, dotted: str, value: object) -> None:
    """Override one option by its key path (`filter.process_noise`, `publish.address`)."""
    parts = dotted.split(".")
    table: dict = {}
    node = table
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    _apply(cfg, table, "")


def apply_overrides(cfg: ServeConfig, assignments: list[str]) -> None:
    """`KEY=VALUE` strings from `--set`."""
    for item in assignments or []:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. filter.lost_after_s=0.5")
        key, _, text = item.partition("=")
        set_option(cfg, key.strip(), parse_value(text.strip()))


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
