"""Stream watchers for tests.

`StreamWatcher` is independent of posebridge's own decoder: a plain ZeroMQ SUB socket, the payload
unpacked with msgpack alone, and every number checked here. posebridge's `Subscriber.recv` refuses NaN
itself, so a watcher built on it could never see one; this one records what is on the wire, and whatever
goes wrong in its thread is kept for the test to raise (a thread's exception would otherwise be only a
warning). `Recorder` is the stream as any posebridge client decodes it (`Subscriber`)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import msgpack
import zmq

from posebridge.formats.protocol import PoseMessage


def non_finite(obj: object, path: str = "") -> list[str]:
    """Paths of every non-finite float anywhere inside a decoded msgpack object."""
    if isinstance(obj, float):
        return [] if math.isfinite(obj) else [path or "."]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in non_finite(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in non_finite(v, f"{path}[{i}]")]
    return []


@dataclass
class StreamWatcher:
    """Collects (monotonic time, decoded map) of every message on `address` until `stop()`."""

    address: str
    received: list[tuple[float, dict]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # messages with a non-finite number or not a map
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            sock = zmq.Context.instance().socket(zmq.SUB)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.address)
            while not self._stop.is_set():
                if not sock.poll(200):
                    continue
                frames = sock.recv_multipart()
                data = msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)
                if not isinstance(data, dict):
                    self.bad.append(f"not a map: {type(data).__name__}")
                    continue
                where = non_finite(data)
                if where:
                    self.bad.append(f"seq {data.get('seq')}: non-finite at {', '.join(where)}")
                self.received.append((time.monotonic(), data))
            sock.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.errors.append(exc)

    def __enter__(self) -> StreamWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check(self) -> None:
        """Raise what the watcher's thread met; assert no non-finite value was seen."""
        if self.errors:
            raise self.errors[0]
        assert not self.bad, f"{len(self.bad)} bad message(s), first: {self.bad[0]}"


class Recorder:
    """Every message on `address` as posebridge.output.transport.Subscriber decodes it, in order, recorded
    on a thread from construction until `close()` (which may be called more than once)."""

    def __init__(self, address: str) -> None:
        from posebridge.output.transport import Subscriber

        self.sub = Subscriber(address)
        self.msgs: list[PoseMessage] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.sub.recv(timeout_s=0.1)
            if msg is not None:
                self.msgs.append(msg)

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=5)
            self.sub.close()
