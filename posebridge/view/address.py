"""The live page's address: `[HOST:]PORT` (`8570`, `:8570`, `127.0.0.1:8570`, `[::1]:8570`; PORT 0 picks a
free port), and the host names a page may be reached by (`view.allowed_hosts`)."""

from __future__ import annotations

import re

from posebridge import validation as v
from posebridge.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8570
_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*\.?$")


def parse_view_address(field: str, text: object) -> tuple[str, int]:
    """`[HOST:]PORT` -> (host, port); a missing host is 127.0.0.1, a missing port 8570. ConfigError naming
    `field` for anything else."""
    return v.host_port(field, text, DEFAULT_PORT, "[HOST:]PORT (PORT 0-65535, 0 = any free port; "
                       f"default {DEFAULT_HOST}:{DEFAULT_PORT})", lowest_port=0, host_chars=r"[A-Za-z0-9.\-]",
                       default_host=DEFAULT_HOST)


def check_host_name(field: str, name: object) -> str:
    """A DNS host name (letters, digits, hyphens, dots), lower-cased; ConfigError otherwise."""
    text = v.text(field, name, 253)
    if not _NAME.match(text):
        raise ConfigError(f"{field}: {v.show(name)} is not a host name")
    return text.lower().rstrip(".")
