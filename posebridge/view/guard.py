"""Which requests the live page answers (docs/daemon.md, "The live page").

- **Host** (every request): the name the browser used must be an IP literal, `localhost` or a name in
  `view.allowed_hosts`. A DNS-rebinding page (`http://evil.example:8570` re-pointed at 127.0.0.1) sends
  `Host: evil.example:8570` and is refused before anything is read or changed.
- **Sec-Fetch-Site** (data: state, preview): a browser that sends it must say `same-origin` or `none`
  (typed into the address bar); another site or another local port cannot embed the camera preview in
  an `<img>` or load the state.
- **Origin** (every POST): must be present and equal to `http://` + the Host header, i.e. the request was
  made by the page itself; a form or `fetch` on another site (even `http://127.0.0.1:OTHERPORT`) is
  refused. Framing is refused by the headers in `SECURITY_HEADERS` (clickjacking).

Each check returns None when the request may go on, else a one-line reason.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SAFE_FETCH_SITES = ("same-origin", "none")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def split_host(value: str) -> str | None:
    """The host part of a Host header (`name:port`, `[v6]:port`, `name`), lower-cased; None when
    malformed."""
    value = value.strip().lower()
    if not value or len(value) > 260 or any(c.isspace() or c in "/@?#\\" for c in value):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1:] and not value[end + 1:].startswith(":")):
            return None
        return value[1:end]
    if value.count(":") > 1:
        return None
    return value.split(":", 1)[0] or None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Guard:
    """The checks for one server; `names`: the host names allowed besides IP literals."""

    names: frozenset[str] = frozenset({"localhost"})

    @classmethod
    def with_names(cls, extra: Iterable[str] = ()) -> Guard:
        return cls(frozenset({"localhost", *(n.lower().rstrip(".") for n in extra)}))

    def host(self, headers: Mapping[str, str]) -> str | None:
        value = headers.get("Host")
        if value is None:
            return "refused: no Host header"
        host = split_host(value)
        if host is None:
            return "refused: malformed Host header"
        if host.rstrip(".") in self.names or is_ip_literal(host):
            return None
        return (f"refused: Host {host[:60]!r} is not this machine's address (DNS rebinding?); "
                "add it to view.allowed_hosts if you meant it")

    def read(self, headers: Mapping[str, str]) -> str | None:
        """A GET of data (state, preview)."""
        reason = self.host(headers)
        if reason is None:
            site = headers.get("Sec-Fetch-Site")
            if site is not None and site.lower() not in SAFE_FETCH_SITES:
                return f"refused: a {site[:20]} request for the page's data"
        return reason

    def write(self, headers: Mapping[str, str]) -> str | None:
        """A POST: the page's own origin only."""
        reason = self.read(headers)
        if reason is not None:
            return reason
        origin = headers.get("Origin")
        if origin is None:
            return "refused: a change needs an Origin header (send it from the page)"
        if origin.strip().lower() != "http://" + headers["Host"].strip().lower():
            return f"refused: Origin {origin[:60]!r} is not this page's origin"
        return None
