"""ZeroMQ transport: the pose publisher (never blocks) and a subscriber helper (`listen`, tests).

The publisher is an XPUB socket: on the wire it is a PUB socket (any SUB client works), and it also
sees subscriptions, so a caller can wait for the first subscriber before streaming. Per subscriber
ZeroMQ queues at most SNDHWM messages; beyond that it drops messages for that subscriber only, so a
slow or dead subscriber never blocks the daemon and memory stays bounded (docs/daemon.md measures it).
Those per-subscriber drops are silent on the publisher side; subscribers see them as gaps in `seq`,
which `Subscriber` counts.

Subscriptions are handled manually (XPUB_MANUAL): only topics the daemon can ever send (prefixes of
`pose`, including the empty "everything" topic) are applied, so a client sending thousands of
subscriptions or a megabyte topic cannot grow the publisher's subscription table; a subscription
message longer than MAX_SUBSCRIPTION_BYTES drops that connection (libzmq's MAXMSGSIZE), and at most
DRAIN_PER_SEND subscription messages are read per frame, so a flood never stalls the stream. What
libzmq cannot bound: the number of TCP connections (the OS's file-descriptor limit does), and
SNDHWM x message size of queued data per connected subscriber (100 x ~300 bytes by default).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import zmq

from posebridge.errors import ConfigError

DEFAULT_HWM = 100
MAX_SUBSCRIPTION_BYTES = 1024  # also bounds the CURVE handshake commands (~300 bytes)
DRAIN_PER_SEND = 256
TOPICS = (b"pose",)  # what the publisher sends; a subscription is kept only if it is a prefix of one


def bind(sock: zmq.Socket, address: str, what: str) -> str:
    """Bind and return the resolved endpoint (port 0 / `*` become the real port)."""
    try:
        sock.bind(address)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise ConfigError(f"{what}: cannot bind {address}: {exc}") from None
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


def tcp_any_port(address: str) -> str:
    """`tcp://host:0` -> `tcp://host:*` (ZeroMQ's spelling of "any free port")."""
    return address[:-2] + ":*" if address.startswith("tcp://") and address.endswith(":0") else address


class Publisher:
    """Non-blocking multipart publisher with a send high-water mark."""

    def __init__(self, address: str = "tcp://127.0.0.1:5570", hwm: int = DEFAULT_HWM,
                 context: zmq.Context | None = None, keys=None) -> None:
        self.context = context or zmq.Context.instance()
        self._owns_context = False
        self.sock = self.context.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, int(hwm))
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # see every subscribe, not only the first per topic
        self.sock.setsockopt(zmq.XPUB_MANUAL, 1)  # apply only subscriptions to topics we send
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION_BYTES)
        self.sock.setsockopt(zmq.RCVHWM, 1000)
        if keys is not None:
            from posebridge.output.security import apply_server

            apply_server(self.sock, keys)
        self.address = bind(self.sock, tcp_any_port(address), "publish.address")
        self.sent = 0  # messages handed to ZeroMQ
        self.refused = 0  # sends that would have blocked (EAGAIN), dropped here
        self.subscriptions = 0  # subscribe messages applied (minus unsubscribes)
        self.ignored = 0  # subscriptions to topics the daemon never sends

    def _drain_subscriptions(self, limit: int = DRAIN_PER_SEND) -> None:
        for _ in range(limit):
            try:
                msg = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            kind, topic = msg[:1], msg[1:]
            if kind not in (b"\x00", b"\x01"):
                continue
            if not any(t.startswith(topic) for t in TOPICS):
                self.ignored += 1
                continue
            if kind == b"\x01":
                self.sock.setsockopt(zmq.SUBSCRIBE, topic)
                self.subscriptions += 1
            else:
                self.sock.setsockopt(zmq.UNSUBSCRIBE, topic)
                self.subscriptions = max(0, self.subscriptions - 1)

    def wait_for_subscriber(self, timeout_s: float, stop: threading.Event | None = None) -> bool:
        """Block up to `timeout_s` (or until `stop` is set) until at least one SUB has subscribed."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._drain_subscriptions()
            if self.subscriptions > 0:
                return True
            if stop is not None and stop.is_set():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.poll(int(min(left, 0.05) * 1000) + 1, zmq.POLLIN)

    def send(self, frames: Sequence[bytes]) -> bool:
        """Queue one multipart message; never blocks. False when it was dropped."""
        self._drain_subscriptions()
        try:
            self.sock.send_multipart(list(frames), flags=zmq.NOBLOCK, copy=True)
        except zmq.Again:
            self.refused += 1
            return False
        self.sent += 1
        return True

    def stats(self) -> dict:
        return {"address": self.address, "sent": self.sent, "refused": self.refused,
                "subscriptions": self.subscriptions, "ignored_subscriptions": self.ignored}

    def close(self, linger_s: float = 0.0) -> None:
        """Close the socket; with `linger_s` > 0, messages still queued get up to that long to leave
        (they leave only once the socket's context is terminated: see `Publisher.owning`)."""
        if not self.sock.closed:
            self.sock.close(linger=int(linger_s * 1000))
        if self._owns_context:
            self.context.term()

    @classmethod
    def owning(cls, *args, **kwargs) -> Publisher:
        """A publisher with a context of its own, so that `close(linger_s)` can wait for the queue to
        drain without touching other sockets (a replay must deliver its last frames before exiting)."""
        context = zmq.Context()
        try:
            pub = cls(*args, context=context, **kwargs)
        except BaseException:
            context.term()
            raise
        pub._owns_context = True
        return pub


class Subscriber:
    """SUB socket for `pose` (or any topic prefix); decodes v1 messages and counts `seq` gaps."""

    def __init__(self, address: str = "tcp://127.0.0.1:5570", topic: bytes | str = b"pose",
                 rcvhwm: int = 1000, context: zmq.Context | None = None, keys=None) -> None:
        from posebridge.formats.protocol import MAX_MESSAGE_BYTES

        self.context = context or zmq.Context.instance()
        self.sock = self.context.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        if keys is not None:
            from posebridge.output.security import apply_client

            apply_client(self.sock, keys)
        self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode() if isinstance(topic, str) else topic)
        try:
            self.sock.connect(address)
        except zmq.ZMQError as exc:
            self.sock.close(linger=0)
            raise ConfigError(f"address: cannot connect to {address}: {exc}") from None
        self.address = address
        self.received = 0
        self.gaps = 0  # messages missed, from jumps in `seq`
        self._last_seq: int | None = None

    def recv_frames(self, timeout_s: float | None = None) -> list[bytes] | None:
        """The next raw multipart message, or None after `timeout_s` (None = wait forever)."""
        if timeout_s is not None and not self.sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            return None
        return self.sock.recv_multipart()

    def recv(self, timeout_s: float | None = None):
        """The next decoded `PoseMessage` (raises ProtocolError if malformed), or None on timeout."""
        from posebridge.formats.protocol import decode

        frames = self.recv_frames(timeout_s)
        if frames is None:
            return None
        msg = decode(frames)
        self.received += 1
        if self._last_seq is not None and msg.seq > self._last_seq + 1:
            self.gaps += msg.seq - self._last_seq - 1
        self._last_seq = msg.seq
        return msg

    def messages(self, timeout_s: float | None = None) -> Iterator:
        """Decoded messages until a `timeout_s` silence (forever if None)."""
        while True:
            msg = self.recv(timeout_s)
            if msg is None:
                return
            yield msg

    def close(self) -> None:
        if not self.sock.closed:
            self.sock.close(linger=0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
