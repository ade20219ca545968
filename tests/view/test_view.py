"""The live page without a browser (tests/end_to_end/test_view_browser.py drives it in Chromium): its
address, the request guard, the frame handoff and on-demand preview, and the server over real sockets
against a real pipeline on a clip."""

from __future__ import annotations

import http.client
import json
import threading
import time

import numpy as np
import pytest

from posebridge.config import ServeConfig, validate
from posebridge.errors import ConfigError
from posebridge.filtering.config import RANGES
from posebridge.formats.protocol import PoseMessage
from posebridge.view.address import parse_view_address
from posebridge.view.controls import SLIDERS
from posebridge.view.feed import PreviewSettings, ViewFeed
from posebridge.view.guard import Guard, split_host
from tests.helpers.clips import still_clip

# --------------------------------------------------------------------------------------- address

@pytest.mark.parametrize("text, expected", [
    ("8570", ("127.0.0.1", 8570)), (":0", ("127.0.0.1", 0)), ("0.0.0.0:9000", ("0.0.0.0", 9000)),
    ("[::1]:8571", ("::1", 8571)), ("localhost", ("localhost", 8570)), ("", ("127.0.0.1", 8570)),
])
def test_view_address(text, expected):
    assert parse_view_address("view.address", text) == expected


@pytest.mark.parametrize("text", ["a:b", "99999", "h:1:2", "x/y:80", "1.2.3.4:-1", "http://x:1"])
def test_bad_view_address_is_one_line(text):
    with pytest.raises(ConfigError, match=r"^view\.address: .* is not \[HOST:\]PORT") as info:
        parse_view_address("view.address", text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("key, value, message", [
    ("fps", 100.0, "view.fps"), ("quality", 5, "view.quality"), ("width", 8, "view.width"),
    ("allowed_hosts", ["bad host"], "view.allowed_hosts[0]"), ("address", "nope:port", "view.address"),
    ("enabled", "yes", "view.enabled"),
])
def test_view_config_is_range_checked(key, value, message):
    cfg = ServeConfig()
    setattr(cfg.view, key, value)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(cfg)


def test_serve_view_flag():
    from posebridge.cli import build_parser
    from posebridge.commands.serve import config_from_args

    off = config_from_args(build_parser().parse_args(["serve"]))
    assert not off.view.enabled and off.view.address == "127.0.0.1:8570"
    on = config_from_args(build_parser().parse_args(["serve", "--view"]))
    assert on.view.enabled and on.view.address == "127.0.0.1:8570"
    port = config_from_args(build_parser().parse_args(["serve", "--view", "9001"]))
    assert port.view.enabled and port.view.address == "9001"
    with pytest.raises(ConfigError, match="view.address"):
        config_from_args(build_parser().parse_args(["serve", "--view", "x:y"]))


# ----------------------------------------------------------------------------------------- guard

def test_guard_host_allows_ip_literals_and_localhost_only():
    g = Guard.with_names(["mybox.lan"])
    for host in ("127.0.0.1:8570", "localhost:8570", "LOCALHOST", "[::1]:8570", "192.168.1.5:8570",
                 "mybox.lan:8570", "mybox.lan."):
        assert g.host({"Host": host}) is None, host
    for host in ("evil.example:8570", "127.0.0.1.nip.io:8570", "localhost.evil:8570", "a b", "x/y", ""):
        assert g.host({"Host": host}), host
    assert "no Host" in g.host({})
    assert split_host("[::1]:80") == "::1" and split_host("[::1]x") is None


def test_guard_reads_refuse_other_sites():
    g = Guard.with_names()
    base = {"Host": "127.0.0.1:8570"}
    assert g.read(base) is None
    assert g.read({**base, "Sec-Fetch-Site": "same-origin"}) is None
    assert g.read({**base, "Sec-Fetch-Site": "none"}) is None
    for site in ("cross-site", "same-site"):
        assert "refused" in g.read({**base, "Sec-Fetch-Site": site})


def test_guard_writes_need_the_pages_own_origin():
    g = Guard.with_names()
    base = {"Host": "127.0.0.1:8570"}
    assert "Origin" in g.write(base)
    assert g.write({**base, "Origin": "http://127.0.0.1:8570"}) is None
    for origin in ("http://127.0.0.1:9999", "http://evil.example", "null", "https://127.0.0.1:8570"):
        assert "refused" in g.write({**base, "Origin": origin}), origin
    # DNS rebinding: the Origin matches the Host, but the Host is a foreign name
    assert "rebinding" in g.write({"Host": "evil.example:8570", "Origin": "http://evil.example:8570"})


def test_sliders_stay_inside_the_accepted_ranges():
    assert {s.name for s in SLIDERS} == set(RANGES)
    for s in SLIDERS:
        lo, hi, lo_open = RANGES[s.name]
        assert lo <= s.lo < s.hi <= hi and not (lo_open and s.lo == lo), s.name
        assert not s.log or s.lo > 0


# ------------------------------------------------------------------------------------------ feed

def message(seq: int, box=(100.0, 100.0, 200.0, 220.0)) -> PoseMessage:
    return PoseMessage(v=1, seq=seq, t_capture=time.time(), t_publish=time.time(), face_id=0, tracked=True,
                       q=[0.0, 0.0, 0.0, 1.0], euler=[10.0, -5.0, 3.0], raw=[10.0, -5.0, 3.0],
                       std=[1.0, 1.0, 1.0], box=list(box), frame=[640, 480])


def test_offer_hands_over_references_and_encodes_nothing_without_a_page():
    feed = ViewFeed(PreviewSettings(fps=30.0))
    image = np.zeros((480, 640, 3), np.uint8)
    for i in range(2000):
        feed.offer(image, [message(i)], 1)
    assert feed.encodes == 0 and feed.frames == 2000
    assert feed._latest[1] is image  # the frame itself, not a copy
    assert [m.seq for m in feed.history(1995)] == [1996, 1997, 1998, 1999]
    assert len(feed.history()) == 1200


def test_preview_is_encoded_on_demand_at_most_fps_and_shared():
    feed = ViewFeed(PreviewSettings(fps=10.0, width=320))
    image = np.full((480, 640, 3), 90, np.uint8)
    feed.offer(image, [message(0)], 1)
    version, jpeg = feed.next_jpeg(0, timeout=2.0)
    assert jpeg[:2] == b"\xff\xd8" and feed.encodes == 1
    import cv2

    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
    assert feed.next_jpeg(version, timeout=0.2) is None  # no new frame: nothing new, nothing encoded
    assert feed.encodes == 1
    # frames at ~100 fps for 1 s while three pages read: about 10 encodes, shared by all three
    stop = threading.Event()
    got: list[list[int]] = [[], [], []]

    def page(i):
        last = version
        while not stop.is_set():
            out = feed.next_jpeg(last, timeout=0.5)
            if out:
                last = out[0]
                got[i].append(last)

    threads = [threading.Thread(target=page, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    n = 1
    while time.monotonic() - t0 < 1.0:
        feed.offer(image, [message(n)], 1)
        n += 1
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    encodes = feed.encodes - 1
    assert 5 <= encodes <= 13, encodes
    assert all(len(g) >= encodes - 2 for g in got)  # every page saw (nearly) every encoded frame


# ------------------------------------------------------------------------------- the real server

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A real pipeline on the demo clip with the page on a free port; frames stepped in a thread."""
    from posebridge.daemon.assemble import build_pipeline

    clip = still_clip(tmp_path_factory.mktemp("view") / "clip.avi", seconds=3.0)
    cfg = ServeConfig()
    cfg.source.spec, cfg.source.realtime = str(clip), True
    cfg.publish.address, cfg.control.enabled = "tcp://127.0.0.1:0", False
    cfg.view.enabled, cfg.view.address = True, "127.0.0.1:0"
    cfg.run.log_every_s = 0.0
    pipe = build_pipeline(validate(cfg))
    stop = threading.Event()

    def loop():
        while not stop.is_set() and pipe.step() is not None:
            pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while pipe.frames < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    yield pipe
    stop.set()
    thread.join(timeout=10)
    pipe.close()


def call(pipe, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    port = pipe.view.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


def own(pipe) -> dict:
    port = pipe.view.server_address[1]
    return {"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/json"}


def test_page_and_state_are_served_with_protective_headers(live):
    status, headers, body = call(live, "GET", "/")
    h = dict(headers)
    assert status == 200 and b"Recenter" in body
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"] and h["X-Frame-Options"] == "DENY"
    for path in ("/static/app.js", "/static/three.module.min.js", "/static/head.glb", "/static/head.jpg"):
        assert call(live, "GET", path)[0] == 200, path
    status, _, body = call(live, "GET", "/api/state?since=-1")
    state = json.loads(body)
    assert status == 200 and state["ok"] and state["samples"] and state["status"]["model"]
    assert state["status"]["preview"]["encodes"] == 0  # nobody has read the preview
    assert call(live, "GET", "/api/state?since=x")[0] == 400
    assert call(live, "GET", "/../../etc/passwd")[0] == 404


def test_foreign_host_and_origin_are_refused_and_change_nothing(live):
    before = live.filter_config.process_noise
    status, _, body = call(live, "GET", "/api/state", headers={"Host": "evil.example:8570"})
    assert status == 403 and b"rebinding" in body and b"samples" not in body
    assert call(live, "GET", "/", headers={"Host": "evil.example:8570"})[0] == 403
    assert call(live, "GET", "/stream.mjpg", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    body = json.dumps({"params": {"process_noise": 7.0}}).encode()
    for headers in ({}, {"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:1"},
                    {**own(live), "Host": "evil.example"}):
        status, _, reply = call(live, "POST", "/api/set", body, headers)
        assert status == 403 and json.loads(reply)["ok"] is False, headers
        assert "\n" not in json.loads(reply)["error"]
    assert call(live, "POST", "/api/recenter", b"{}", {"Origin": "http://evil.example"})[0] == 403
    assert live.filter_config.process_noise == before and live.streams.neutral() is None


def test_changes_from_the_page_go_through_the_control_handlers(live):
    body = json.dumps({"params": {"process_noise": 0.25}}).encode()
    status, _, reply = call(live, "POST", "/api/set", body, own(live))
    assert status == 200 and json.loads(reply)["params"]["process_noise"] == 0.25
    assert live.filter_config.process_noise == 0.25
    frames = live.frames
    for body, text in ((b'{"params": {"process_noise": -1}}', "outside [0, 1e+06]"),
                       (b'{"params": {"nope": 1}}', "unknown parameter"),
                       (b'{"params": {"mirror": "yes"}}', "mirror"),
                       (b"[1, 2]", "JSON object"), (b"\xff", "not JSON"),
                       (b'{"params": {}}', "non-empty")):
        status, _, reply = call(live, "POST", "/api/set", body, own(live))
        error = json.loads(reply)["error"]
        assert status == 400 and text in error and "\n" not in error, (body, error)
    assert live.filter_config.process_noise == 0.25
    status, _, _ = call(live, "POST", "/api/set", b"x" * 5000, own(live))
    assert status == 400
    deadline = time.monotonic() + 5
    while live.frames == frames and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.frames > frames  # the stream went on
    status, _, reply = call(live, "POST", "/api/recenter", b"{}", own(live))
    assert status == 200 and json.loads(reply)["neutral"] is not None
    assert call(live, "POST", "/api/recenter", b'{"reset": true}', own(live))[0] == 200
    assert live.streams.neutral() is None


def test_preview_stream_serves_jpegs_with_the_face_drawn(live):
    port = live.view.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/stream.mjpg")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("multipart/x-mixed-replace")
    data = b""
    while data.count(b"\xff\xd9") < 2 and len(data) < 2_000_000:
        data += r.read1(65536)
    conn.close()
    assert data.startswith(b"--frame\r\nContent-Type: image/jpeg") and live.view.feed.encodes >= 1


# ---------------------------------------------------------------------------------------- bench

@pytest.mark.parametrize("watch", [False, True])
def test_bench_runs_with_the_page_on(tmp_path, capsys, watch):
    """`posebridge bench --view` serves the page during the run (no page: nothing encoded);
    `--watch-view` adds a client that reads the preview as an open page does."""
    from posebridge.cli import main

    clip = still_clip(tmp_path / "clip.avi", seconds=3.0)
    argv = ["bench", str(clip), "--child", "--json", "--realtime", "--warmup", "5", "--view",
            "--detector", "haar"] + (["--watch-view"] if watch else [])
    assert main(argv) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert run["view"]["watched"] is watch and "view.enabled=true" in run["overrides"]
    if watch:
        assert run["view"]["encodes"] > 3
    else:
        assert run["view"]["encodes"] == 0
