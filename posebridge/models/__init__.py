"""Head-pose networks: backbones with three binned heads, their metadata and checkpoints."""

from posebridge.models.bins import BinSpec, angle_to_bin, decode
from posebridge.models.meta import CropSpec, ModelMeta
from posebridge.models.network import BACKBONES, PoseNet, build_model

__all__ = [
    "BACKBONES",
    "BinSpec",
    "CropSpec",
    "ModelMeta",
    "PoseNet",
    "angle_to_bin",
    "build_model",
    "decode",
]
