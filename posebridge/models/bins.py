"""Angle bins: the one place where logits become angles and angles become bins.

A head classifies its angle into `num_bins` bins of `width` degrees starting at `low`. The angle of
bin k is `low + width * k` for the "left" convention (HopeNet and WHENet were trained that way) or
`low + width * (k + 0.5)` for "center" (models trained by posebridge). Decoding is the softmax
expectation over bin angles; the spread (softmax standard deviation, degrees) is the uncertainty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

OFFSETS = ("left", "center")


@dataclass(frozen=True)
class BinSpec:
    num_bins: int = 66
    width: float = 3.0
    low: float = -99.0
    offset: str = "center"

    def __post_init__(self) -> None:
        if self.offset not in OFFSETS:
            raise ValueError(f"bin offset must be one of {OFFSETS}, got {self.offset!r}")

    @property
    def high(self) -> float:
        return self.low + self.width * self.num_bins

    def bin_angles(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Angle (degrees) that each bin decodes to, shape (num_bins,)."""
        k = torch.arange(self.num_bins, dtype=torch.float32, device=device)
        shift = 0.5 if self.offset == "center" else 0.0
        return self.low + self.width * (k + shift)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BinSpec:
        return cls(**d)


def decode(logits: torch.Tensor, spec: BinSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax expectation and spread over the bins.

    logits: (..., num_bins). Returns (angle, std) in degrees, each of shape (...).
    """
    if logits.shape[-1] != spec.num_bins:
        raise ValueError(f"logits have {logits.shape[-1]} bins, spec has {spec.num_bins}")
    p = torch.softmax(logits.float(), dim=-1)
    angles = spec.bin_angles(logits.device)
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
