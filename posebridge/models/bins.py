"""Angle bins in PyTorch: logits -> angles (inside exported graphs and in training) and angles -> bins
(training targets). The bin layout itself, `BinSpec`, and the NumPy reference decoder live in
posebridge.inference.bin_spec."""

from __future__ import annotations

import torch

from posebridge.inference.bin_spec import OFFSETS, BinSpec

__all__ = ["OFFSETS", "BinSpec", "angle_to_bin", "bin_angles", "decode"]


def bin_angles(spec: BinSpec, device: torch.device | str | None = None) -> torch.Tensor:
    """Angle (degrees) that each bin decodes to, shape (num_bins,)."""
    k = torch.arange(spec.num_bins, dtype=torch.float32, device=device)
    return spec.low + spec.width * (k + (0.5 if spec.offset == "center" else 0.0))


def decode(logits: torch.Tensor, spec: BinSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax expectation and spread over the bins.

    logits: (..., num_bins). Returns (angle, std) in degrees, each of shape (...).
    """
    if logits.shape[-1] != spec.num_bins:
        raise ValueError(f"logits have {logits.shape[-1]} bins, spec has {spec.num_bins}")
    p = torch.softmax(logits.float(), dim=-1)
    angles = bin_angles(spec, logits.device)
    mean = (p * angles).sum(-1)
    var = (p * (angles - mean.unsqueeze(-1)) ** 2).sum(-1)
    return mean, var.clamp_min(0.0).sqrt()


def angle_to_bin(angle: torch.Tensor, spec: BinSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin index of each angle and a mask of angles inside [low, high).

    Indices of out-of-range angles are clamped so they can be gathered safely; use the mask.
    """
    idx = torch.floor((angle - spec.low) / spec.width).long()
    valid = (idx >= 0) & (idx < spec.num_bins) & torch.isfinite(angle)
    return idx.clamp(0, spec.num_bins - 1), valid
