"""The control channel: a ZeroMQ REP socket taking msgpack requests (docs/protocol.md, "Control").

Requests are maps `{"cmd": NAME, ...}`; replies are maps `{"ok": true, ...}` or
`{"ok": false, "error": "one line"}`. Every request gets exactly one reply, however malformed, so a
bad client never wedges the socket or the daemon. The server runs in its own thread: the pipeline
passes handlers that take its lock, so status stays available even while a camera is reconnecting.

Bounded: a request larger than MAX_REQUEST_BYTES is refused by libzmq itself (the connection that sent
it is dropped before anything is buffered or parsed), and whatever a request contains is echoed and
logged at most a few dozen characters long, rejected requests logged at most once per
LOG_EVERY_S. With CURVE keys (posebridge.output.security) only clients holding an authorised key connect.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import msgpack
import zmq

from posebridge.errors import ConfigError, PoseBridgeError
from posebridge.formats.plain import plain_or_text
from posebridge.output.transport import bind, tcp_any_port
from posebridge.validation import show

log = logging.getLogger(__name__)

Handler = Callable[[dict], dict]
MAX_REQUEST_BYTES = 4096  # the largest request: a `set` of every filter parameter is ~400 bytes
MAX_ERROR_CHARS = 300
LOG_EVERY_S = 5.0


def _error(text: str) -> dict:
    return {"ok": False, "error": text}


def handle_request(raw: list[bytes], handlers: dict[str, Handler]) -> dict:
    """One request (the multipart frames received) -> the reply map. Never raises."""
    if len(raw) != 1:
        return _error(f"expected a single-frame msgpack map, got {len(raw)} frames")
    try:
        req = msgpack.unpackb(raw[0], raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage input
        return _error(f"request is not msgpack: {type(exc).__name__}")
    if not isinstance(req, dict):
        return _error(f"request must be a map with a 'cmd' key, got {type(req).__name__}")
    cmd = req.get("cmd")
    if not isinstance(cmd, str):
        return _error("request has no 'cmd' string")
    handler = handlers.get(cmd)
    if handler is None:
        return _error(f"unknown cmd {show(cmd)}; known: {', '.join(sorted(handlers))}")
    try:
        reply = handler(req)
    except (PoseBridgeError, ValueError, TypeError, KeyError) as exc:
        return _error((str(exc) or type(exc).__name__)[:MAX_ERROR_CHARS])
    except Exception as exc:  # a handler bug must not kill the daemon; report it to the client
        log.exception("control: %s failed", cmd)
        return _error(f"internal error in {cmd}: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    out = {"ok": True}
    out.update(reply or {})
    return out


def pack_reply(reply: dict) -> bytes:
    return msgpack.packb(reply, use_bin_type=True, default=plain_or_text)


class ControlServer:
    """REP socket served by a daemon thread until `close()`."""

    def __init__(self, handlers: dict[str, Handler], address: str = "tcp://127.0.0.1:5571",
                 context: zmq.Context | None = None, keys=None) -> None:
        self.handlers = handlers
        self.context = context or zmq.Context.instance()
        self.sock = self.context.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        self.sock.setsockopt(zmq.RCVHWM, 16)
        if keys is not None:
            from posebridge.output.security import apply_server

            apply_server(self.sock, keys)
        self.address = bind(self.sock, tcp_any_port(address), "control.address")
        self.requests = 0
        self.errors = 0
        self._last_log = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="posebridge-control", daemon=True)

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.sock.poll(100, zmq.POLLIN):
                    continue
                raw = self.sock.recv_multipart()
                reply = handle_request(raw, self.handlers)
                self.requests += 1
                if not reply.get("ok"):
                    self.errors += 1
                    now = time.monotonic()
                    if now - self._last_log >= LOG_EVERY_S:
                        self._last_log = now
                        log.info("control: rejected request (%d so far): %s", self.errors,
                                 reply["error"][:MAX_ERROR_CHARS])
                self.sock.send(pack_reply(reply))
        except zmq.ZMQError as exc:
            if not self._stop.is_set():
                log.error("control socket stopped: %s", exc)
        finally:
            self.sock.close(linger=0)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        elif not self.sock.closed:
            self.sock.close(linger=0)


def request(address: str, req: dict, timeout_s: float = 2.0, context: zmq.Context | None = None,
            keys=None) -> dict:
    """Send one control request and return the reply map (ConfigError when nothing answers). `keys`:
    client CURVE keys (posebridge.output.security.load_client) for a daemon that requires them."""
    ctx = context or zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        from posebridge.output.security import apply_client

        apply_client(sock, keys)
    try:
        sock.connect(address)
        sock.send(msgpack.packb(req, use_bin_type=True))
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            raise ConfigError(f"control: no reply from {address} within {timeout_s:g} s "
                              "(is the daemon running?)")
        return msgpack.unpackb(sock.recv(), raw=False)
    finally:
        sock.close(linger=0)
