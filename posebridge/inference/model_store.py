"""Where models live and how a name becomes files: packaged with posebridge (`posebridge/assets/`) or in
the per-user cache (`posebridge.paths.models_dir()`). A model is `<name>.onnx` (what ONNX Runtime runs:
the runtime needs nothing else) and/or `<name>.pt` (a PyTorch checkpoint, for the `[torch]` backends,
export and training). `find_model` turns a path, a name or None (the default model) into `ModelFiles`.
Installing models (import, pull, export) is in posebridge.models.install.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from posebridge import paths
from posebridge.errors import InputFileError, PoseBridgeError

log = logging.getLogger(__name__)

ASSETS = paths.ASSETS
DEFAULT_PACKAGED = "posebridge-small"
DEFAULT_CACHED = "whenet"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ONNX_SUFFIX = ".onnx"
CHECKPOINT_SUFFIX = ".pt"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".pkl")


@dataclass(frozen=True)
class ModelFiles:
    """The files of one model: the ONNX graph and/or the PyTorch checkpoint (either may be None)."""

    name: str
    onnx: Path | None
    checkpoint: Path | None
    where: str  # "packaged", "cache" or "path"

    @property
    def path(self) -> Path:
        """The file a user would name: the ONNX graph when there is one, else the checkpoint."""
        return self.onnx or self.checkpoint  # type: ignore[return-value]


def home() -> Path:
    return paths.home()


def models_dir() -> Path:
    return paths.models_dir()


def _collect(folder: Path, where: str) -> dict[str, ModelFiles]:
    if not folder.is_dir():
        return {}
    names = sorted({p.stem for p in folder.iterdir() if p.suffix in (ONNX_SUFFIX, CHECKPOINT_SUFFIX)})
    out = {}
    for name in names:
        onnx, pt = folder / f"{name}{ONNX_SUFFIX}", folder / f"{name}{CHECKPOINT_SUFFIX}"
        out[name] = ModelFiles(name, onnx if onnx.is_file() else None, pt if pt.is_file() else None, where)
    return out


def packaged_models() -> dict[str, ModelFiles]:
    return _collect(ASSETS, "packaged")


def cached_models() -> dict[str, ModelFiles]:
    return _collect(models_dir(), "cache")


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise PoseBridgeError(f"--name: {name!r} is not a valid model name (letters, digits, '.', '_', '-')")
    return name


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or "/" in spec or spec.startswith(".") or spec.endswith(
        (ONNX_SUFFIX, *CHECKPOINT_SUFFIXES, ".h5"))


def find_model(spec: str | os.PathLike | None = None) -> ModelFiles:
    """The model for `spec`: a file path (.onnx or a checkpoint); a model name (user cache first, then
    the models packaged with posebridge); or, for None / "", the packaged `posebridge-small` when
    shipped, else the cached `whenet`. One-line errors name what is missing."""
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
    text = os.fspath(spec)
    if isinstance(spec, os.PathLike) or _looks_like_path(text) or Path(text).is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise InputFileError(path, "model file not found")
        if path.suffix == ONNX_SUFFIX:
            return ModelFiles(path.stem, path, None, "path")
        return ModelFiles(path.stem, None, path, "path")
    cached, packaged = cached_models(), packaged_models()
    if text in cached:
        return cached[text]
    if text in packaged:
        return packaged[text]
    known = sorted(set(cached) | set(packaged))
    hint = "; `posebridge models pull whenet` installs WHENet" if text == DEFAULT_CACHED else ""
    raise PoseBridgeError(f"--model: no model named {text!r} (installed: {', '.join(known) or 'none'}){hint}")


def resolve_model(spec: str | os.PathLike | None = None) -> Path:
    """The PyTorch checkpoint of a model (export, training and the `[torch]` backends need one)."""
    files = find_model(spec)
    if files.checkpoint is None:
        raise PoseBridgeError(f"--model: {files.name} has no PyTorch checkpoint ({files.path} is an ONNX "
                              "graph); the PyTorch backends and export need a .pt")
    return files.checkpoint


@dataclass
class ModelInfo:
    name: str
    where: str  # "cache" or "packaged"
    files: str  # "onnx+pt", "onnx" or "pt"
    backbone: str
    size_bytes: int
    source: str


def _describe(files: ModelFiles) -> tuple[str, str]:
    """(backbone, source) from the model's metadata, read without PyTorch when an ONNX file exists."""
    try:
        if files.onnx is not None:
            from posebridge.inference.onnx_backend import OnnxBackend

            meta = OnnxBackend(files.onnx).meta
            return meta.backbone, meta.provenance.get("source") or meta.provenance.get("upstream") or ""
        try:
            from posebridge.models.checkpoint import read_checkpoint
        except ImportError:
            return "?", "PyTorch checkpoint (install posebridge[torch] to read it)"
        meta_d = read_checkpoint(files.checkpoint)["meta"]
        prov = meta_d.get("provenance", {})
        return meta_d.get("backbone", "?"), prov.get("source") or prov.get("upstream") or ""
    except PoseBridgeError as exc:
        return "?", f"unreadable: {exc}"


def list_models() -> list[ModelInfo]:
    """Installed (cache) and packaged models; unreadable files are listed with their problem."""
    out = []
    for models in (cached_models(), packaged_models()):
        for name, files in models.items():
            kinds = "+".join(k for k, p in (("onnx", files.onnx), ("pt", files.checkpoint)) if p is not None)
            size = sum(p.stat().st_size for p in (files.onnx, files.checkpoint) if p is not None)
            backbone, source = _describe(files)
            out.append(ModelInfo(name, files.where, kinds, backbone, size, source))
    return out
