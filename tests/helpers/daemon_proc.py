"""A posebridge command in a child process for tests, bound to OS-chosen ports (`tcp://127.0.0.1:0`, the
live page on `127.0.0.1:0`) and asked which ports it got, instead of a port picked free beforehand that
another process may take first. The child's stderr is read on a thread from the start, so the log line
naming the addresses (`serve`: "publishing on tcp://127.0.0.1:N ..., control tcp://127.0.0.1:M, live
page http://127.0.0.1:K/"; `replay`: "replaying FILE on tcp://...") can be waited for and nothing it
printed is lost for the test's later checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.helpers.paths import REPO

_PUB = re.compile(r"(?:publishing on|replaying \S+ on) (tcp://[0-9.]+:\d+)")
_CTL = re.compile(r"control (tcp://[0-9.]+:\d+)")
_VIEW = re.compile(r"live page (http://[0-9.]+:\d+/)")
ANY = "tcp://127.0.0.1:0"  # --publish / --control: any free port, chosen by the OS when it binds
ANY_VIEW = "127.0.0.1:0"  # --view: the same for the live page


class Daemon:
    """`python -m posebridge ARGS` with stdout/stderr collected as they come; by default run from this
    checkout (`cwd` REPO, PYTHONPATH REPO)."""

    def __init__(self, args: list[str], cwd: Path = REPO, env: dict | None = None) -> None:
        if env is None:
            env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen([sys.executable, "-m", "posebridge", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._drain, args=(s, sink), daemon=True)
                         for s, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _drain(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def rss_mb(self) -> float:
        """The child's resident memory now, in MB (Linux /proc; NaN when it is not there)."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except FileNotFoundError:
            return float("nan")
        kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
        return float("nan") if kb is None else kb / 1024

    def _start_line(self, timeout: float) -> str:
        """The child's start-up log line (the one naming the publisher's address)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.err):
                if _PUB.search(line):
                    return line
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the readers catch up with what it printed last
                if not any(_PUB.search(line) for line in self.err):
                    raise AssertionError(f"exited {self.proc.returncode} before binding: "
                                         f"{''.join(self.err)[-1500:]}")
            time.sleep(0.02)
        raise AssertionError(f"no address logged within {timeout:g} s: {''.join(self.err)[-1500:]}")

    def addresses(self, timeout: float = 120.0) -> tuple[str, str | None]:
        """(publisher address, control address or None) from the child's start-up log line."""
        line = self._start_line(timeout)
        ctl = _CTL.search(line)
        return _PUB.search(line).group(1), ctl.group(1) if ctl else None

    def view_url(self, timeout: float = 120.0) -> str:
        """The live page's URL (`serve --view`) from the child's start-up log line."""
        line = self._start_line(timeout)
        view = _VIEW.search(line)
        assert view, f"no live page in the start-up line: {line}"
        return view.group(1)

    def output(self) -> str:
        """What the child printed so far, stdout then stderr."""
        return "".join(self.out) + "".join(self.err)

    def finish(self, timeout: float = 120.0) -> tuple[int, str, str]:
        """Wait for the exit (killed after `timeout`); (exit code, stdout, stderr)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._readers:
            t.join(timeout=10)
        return self.proc.returncode, "".join(self.out), "".join(self.err)

    def stop(self, timeout: float = 30.0) -> str:
        """SIGTERM if still running, then its stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.finish(timeout)[2]

    def kill(self) -> None:
        """SIGKILL if still running (no goodbye on its sockets), and wait for it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish(30)
