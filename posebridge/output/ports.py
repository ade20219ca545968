"""A free port on 127.0.0.1, for tests, benchmarks and examples that start a daemon and a receiver.

`free_port()` (TCP, e.g. ZeroMQ) or `free_port("udp")` (VMC, opentrack): the OS picks a port that is free
now; another process may take it before it is bound again, which is acceptable for tests on one machine.
"""

from __future__ import annotations

import socket


def free_port(kind: str = "tcp") -> int:
    """A currently free TCP (`kind="tcp"`) or UDP (`kind="udp"`) port on 127.0.0.1."""
    if kind not in ("tcp", "udp"):
        raise ValueError(f"free_port: kind must be 'tcp' or 'udp', got {kind!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
