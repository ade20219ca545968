"""The live page's HTTP server: one `ThreadingHTTPServer` in its own thread (stdlib only), bound to
`view.address` (127.0.0.1:8570 unless told otherwise).

Routes (every one behind posebridge.view.guard):

    GET  /                     the page (posebridge/assets/view/index.html) and its files under /static/
    GET  /api/state?since=SEQ  status, pose samples after SEQ, the latest q and position
    GET  /api/controls         the filter sliders with their accepted ranges
    GET  /stream.mjpg          the camera preview (multipart JPEG, encoded only while someone reads it)
    POST /api/recenter         {"reset": false}                      -> control `recenter`
    POST /api/set              {"params": {"process_noise": 0.2}}    -> control `set`

Bounded: at most MAX_CONNECTIONS connections (more are closed at once), MAX_STREAMS preview streams,
request bodies of 4 KB, idle connections closed after IDLE_S. A refused or bad request gets one line
(plain text, or `{"ok": false, "error": ...}` for the API) and changes nothing; the stream goes on.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from posebridge.errors import ConfigError, PoseBridgeError
from posebridge.paths import ASSETS
from posebridge.view.address import parse_view_address
from posebridge.view.controls import ACTIONS, MAX_BODY_BYTES, parse_body, slider_specs
from posebridge.view.feed import PreviewSettings, ViewFeed
from posebridge.view.guard import SECURITY_HEADERS, Guard
from posebridge.view.status import PageStatus

if TYPE_CHECKING:
    from posebridge.config import ViewConfig
    from posebridge.daemon.pipeline import Pipeline

log = logging.getLogger(__name__)

PAGE_DIR = ASSETS / "view"
STATIC = {  # URL path -> (file under PAGE_DIR, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/head.js": ("head.js", "text/javascript; charset=utf-8"),
    "/static/plot.js": ("plot.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    "/static/three.module.min.js": ("vendor/three.module.min.js", "text/javascript; charset=utf-8"),
    "/static/head.glb": ("head/LeePerrySmith.glb", "model/gltf-binary"),
    "/static/head.jpg": ("head/Map-COL.jpg", "image/jpeg"),
}
MAX_CONNECTIONS = 32
MAX_STREAMS = 4
IDLE_S = 15.0
LOG_EVERY_S = 5.0


class ViewServer(ThreadingHTTPServer):
    """The server; `start()` serves in a daemon thread, `close()` stops it and every preview stream."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(self, pipe: Pipeline, cfg: ViewConfig) -> None:
        host, port = parse_view_address("view.address", cfg.address)
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.pipe = pipe
        self.feed = ViewFeed(PreviewSettings(cfg.fps, cfg.width, cfg.quality),
                             mirror=lambda: bool(pipe.cfg.publish.mirror))
        self.page = PageStatus(pipe, self.feed)
        self.guard = Guard.with_names(cfg.allowed_hosts)
        self.closing = threading.Event()
        self.refused = 0
        self.requests = 0
        self.streams = 0
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._lock = threading.Lock()
        self._last_log = 0.0
        self._files: dict[str, bytes] = {}
        self._thread: threading.Thread | None = None
        try:
            super().__init__((host, port), PageHandler)
        except OSError as exc:
            why = exc.strerror or exc
            raise ConfigError(f"view.address: cannot serve the page on {host}:{port}: {why}") from None
        bound = self.server_address
        self.url = f"http://{'[' + bound[0] + ']' if ':' in bound[0] else bound[0]}:{bound[1]}/"

    # -- connections, bounded --------------------------------------------------------------------
    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            self.note_refusal(f"more than {MAX_CONNECTIONS} connections")
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:  # a client that went away mid-request
        log.debug("view: request from %s failed", client_address, exc_info=True)

    # -- helpers for the handler ---------------------------------------------------------------
    def note_refusal(self, reason: str) -> None:
        with self._lock:
            self.refused += 1
            now = time.monotonic()
            if now - self._last_log < LOG_EVERY_S:
                return
            self._last_log = now
        log.warning("view: %s (%d refused so far)", reason, self.refused)

    def asset(self, path: str) -> tuple[bytes, str] | None:
        entry = STATIC.get(path)
        if entry is None:
            return None
        name, ctype = entry
        data = self._files.get(name)
        if data is None:
            data = self._files[name] = (PAGE_DIR / name).read_bytes()
        return data, ctype

    def stats(self) -> dict:
        return {"url": self.url, "requests": self.requests, "refused": self.refused, "streams": self.streams,
                **self.feed.stats()}

    # -- life ------------------------------------------------------------------------------------
    def start(self) -> ViewServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.25},
                                        name="posebridge-view", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self.closing.is_set():
            return
        self.closing.set()
        self.feed.close()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=2.0)
        self.server_close()


