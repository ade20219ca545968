"""HopeNet (Ruiz et al., 2018) `.pkl` -> `resnet50` PoseNet.

The published files (`hopenet_alpha1.pkl`, `hopenet_alpha2.pkl`, `hopenet_robust_alpha1.pkl`) are
plain ResNet-50 state_dicts with heads `fc_yaw`/`fc_pitch`/`fc_roll` (66 left-edge bins over
[-99, 99)) and an unused `fc_finetune` layer, which is dropped (and reported). They are read with
`torch.load(weights_only=True)`: tensors only, no arbitrary pickle.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from posebridge.downloads import sha256_file
from posebridge.errors import InputFileError
from posebridge.inference.meta import CropSpec, ModelMeta
from posebridge.models.checkpoint import load_weights_only
from posebridge.models.importers.upstream import upstream_meta
from posebridge.models.network import HOPENET_BINS, PoseNet, build_model

log = logging.getLogger(__name__)
UNUSED_PREFIXES = ("fc_finetune.",)
# HopeNet's AFLW2000 loader loosens the landmark box by 40% of its size on three sides (less below
# the chin); for a face-detector box a square with 30% margin on each side is the closest match.
HOPENET_CROP = CropSpec(protocol="loose", margin=0.3)


def hopenet_meta(name: str, sha256: str = "", source: str = "") -> ModelMeta:
    return upstream_meta(name, "resnet50", HOPENET_BINS, HOPENET_CROP, {
        "source": source,
        "upstream": "https://github.com/natanielruiz/deep-head-pose",
        "license": "Apache-2.0 (code); see upstream for the weights' terms",
        "paper": "Ruiz, Chong and Rehg, Fine-Grained Head Pose Estimation Without Keypoints, CVPRW 2018",
        "sha256": sha256,
        "converted_by": "posebridge.models.importers.hopenet",
    }, "left-edge bins: 3*E[k]-99, as HopeNet decodes")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    sd = load_weights_only(path, "PyTorch state_dict")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise InputFileError(path, "not a HopeNet state_dict (expected a dict of tensors)")
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in sd.items()}


def import_hopenet(path: str | os.PathLike, name: str = "hopenet") -> tuple[PoseNet, ModelMeta]:
    """Load a HopeNet state_dict into `build_model("resnet50")`; meta.extra['dropped_keys'] lists what
    was left out (the unused `fc_finetune.*`)."""
    path = Path(path)
    sd = read_state_dict(path)
    dropped = sorted(k for k in sd if k.startswith(UNUSED_PREFIXES))
    sd = {k: v for k, v in sd.items() if k not in dropped}
    model = build_model("resnet50", dict(HOPENET_BINS))
    expected = model.state_dict()
    for key, ref in expected.items():
        if key not in sd:
            if key.endswith("num_batches_tracked"):
                sd[key] = ref.clone()
                continue
            raise InputFileError(path, f"not a HopeNet state_dict: key '{key}' is missing")
        if tuple(sd[key].shape) != tuple(ref.shape):
            got, want = tuple(sd[key].shape), tuple(ref.shape)
            raise InputFileError(path, f"key '{key}' has shape {got}, expected {want}")
    extra_keys = sorted(set(sd) - set(expected))
    if extra_keys:
        raise InputFileError(path, f"not a HopeNet state_dict: unexpected key '{extra_keys[0]}'")
    model.load_state_dict(sd)
    meta = hopenet_meta(name, sha256=sha256_file(path), source=path.name)
    meta.extra["dropped_keys"] = dropped
    if dropped:
        log.info("%s: dropped unused %s", path, ", ".join(dropped))
    return model.eval(), meta
