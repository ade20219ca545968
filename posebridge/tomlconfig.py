"""The one config loader for the daemon (`posebridge.config.ServeConfig`) and training
(`training.config.TrainConfig`): nested dataclasses filled from a TOML file, then `--set KEY=VALUE`
overrides by dotted path.

Every key is checked: an unknown key, or a value of the wrong type, raises `ConfigError` naming the key
path (`filter.proces_noise: unknown key`); a bad file is one `InputFileError` line. Fields annotated as
`dict` are free-form tables whose owner checks the keys (detector options, dataset options); ranges are
checked by the owner's own validation (posebridge.validation).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any

from posebridge import validation as v
from posebridge.errors import ConfigError, InputFileError
from posebridge.validation import show

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["apply", "apply_overrides", "coerce", "dump_toml", "load_toml", "parse_value", "set_option",
           "tomllib"]

_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def load_toml(path: str | os.PathLike) -> dict:
    """A TOML file as a table; one InputFileError line when missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "config file not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"not valid TOML: {exc}") from None


def parse_value(text: str) -> object:
    """A command-line value as TOML would read it (`0.5`, `true`, `[1, 2]`, `"x"`); bare words stay
    strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check (and convert: int -> float, int -> str) a TOML value for a field annotated `tp`."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected nothing, got {show(value)}")
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {show(value)}")
        return dict(value)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {show(value)}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):  # `spec = 0` means camera 0
            return str(value)
    else:
        return value
    raise ConfigError(f"{where}: expected {_NAMES[tp]}, got {type(value).__name__} {show(value)}")


def apply(obj: Any, table: Any, where: str = "") -> None:
    """Set the fields of dataclass `obj` from `table`, recursing into nested dataclasses."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {show(table)}")
    hints = typing.get_type_hints(type(obj))
    for key, value in table.items():
        path = f"{where}.{v.key(key)}" if where else v.key(key)
        if key not in hints:
            raise ConfigError(f"{path}: unknown key (known: {', '.join(hints)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            apply(current, value, path)
            continue
        setattr(obj, key, coerce(value, hints[key], path))


def set_option(obj: Any, dotted: str, value: object) -> None:
    """Override one option by its key path (`publish.hwm`, `data.options.root`): into a nested dataclass
    field, or into a free-form table field (then the key is the owner's to check)."""
    parts = dotted.strip().split(".")
    node = obj
    for i, part in enumerate(parts[:-1]):
        hints = typing.get_type_hints(type(node)) if dataclasses.is_dataclass(node) else {}
        if dataclasses.is_dataclass(node) and part not in hints:
            raise ConfigError(f"{v.key('.'.join(parts[:i + 1]))}: unknown key (known: {', '.join(hints)})")
        child = getattr(node, part) if dataclasses.is_dataclass(node) else node.setdefault(part, {})
        if not (dataclasses.is_dataclass(child) or isinstance(child, dict)):
            raise ConfigError(f"{'.'.join(parts[:i + 1])}: is not a table")
        node = child
    if isinstance(node, dict):
        node[parts[-1]] = value
    else:
        apply(node, {parts[-1]: value}, ".".join(parts[:-1]))


def apply_overrides(obj: Any, assignments: typing.Iterable[str]) -> None:
    """`KEY=VALUE` strings from `--set`, values parsed as TOML."""
    for item in assignments or []:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. filter.lost_after_s=0.5")
        key, _, text = item.partition("=")
        set_option(obj, key.strip(), parse_value(text.strip()))


def dump_toml(obj: Any) -> str:
    """A dataclass config of tables as TOML (written beside training runs)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {fmt(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = []
    for section, table in dataclasses.asdict(obj).items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {fmt(v)}" for k, v in table.items()]
        lines.append("")
    return "\n".join(lines)
