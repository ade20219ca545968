"""Shipping a trained run: a trainer checkpoint copied without its optimizer state (optionally fp16)."""

from __future__ import annotations

from pathlib import Path

from posebridge.models.checkpoint import load_checkpoint, save_checkpoint


def export_weights(src: str | Path, dst: str | Path, half: bool = False) -> Path:
    """Copy a trainer checkpoint without its optimizer state (optionally fp16 weights) for shipping."""
    model, meta = load_checkpoint(src)
    if half:
        model = model.half()
    meta.extra = {**meta.extra, "exported_from": Path(src).name, "fp16": half}
    return save_checkpoint(dst, model, meta)
