"""The live page in a real browser: Debian's Chromium driven by Playwright (the system browser; never
`playwright install`) against `posebridge serve --view` in a subprocess, on a looping clip of a still
head, with a real ZeroMQ subscriber and the real control socket.

Skipped, with the reason, when /usr/bin/chromium (`apt-get install chromium`, which scripts/test.sh does)
or the `playwright` package (`posebridge[dev]`) is missing."""

from __future__ import annotations

import math
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from posebridge.output.control import request
from posebridge.output.transport import Subscriber
from tests.helpers.clips import still_clip
from tests.helpers.daemon_proc import ANY, ANY_VIEW, Daemon

CHROMIUM = Path(os.environ.get("POSEBRIDGE_CHROMIUM", "/usr/bin/chromium"))
REBIND = "rebind.test"  # resolved to 127.0.0.1 inside the browser only: a DNS-rebinding attacker's name
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"]

pytestmark = pytest.mark.slow


def q_angle_deg(q) -> float:
    return math.degrees(2.0 * math.acos(min(1.0, abs(q[3]))))


class LiveDaemon:
    """`posebridge serve --view` on a looping still clip, every port chosen by the OS when it binds and
    read back from the start-up log line (tests/helpers/daemon_proc.py)."""

    def __init__(self, tmp: Path) -> None:
        clip = still_clip(tmp / "still.avi", seconds=4.0)
        self.proc = Daemon(["serve", "--source", str(clip), "--loop", "--view", ANY_VIEW, "--publish", ANY,
                            "--control", ANY])
        self.pub, self.control = self.proc.addresses()
        self.url = self.proc.view_url()
        self.view_port = urlsplit(self.url).port
        deadline = time.monotonic() + 120
        while True:
            try:
                if request(self.control, {"cmd": "status"}, timeout_s=1.0)["frames"] > 10:
                    break
            except Exception:  # not up yet
                pass
            assert self.proc.poll() is None, self.proc.output()[-2000:]
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.5)

    def status(self) -> dict:
        return request(self.control, {"cmd": "status"}, timeout_s=5.0)

    def encodes(self) -> int:
        return int(self.status()["view"]["encodes"])

    def stop(self) -> None:
        self.proc.stop(timeout=20)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    if not CHROMIUM.is_file():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; scripts/test.sh "
                    "installs it)")
    pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')")
    d = LiveDaemon(tmp_path_factory.mktemp("view_browser"))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def browser(daemon):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, daemon):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(daemon.url, wait_until="domcontentloaded")
    yield pg
    context.close()
    assert not errors, errors


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_js(page, expression: str, timeout: float = 30.0):
    """Poll a JavaScript expression until it is truthy (page.evaluate goes over the DevTools protocol;
    Playwright's wait_for_function would need 'unsafe-eval', which the page's CSP refuses)."""
    return wait_for(lambda: page.evaluate(expression), timeout, what=expression)


def test_no_preview_is_encoded_while_no_page_is_open(daemon, browser):
    """Encodes counted by the daemon: none without a page, some with one, none again after it closed."""
    wait_for(lambda: daemon.status()["view"]["streams"] == 0, what="no open preview")
    before = daemon.encodes()
    time.sleep(2.0)
    assert daemon.encodes() == before, "the preview was encoded with no page open"
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(daemon.url, wait_until="domcontentloaded")
    wait_for(lambda: daemon.encodes() >= before + 5, what="preview frames while the page is open")
    wait_js(pg, "document.getElementById('preview').naturalWidth === 640")  # the frame, shown
    context.close()
    wait_for(lambda: daemon.status()["view"]["streams"] == 0, what="the preview stream to end")
    after = daemon.encodes()
    time.sleep(2.0)
    assert daemon.encodes() == after, "the preview was still encoded after the page closed"


def test_angles_update(page):
    wait_js(page, "document.body.dataset.seq !== undefined")
    first = int(page.evaluate("document.body.dataset.seq"))
    wait_js(page, f"+document.body.dataset.seq > {first + 10}")
    yaw = page.text_content("#yaw")
    assert yaw and yaw != "-" and abs(float(yaw)) < 90
    assert page.text_content("#tracking").startswith("face")
    assert "posebridge-small" in page.text_content("#status")


