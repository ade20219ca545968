"""The suite's rules and its fixtures for every test (the helpers themselves are in tests/helpers).

- `../shared` (research data beside the repo) is optional for a developer: tests that need it skip with
  the missing path named. Under `CI=true` nothing may be missing: every skip (../shared, mono, Chromium,
  EGL, a model) is turned into a failure that carries the skip's reason in one line.
- Every test runs with its own `POSEBRIDGE_HOME` (never the user's real cache); the models already
  installed in the real cache are linked in read-only, so a test sees the same detectors as the user.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.paths import shared_path

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
_REAL_HOME = None


def _real_home() -> Path:
    global _REAL_HOME
    if _REAL_HOME is None:
        from posebridge.paths import home

        _REAL_HOME = home()
    return _REAL_HOME


_real_home()  # resolved before any test sets POSEBRIDGE_HOME


@pytest.fixture(autouse=True)
def posebridge_home(tmp_path_factory, monkeypatch) -> Path:
    """A fresh POSEBRIDGE_HOME per test, with the real cache's installed models linked in."""
    home = tmp_path_factory.mktemp("pbhome")
    models = _REAL_HOME / "models"
    if models.is_dir():
        (home / "models").mkdir()
        for entry in models.iterdir():
            (home / "models" / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    monkeypatch.setenv("POSEBRIDGE_HOME", str(home))
    return home


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure: a missing requirement must not pass as green."""
    outcome = yield
    rep = outcome.get_result()
    if IN_CI and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"CI=true: this test would be skipped, and CI must run it: {reason}"


@pytest.fixture
def shared():
    return shared_path
