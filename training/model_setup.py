"""A run's network from its config: the bins, the seed's Xavier init, pretrained or fine-tune weights,
the input-size check, and the metadata written into every checkpoint."""

from __future__ import annotations

import logging

import torch
from torch import nn

from posebridge.errors import ConfigError, InputFileError
from posebridge.inference.meta import ANGLES, CropSpec, ModelMeta
from posebridge.models.bins import BinSpec
from posebridge.models.network import PoseNet, build_model
from training.config import TrainConfig
from training.data import PoseDataset
from training.transforms import Transform

log = logging.getLogger("training")


def bins_from_config(cfg: TrainConfig) -> dict[str, BinSpec]:
    m = cfg.model
    return {a: BinSpec(m.num_bins, m.bin_width, m.bin_low, "center") for a in ANGLES}


def xavier_init(module: nn.Module) -> None:
    """The seed's Xavier initialisation of every convolution and linear layer (biases zero)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def load_pretrained(model: PoseNet, path: str) -> int:
    """Copy every tensor of a local torchvision ImageNet state_dict whose name and shape match
    (the classifier `fc.*` / `classifier.6.*` never do). Returns how many were loaded."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputFileError(path, "pretrained weight file not found") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user-input error
        raise InputFileError(path, f"not a readable torch state_dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise InputFileError(path, f"no tensor matches the {model.backbone_name} trunk")
    model.load_state_dict(matched, strict=False)
    return len(matched)


def make_model(cfg: TrainConfig) -> PoseNet:
    model = build_model(cfg.model.backbone, bins_from_config(cfg), box_head=cfg.model.box_head)
    if cfg.model.init == "xavier":
        xavier_init(model)
    if cfg.model.pretrained:
        # an ImageNet file fills the trunk (heads keep their init); a posebridge checkpoint (its
        # "state_dict" entry) with the same heads fills everything, i.e. fine-tuning
        n = load_pretrained(model, cfg.model.pretrained)
        log.info("pretrained init: %d tensors from %s", n, cfg.model.pretrained)
    return model


def check_input_size(model: PoseNet, size: int, device: torch.device) -> None:
    """Fail early, naming the field, when the backbone cannot take this input size (AlexNet < 63 px)."""
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size, device=device))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"model.input_size: {size} is too small for {model.backbone_name} "
                          f"({first})") from None
    finally:
        model.train(was_training)


def make_meta(cfg: TrainConfig, dataset: PoseDataset | None = None) -> ModelMeta:
    t = Transform.from_config(cfg, train=False)
    crop = CropSpec(protocol=cfg.model.crop_protocol, margin=round(t.effective_margin(), 4))
    return ModelMeta(
        name=cfg.model.name or cfg.run.name,
        backbone=cfg.model.backbone,
        bins=bins_from_config(cfg),
        input_size=cfg.model.input_size,
        crop=crop,
        provenance={"source": "trained with posebridge training.train", "notes": f"run {cfg.run.name}"},
        extra={"train_dataset": cfg.data.train, "train_resize": cfg.resize,
               "loss": cfg.loss.kind, "train_samples": len(dataset) if dataset is not None else 0,
               "box_head": cfg.model.box_head},
    )
