"""Where things are, for every test: the repository, the test data (tests/fixtures, tests/vectors), the
demo portrait, and the research data beside the repository (../shared, optional for a developer)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
VECTORS = REPO / "tests" / "vectors"
SYNTHETIC_FACE = FIXTURES / "synthetic_face_112.png"  # a committed 112x112 synthetic face crop
PORTRAIT = REPO / "examples" / "demo" / "astronaut.jpg"  # the demo's public-domain portrait
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/{'/'.join(parts)} (research data not present)")
    return path
