"""Where things live on disk: the package's assets, the per-user cache, and (in a development checkout)
the research data in `../shared` beside the repository. The one place these paths are spelled out."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ASSETS = PACKAGE / "assets"
REPO = PACKAGE.parent  # the checkout (meaningful for an editable install only)
EXAMPLES = REPO / "examples"


def home() -> Path:
    """The per-user cache: `$POSEBRIDGE_HOME`, else `$XDG_CACHE_HOME/posebridge`, else
    `~/.cache/posebridge`. Installed models live under `models/`, derived files under `onnx/`."""
    if os.environ.get("POSEBRIDGE_HOME"):
        return Path(os.environ["POSEBRIDGE_HOME"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "posebridge"
    return Path.home() / ".cache" / "posebridge"


def models_dir() -> Path:
    return home() / "models"


def shared_dir() -> Path:
    """Research-only data and models beside the checkout (`../shared`, see its README); may not exist.
    `$POSEBRIDGE_SHARED` points elsewhere."""
    return Path(os.environ.get("POSEBRIDGE_SHARED") or REPO.parent / "shared")


def shared_data(*parts: str) -> Path:
    """A path under `../shared/data` (it may not exist: callers check and skip or explain)."""
    return shared_dir().joinpath("data", *parts)