def test_recenter_makes_q_identity_for_a_still_head(page, daemon):
    with Subscriber(daemon.pub) as sub:
        def q_now() -> list[float]:
            msgs = [sub.recv(timeout_s=5.0) for _ in range(5)]
            assert all(m is not None and m.tracked for m in msgs)
            return msgs[-1].q

        wait_for(lambda: sub.recv(timeout_s=1.0), what="the first message")
        before = q_angle_deg(q_now())
        assert before > 4.0, f"the still head should not face the camera exactly ({before:.1f} deg)"
        page.get_by_role("button", name="Recenter", exact=True).click()
        wait_js(page, "document.getElementById('message').textContent.startsWith('recentered')")
        t_click = time.time()
        while (m := sub.recv(timeout_s=5.0)) is not None and m.t_capture < t_click + 0.2:
            pass
        angles = [q_angle_deg(q_now()) for _ in range(6)]
        assert max(angles) < 1.5, (before, angles)
        assert daemon.status()["neutral"] is not None
        page.get_by_role("button", name="Reset center").click()
        wait_for(lambda: daemon.status()["neutral"] is None, what="reset")


def test_slider_changes_the_filter_value_that_control_get_reports(page, daemon):
    page.wait_for_selector("#slider-process_noise")
    page.fill("#slider-process_noise", "750")  # input + change events, as a drag does
    # the shown value once the page has updated it (read too early, it is still the old 0.1)
    shown = wait_for(lambda: (v := page.input_value("#value-process_noise")) and float(v) != 0.1 and v,
                     what="the new value shown")
    expected = float(shown)
    got = wait_for(lambda: (v := request(daemon.control, {"cmd": "get"})["params"]["process_noise"]) != 0.1
                   and v, what="the new value in control get")
    assert got == pytest.approx(expected) and got > 1.0  # 750 of 1000 on 1e-3..100, log scale: ~5.6
    wait_js(page, "document.getElementById('message').textContent.startsWith('process_noise =')")
    # a bad typed value: one line on the page, nothing changed, the stream goes on
    seq = daemon.status()["seq"]
    page.fill("#value-process_noise", "-5")
    page.press("#value-process_noise", "Enter")
    wait_js(page, "document.getElementById('message').className === 'error'")
    message = page.text_content("#message")
    assert "process_noise" in message and "outside" in message and "\n" not in message
    assert request(daemon.control, {"cmd": "get"})["params"]["process_noise"] == pytest.approx(expected)
    wait_for(lambda: daemon.status()["seq"] > seq + 5, what="the stream to go on")
    # mirror on and off from the page
    page.check("#mirror")
    wait_for(lambda: request(daemon.control, {"cmd": "get"})["params"]["mirror"] is True, what="mirror on")
    page.uncheck("#mirror")
    wait_for(lambda: request(daemon.control, {"cmd": "get"})["params"]["mirror"] is False, what="mirror off")
    request(daemon.control, {"cmd": "set", "params": {"process_noise": 0.1}})


ATTACK = """<!doctype html><title>another site</title>
<img id="cam" src="http://127.0.0.1:{port}/stream.mjpg">
<script>
const base = "http://127.0.0.1:{port}";
const shots = [
  fetch(base + "/api/recenter", {{method: "POST", mode: "no-cors", body: "{{}}"}}),
  fetch(base + "/api/set", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
        body: JSON.stringify({{params: {{process_noise: 999}}}})}}),
  fetch(base + "/api/state", {{mode: "cors"}}).then(r => r.text()),
];
Promise.allSettled(shots).then(r => {{ document.title = "done " + r.map(x => x.status).join(","); }});
</script>"""


def test_another_site_and_a_rebinding_name_are_refused(browser, daemon):
    """A page on another origin (another local port) posts to the daemon, embeds the preview and reads
    the state; a page reached by a foreign name resolving to 127.0.0.1 (DNS rebinding) asks too. The
    daemon refuses all of it and nothing changes."""
    html = ATTACK.format(port=daemon.view_port).encode()

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        wait_for(lambda: daemon.status()["view"]["streams"] == 0, what="no open preview")
        before = daemon.status()
        context = browser.new_context()
        pg = context.new_page()
        pg.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        wait_js(pg, "document.title.startsWith('done')")
        assert pg.evaluate("document.getElementById('cam').naturalWidth") == 0  # no camera image
        # DNS rebinding: the browser thinks it talks to rebind.test, which now resolves to 127.0.0.1
        response = pg.goto(f"http://{REBIND}:{daemon.view_port}/")
        assert response.status == 403 and "rebinding" in pg.content()
        state = pg.evaluate("fetch('/api/state').then(r => r.status)")
        posted = pg.evaluate("fetch('/api/recenter', {method: 'POST', body: '{}'}).then(r => r.status)")
        assert (state, posted) == (403, 403)
        context.close()
        after = daemon.status()
        assert after["neutral"] is None
        assert after["filter"]["process_noise"] == before["filter"]["process_noise"]
        assert after["view"]["encodes"] == before["view"]["encodes"]
        assert after["view"]["refused"] >= before["view"]["refused"] + 5
    finally:
        evil.shutdown()
        evil.server_close()
