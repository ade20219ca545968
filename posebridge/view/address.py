"""The live page's address: `[HOST:]PORT` (`8570`, `:8570`, `127.0.0.1:8570`, `[::1]:8570`; PORT 0 picks a
free port), and the host names a page may be reached by (`view.allowed_hosts`)."""

from __future__ import annotations

import re

from posebridge import validation as v
from posebridge.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8570
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.\-]*))(?::(?P<port>\d{1,5}))?$")
_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*\.?$")


def parse_view_address(field: str, text: object) -> tuple[str, int]:
    """`[HOST:]PORT` -> (host, port); a missing host is 127.0.0.1, a missing port 8570. ConfigError naming
    `field` for anything else."""
    raw = v.text(field, text, 256).strip()
    if raw.isdigit():
        raw = f":{raw}"
    m = _ADDRESS.match(raw)
    port = int(m.group("port")) if m and m.group("port") else DEFAULT_PORT
    if not m or not 0 <= port <= 65535:
        raise ConfigError(f"{field}: {v.show(text)} is not [HOST:]PORT (PORT 0-65535, 0 = any free port; "
                          f"default {DEFAULT_HOST}:{DEFAULT_PORT})")
    return (m.group("v6") or m.group("host") or DEFAULT_HOST), port


def check_host_name(field: str, name: object) -> str:
    """A DNS host name (letters, digits, hyphens, dots), lower-cased; ConfigError otherwise."""
    text = v.text(field, name, 253)
    if not _NAME.match(text):
        raise ConfigError(f"{field}: {v.show(name)} is not a host name")
    return text.lower().rstrip(".")
