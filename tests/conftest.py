"""Shared test helpers. `../shared` (research data beside the repo) is optional: tests that need it
skip with the missing path named."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(REPO.parent / "shared")


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/{'/'.join(parts)} (research data not present)")
    return path


@pytest.fixture
def shared():
    return shared_path
