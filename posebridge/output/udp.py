"""The UDP plumbing shared by the extra outputs (posebridge.output.vmc, posebridge.output.opentrack):
`HOST:PORT` destinations and a `UdpSink` that implements the daemon's `SinkStage` interface
(posebridge.daemon.stages): one or more datagrams per published message, sent on a non-blocking
socket, so a frame never waits on the network; `send` never raises. A send that fails (no route, buffer
full, a bug in the encoder) is counted; the first failure of an outage is logged once, and the
recovery once."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable

from posebridge import validation as v
from posebridge.errors import ConfigError
from posebridge.formats.protocol import PoseMessage

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"


def parse_destination(field: str, text: str, default_port: int) -> tuple[str, int]:
    """`HOST:PORT`, `HOST`, `:PORT` or `PORT` (IPv6 as `[::1]:PORT`) -> (host, port); a missing host is
    127.0.0.1 and a missing port `default_port`. ConfigError naming `field` otherwise."""
    return v.host_port(field, text, default_port, f"HOST:PORT (PORT 1-65535, default {default_port})",
                       default_host=DEFAULT_HOST)


def resolve(field: str, host: str, port: int) -> tuple[int, tuple]:
    """(address family, socket address) of a UDP destination; ConfigError when the host is unknown."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"{field}: cannot resolve host {host!r} ({exc})") from None
    family, _, _, _, addr = infos[0]
    return family, addr


class UdpSink:
    """A `Sink` sending `encode(msg)`'s datagrams to one destination; subclasses define `encode`."""

    name = "udp"
    default_port = 0

    def __init__(self, destination: str, field: str | None = None) -> None:
        field = field or f"{self.name}.address"
        self.host, self.port = parse_destination(field, destination, self.default_port)
        family, self.addr = resolve(field, self.host, self.port)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.messages = 0  # messages handed to send()
        self.datagrams = 0  # datagrams the kernel accepted
        self.errors = 0  # messages not (fully) sent
        self.last_error = ""
        self.send_ms_total = 0.0
        self._failing = False
        self._closed = False

    @property
    def destination(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def encode(self, msg: PoseMessage) -> Iterable[bytes]:
        raise NotImplementedError

    def send(self, msg: PoseMessage) -> None:
        """Encode and send one message; never blocks, never raises."""
        t0 = time.perf_counter()
        self.messages += 1
        try:
            for data in self.encode(msg):
                self.sock.sendto(data, self.addr)
                self.datagrams += 1
        except Exception as exc:  # OSError from the socket, anything from an encoder: counted, logged once
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self._failing:
                self._failing = True
                log.warning("%s output to %s: cannot send (%s); counting failures, the stream goes on",
                            self.name, self.destination, self.last_error)
        else:
            if self._failing:
                self._failing = False
                log.info("%s output to %s: sending again (%d messages failed so far)", self.name,
                         self.destination, self.errors)
        finally:
            self.send_ms_total += (time.perf_counter() - t0) * 1000.0

    def stats(self) -> dict:
        return {"name": self.name, "destination": self.destination, "messages": self.messages,
                "datagrams": self.datagrams, "errors": self.errors, "last_error": self.last_error,
                "mean_send_ms": self.send_ms_total / self.messages if self.messages else 0.0}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.sock.close()
