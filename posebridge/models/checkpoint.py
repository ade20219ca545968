"""The native checkpoint: one file holding weights and `ModelMeta`, loaded with weights_only=True.

Layout (a plain dict of tensors and primitives, so `torch.load(weights_only=True)` accepts it):
    {"format": "posebridge-checkpoint", "version": 1, "meta": ModelMeta.to_dict(),
     "state_dict": {...}, "training": {...optional trainer state...}}
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from posebridge.errors import ConfigError, InputFileError
from posebridge.inference.meta import ModelMeta
from posebridge.models.network import PoseNet, build_model
from posebridge.validation import show

FORMAT = "posebridge-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, model: PoseNet, meta: ModelMeta, **extra: object) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "meta": meta.to_dict(), "state_dict": model.state_dict()}
    payload.update(extra)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_weights_only(path: str | os.PathLike, what: str = "checkpoint") -> object:
    """`torch.load(weights_only=True)` with every failure as one InputFileError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, f"{what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on bad bytes (EOFError, KeyError, Unpickling...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Weights only load failed" in first:  # torch's advice to disable weights_only is not ours to give
            first = "not a weights-only torch file (posebridge never unpickles arbitrary objects)"
        raise InputFileError(path, f"not a readable {what} (truncated or wrong format): {first}") from None


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw payload, validated; every failure is an InputFileError naming the file."""
    payload = load_weights_only(path, "checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputFileError(path, f"not a posebridge checkpoint (no '{FORMAT}' header); import it first")
    version = payload.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InputFileError(path, f"checkpoint version {show(version)} is not a version number")
    if version > VERSION:
        raise InputFileError(path, f"checkpoint version {version} is newer than this posebridge")
    if not isinstance(payload.get("meta"), dict) or not isinstance(payload.get("state_dict"), dict):
        raise InputFileError(path, "checkpoint has no 'meta' map or no 'state_dict'")
    return payload


def load_checkpoint(path: str | os.PathLike) -> tuple[PoseNet, ModelMeta]:
    """Build the network the checkpoint describes and load its weights (eval mode, CPU)."""
    payload = read_checkpoint(path)
    try:
        meta = ModelMeta.from_dict(payload["meta"])
    except ConfigError as exc:
        raise InputFileError(path, f"bad model metadata: {exc}") from None
    try:
        model = build_model(meta.backbone, meta.bins, box_head=meta.box_head)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputFileError(path, f"checkpoint does not match its metadata: {first}") from None
    return model.eval(), meta
