"""The suite's own rules (tests/conftest.py) can fail: under CI=true a skip is a failure naming its
reason; an exception in a helper thread fails its test; each test gets its own POSEBRIDGE_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

SELF = "tests/suite/test_suite_rules.py"


def test_a_missing_requirement():
    """Skips only when the rule tests below run it in a child pytest."""
    if os.environ.get("PB_SUITE_SELFTEST") == "skip":
        pytest.skip("needs ../shared/nothing-here (research data not present)")
    if os.environ.get("PB_SUITE_SELFTEST") == "thread":
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()


def child(mode: str, ci: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PB_SUITE_SELFTEST=mode, CI=ci)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"{SELF}::test_a_missing_requirement"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(os.environ.get("PB_SUITE_SELFTEST") is not None, reason="inside the child run")
def test_a_skip_fails_under_ci_naming_the_reason_and_stays_a_skip_elsewhere():
    ci = child("skip", "true")
    assert ci.returncode == 1, ci.stdout[-2000:]
    assert "CI=true: this test would be skipped, and CI must run it" in ci.stdout
    assert "needs ../shared/nothing-here" in ci.stdout
    dev = child("skip", "")
    assert dev.returncode == 0 and "1 skipped" in dev.stdout, dev.stdout[-2000:]


@pytest.mark.skipif(os.environ.get("PB_SUITE_SELFTEST") is not None, reason="inside the child run")
def test_an_exception_in_a_helper_thread_fails_the_test():
    run = child("thread", "")
    assert run.returncode == 1 and "ZeroDivisionError" in run.stdout, run.stdout[-2000:]


def test_each_test_has_its_own_posebridge_home(posebridge_home):
    from posebridge.paths import home

    assert home() == posebridge_home and posebridge_home != Path("~/.cache/posebridge").expanduser()
