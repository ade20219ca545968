"""The angle-bin layout, `BinSpec`, shared by the run-time and training, and its NumPy decoder.

A head classifies its angle into `num_bins` bins of `width` degrees starting at `low`. The angle of
bin k is `low + width * k` for the "left" convention (HopeNet and WHENet were trained that way) or
`low + width * (k + 0.5)` for "center" (models trained by posebridge). Decoding is the softmax
expectation over bin angles; the spread (softmax standard deviation, degrees) is the uncertainty.
Exported models decode inside their graph (posebridge.models.export); `decode` here is the NumPy
reference, and posebridge.models.bins has the PyTorch version used in training and export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

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

    def angles(self) -> np.ndarray:
        """Angle (degrees) that each bin decodes to, shape (num_bins,), float32."""
        shift = 0.5 if self.offset == "center" else 0.0
        k = np.arange(self.num_bins, dtype=np.float32)
        return (self.low + self.width * (k + shift)).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BinSpec:
        return cls(**d)


def decode(logits: np.ndarray, spec: BinSpec) -> tuple[np.ndarray, np.ndarray]:
    """Softmax expectation and spread over the bins. logits: (..., num_bins) -> (angle, std) in degrees."""
    logits = np.asarray(logits, dtype=np.float32)
    if logits.shape[-1] != spec.num_bins:
        raise ValueError(f"logits have {logits.shape[-1]} bins, spec has {spec.num_bins}")
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    angles = spec.angles()
    mean = (p * angles).sum(-1)
    var = (p * (angles - mean[..., None]) ** 2).sum(-1)
    return mean, np.sqrt(np.maximum(var, 0.0))
