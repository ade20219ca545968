"""The metadata of an imported upstream network: ImageNet-normalised RGB input at 224 px, left-edge bins
decoded as upstream does, and where the weights came from."""

from __future__ import annotations

from posebridge.inference.bin_spec import BinSpec
from posebridge.inference.meta import IMAGENET_MEAN, IMAGENET_STD, CropSpec, ModelMeta


def upstream_meta(name: str, backbone: str, bins: dict[str, BinSpec], crop: CropSpec, provenance: dict,
                  bins_note: str) -> ModelMeta:
    """ModelMeta of an imported network; `provenance` names its source, paper, license and sha256."""
    return ModelMeta(name=name, backbone=backbone, bins=dict(bins), input_size=224, mean=IMAGENET_MEAN,
                     std=IMAGENET_STD, color="rgb", crop=crop, provenance=provenance,
                     extra={"bins_note": bins_note})