class PageHandler(BaseHTTPRequestHandler):
    server: ViewServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_S
    server_version = "posebridge-view"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        pass  # refusals are logged (rate-limited) by the server; normal requests are not

    # -- responses -------------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, value: dict) -> None:
        self._send(code, json.dumps(value, separators=(",", ":")).encode(), "application/json")

    def _refuse(self, code: int, reason: str, api: bool) -> None:
        self.server.note_refusal(reason)
        if api:
            self._json(code, {"ok": False, "error": reason})
        else:
            self._send(code, (reason + "\n").encode(), "text/plain; charset=utf-8")

    # -- GET ---------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.requests += 1
        url = urlsplit(self.path)
        api = url.path.startswith("/api/")
        data_route = api or url.path == "/stream.mjpg"
        reason = (self.server.guard.read if data_route else self.server.guard.host)(self.headers)
        if reason:
            return self._refuse(403, reason, api)
        if url.path == "/api/state":
            return self._state(url.query)
        if url.path == "/api/controls":
            return self._json(200, {"ok": True, "sliders": slider_specs()})
        if url.path == "/stream.mjpg":
            return self._stream()
        found = self.server.asset(url.path)
        if found is None:
            return self._refuse(404, f"not found: {url.path[:60]}", api)
        self._send(200, found[0], found[1])

    do_HEAD = do_GET

    def _state(self, query: str) -> None:
        since = -1
        values = parse_qs(query).get("since")
        if values:
            try:
                since = int(values[0])
            except ValueError:
                return self._refuse(400, "since: expected an integer", True)
        self._json(200, {"ok": True, **self.server.page.state(since)})

    def _stream(self) -> None:
        server = self.server
        with server._lock:
            if server.streams >= MAX_STREAMS:
                busy = True
            else:
                busy, server.streams = False, server.streams + 1
        if busy:
            return self._refuse(503, f"at most {MAX_STREAMS} previews at once", False)
        try:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Connection", "close")
            for key, value in SECURITY_HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            last = 0
            while not server.closing.is_set():
                got = server.feed.next_jpeg(last, timeout=1.0)
                if got is None:
                    continue
                last, jpeg = got
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                self.wfile.flush()
        except OSError:  # the page went away (broken pipe, reset, timeout)
            pass
        finally:
            with server._lock:
                server.streams -= 1

    # -- POST --------------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.requests += 1
        path = urlsplit(self.path).path
        reason = self.server.guard.write(self.headers)
        length = self.headers.get("Content-Length", "0")
        if not reason and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            reason = f"a request body of at most {MAX_BODY_BYTES} bytes, with Content-Length, is expected"
        if reason:
            self.close_connection = True  # do not read an unwanted body
            return self._refuse(403 if reason.startswith("refused") else 400, reason, True)
        body = self.rfile.read(int(length))
        action = ACTIONS.get(path)
        if action is None:
            return self._refuse(404, f"not found: {path[:60]}", True)
        try:
            reply = action(self.server.pipe, parse_body(body))
        except (PoseBridgeError, ValueError, TypeError, KeyError) as exc:
            return self._refuse(400, (str(exc) or type(exc).__name__).splitlines()[0][:300], True)
        self._json(200, {"ok": True, **reply})


def start_view(pipe: Pipeline, cfg: ViewConfig) -> ViewServer:
    """Serve the page for `pipe` (see the module docstring); ConfigError when the address is taken."""
    return ViewServer(pipe, cfg).start()


def page_files() -> list[Path]:
    """Every file the page serves (the package-data test checks they exist)."""
    return [PAGE_DIR / name for name, _ in STATIC.values()]
