"""The one validation layer for values that reach the daemon from outside: control `set` requests,
TOML and `--set` / `--filter.NAME` overrides, checkpoint and ONNX model metadata, session records.

Every check names the field, shows the offending value (shortened: a 10 MB string is echoed as its
first few dozen characters) and the allowed range, as one `ConfigError` line. Numbers must be finite
and within documented bounds; booleans must be booleans (not 0/1), integers not floats.
"""

from __future__ import annotations

import inspect
import math
import re
import reprlib
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from posebridge.errors import ConfigError

_repr = reprlib.Repr()
_repr.maxstring = 40
_repr.maxother = 40
_repr.maxlist = _repr.maxtuple = _repr.maxdict = 6


def show(value: Any) -> str:
    """A short, single-line repr of any value for an error message."""
    text = _repr.repr(value).replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."  # nested containers add up past the limits


_PLAIN = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,64}$")


def key(name: object) -> str:
    """A key or field name for an error message: as it is when plain, else shortened repr (a key from a
    client may hold newlines or be megabytes long)."""
    return name if isinstance(name, str) and _PLAIN.match(name) else show(name)


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    return f"{left}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}{right}"


def number(field: str, value: Any, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number within [lo, hi] (open ends with lo_open / hi_open); returns a float."""
    allowed = _range_text(lo, hi, lo_open, hi_open)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{field}: expected a number in {allowed}, got {show(value)}")
    try:
        x = float(value)
    except OverflowError:  # an int too large for a float
        raise ConfigError(f"{field}: {show(value)} is outside {allowed}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{field}: {show(value)} is not finite (allowed: {allowed})")
    below = lo is not None and (x < lo or (lo_open and x == lo))
    above = hi is not None and (x > hi or (hi_open and x == hi))
    if below or above:
        raise ConfigError(f"{field}: {show(value)} is outside {allowed}")
    return x


def integer(field: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An int (not a bool, not a float) within [lo, hi]."""
    allowed = _range_text(lo, hi, False, False)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field}: expected an integer in {allowed}, got {show(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{field}: {show(value)} is outside {allowed}")
    return int(value)


def boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{field}: expected true or false, got {show(value)}")
    return value


def _sized(field: str, value: Any, kind: type, expected: str, too_long: str, limit: int) -> Any:
    """`value` if it is a `kind` of at most `limit` items; `too_long` is formatted with n and limit."""
    if not isinstance(value, kind):
        raise ConfigError(f"{field}: expected {expected}, got {show(value)}")
    if len(value) > limit:
        raise ConfigError(f"{field}: " + too_long.format(n=len(value), limit=limit))
    return value


def text(field: str, value: Any, max_len: int = 4096) -> str:
    return _sized(field, value, str, "a string", "string of {n} characters is longer than {limit}", max_len)


def choice(field: str, value: Any, options: Iterable[str]) -> str:
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise ConfigError(f"{field}: {show(value)} is not one of {', '.join(options)}")
    return value


def numbers(field: str, value: Any, length: int, lo: float | None = None, hi: float | None = None, *,
            lo_open: bool = False) -> tuple[float, ...]:
    """A list of exactly `length` finite numbers, each within [lo, hi]."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Sequence):
        raise ConfigError(f"{field}: expected a list of {length} numbers, got {show(value)}")
    if len(value) != length:
        raise ConfigError(f"{field}: expected {length} numbers, got {len(value)}: {show(value)}")
    return tuple(number(f"{field}[{i}]", v, lo, hi, lo_open=lo_open) for i, v in enumerate(value))


def table(field: str, value: Any, max_keys: int = 256) -> dict:
    return _sized(field, value, dict, "a table/map", "{n} keys is more than {limit}", max_keys)


def check_options(target: Callable[..., Any], options: Iterable[str], error: Callable[[str, str], str],
                  reserved: Collection[str] = ()) -> None:
    """Options passed by name to `target` (a class or factory), checked before it is called: the first
    one it does not take, or one in `reserved` (what the caller passes itself), raises
    ConfigError(error(key, valid)), `valid` naming the others it takes, comma-separated. A target that
    takes **kwargs takes any name."""
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for name in options:
        if name not in params or name in reserved:
            raise ConfigError(error(name, ", ".join(k for k in params if k not in reserved)))


def host_port(field: str, value: Any, default_port: int, hint: str, *, lowest_port: int = 1,
              host_chars: str = r"[^:\s\[\]]", default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`HOST:PORT`, `HOST`, `:PORT` or `PORT` (IPv6 as `[::1]:PORT`) -> (host, port): a missing host is
    `default_host`, a missing port `default_port`; a host is made of `host_chars` (a regex character
    class) and PORT runs from `lowest_port` to 65535. ConfigError "`field`: `value` is not `hint`"."""
    raw = text(field, value, 256).strip()
    if raw.isdigit():
        raw = f":{raw}"
    m = re.match(rf"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>{host_chars}*))(?::(?P<port>\d{{1,5}}))?$", raw)
    port = int(m.group("port")) if m and m.group("port") else default_port
    if not m or not lowest_port <= port <= 65535:
        raise ConfigError(f"{field}: {show(value)} is not {hint}")
    return (m.group("v6") or m.group("host") or default_host), port
