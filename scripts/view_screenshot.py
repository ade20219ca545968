"""Take the live page's screenshot for the docs (docs/view.png): `posebridge serve --view` on a clip in a
subprocess, Debian's Chromium driven by Playwright (posebridge[dev]; never `playwright install`).

    .venv/bin/python scripts/view_screenshot.py [--source examples/demo/head-turn.mp4] [--out docs/view.png]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default=str(REPO / "examples" / "demo" / "head-turn.mp4"))
    p.add_argument("--out", default=str(REPO / "docs" / "view.png"))
    p.add_argument("--after", type=float, default=9.0, help="seconds of stream before the screenshot")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    from playwright.sync_api import sync_playwright

    from posebridge.output.ports import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "posebridge", "serve", "--source", args.source, "--loop",
                             "--view", f"127.0.0.1:{port}", "--publish", f"tcp://127.0.0.1:{free_port()}",
                             "--control", f"tcp://127.0.0.1:{free_port()}"], cwd=REPO)
    try:
        time.sleep(3.0)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            time.sleep(args.after)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
