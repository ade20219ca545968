"""Training configuration: nested dataclasses filled from a TOML file plus `--set key=value` overrides,
by the loader the daemon uses too (posebridge.tomlconfig).

Every key is checked: an unknown section or key, or a value of the wrong type, raises `ConfigError`
naming the field (and the file). `data.options` and `eval.datasets` are free-form tables handed to the
dataset factories, which check their own keys.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from posebridge.errors import ConfigError
from posebridge.tomlconfig import apply, apply_overrides, dump_toml, load_toml, parse_value

__all__ = ["TrainConfig", "apply_overrides", "dump_toml", "from_dict", "load_config", "parse_value",
           "validate"]


@dataclass
class ModelConfig:
    backbone: str = "resnet50"
    input_size: int = 224
    num_bins: int = 66  # the same bin layout for yaw, pitch and roll; bin centres ("center" offset)
    bin_width: float = 3.0
    bin_low: float = -99.0
    init: str = "xavier"  # "xavier" (the seed) or "default" (PyTorch's own init)
    pretrained: str = ""  # a local torchvision ImageNet state_dict file (.pth); never downloaded
    crop_protocol: str = "loose"  # recorded in the checkpoint: "loose" (margin around a box) or "3ddfa"
    name: str = ""  # model name in the checkpoint metadata (default: the run name)
    box_head: bool = False  # also predict where the face's ROI is relative to the crop (for tracking)


@dataclass
class DataConfig:
    train: str = "w300lp"  # a registered dataset name (training.data.DATASETS)
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of that dataset's factory
    val_fraction: float = 0.1  # held out from the training data, split by source group
    val: str = ""  # optional separate validation dataset name (then val_fraction is unused)
    val_options: dict[str, Any] = field(default_factory=dict)
    repeat: int = 1  # pass over the training items this many times per epoch (tiny data sets)
    num_workers: int = 0
    # preprocessing (the seed: loose crop with random margin, resize 240, random crop 224)
    margin_min: float = 0.2  # HopeNet's k: landmark box loosened by a random k in [min, max]
    margin_max: float = 0.4
    resize: int = 0  # crop resized to this, then a random (train) / centre (test) crop of input_size;
    #                  0 means round(input_size * 240 / 224) as in the seed; set = input_size for none
    flip: float = 0.5  # probability of a horizontal flip (negates yaw and roll)
    blur: float = 0.05  # probability of a Gaussian blur
    scale_jitter: float = 0.0  # random crop-box scale in [1 - s, 1 + s] (pre-cropped data)
    shift_jitter: float = 0.0  # random crop-box shift up to this fraction of its side
    shift_jitter_y: float = -1.0  # the vertical shift's own limit; < 0: the same as shift_jitter
    color_jitter: float = 0.0  # random brightness/contrast factor in [1 - c, 1 + c]
    rotate_deg: float = 0.0  # random in-plane rotation in [-r, r] degrees; the labels turn with it exactly
    rotate_p: float = 1.0  # probability that a sample is rotated at all (rotate_deg > 0)
    rotate_decoy_p: float = 0.0  # probability of decoy corners: blank what a turn by another random angle
    #                              would uncover (black), on any sample, so corners do not tell the roll
    rotate_circle_p: float = 0.0  # > 0: every turned crop, and other crops with this probability, black
    #                               outside the inscribed circle (hides where a turned image ends)
    rotate_max_tilt_deg: float = 0.0  # > 0: turn only crops whose |yaw| and |pitch| are below this (their
    #                                   roll label turns the same in every Euler convention)
    rotate_min_deg: float = 0.0  # > 0: the turn's size is drawn from [min, r] (either sign): show large
    #                              roll without adding more small turns to what the crops already have
    rotate_border: str = "constant"  # fills the corners a rotation uncovers: "constant" (black) or
    #                                  "replicate" (edge pixels); never a reflection (mirrored faces)
    augment: bool = True  # False: training uses the test-time transform (overfit checks)


@dataclass
class LossConfig:
    kind: str = "multi"  # "multi" (CE + alpha * MSE), "cls" (CE only) or "reg" (MSE only)
    alpha: float = 1.0  # weight of the MSE on the softmax expectation
    target: str = "hard"  # "hard" (one bin) or "soft" (Gaussian over bin centres, sigma degrees)
    soft_sigma: float = 3.0
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # yaw, pitch, roll
    box_weight: float = 1.0  # weight of the box head's smooth-L1 loss (model.box_head)
    flip_consistency: float = 0.0  # > 0: half of each batch is paired with its mirror image and the squared
    #                                difference of (yaw, pitch, roll) from (-yaw', pitch', -roll') is added


@dataclass
class OptimConfig:
    optimizer: str = "adam"  # "adam", "adamw" or "sgd"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    batch_size: int = 16
    epochs: int = 25  # the seed trained 150
    schedule: str = "none"  # "none", "step" or "cosine" (per step, over all epochs)
    step_epochs: int = 10  # step schedule: multiply lr by gamma every step_epochs
    gamma: float = 0.1
    warmup_steps: int = 0
    max_steps_per_epoch: int = 0  # 0 = the whole epoch; CI smoke runs use 1 or 2
    time_budget_min: float = 0.0  # > 0: stop after this many minutes of training (then validate and
    #                               save) and run the LR schedule on elapsed time (not bit-reproducible)
    grad_clip: float = 0.0


@dataclass
class RunConfig:
    name: str = "run"
    out_dir: str = "runs/run"
    seed: int = 0
    num_threads: int = 0  # torch.set_num_threads on CPU; 0 leaves PyTorch's default
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1"
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    channels_last: bool = False  # NHWC model and batches (MobileNetV3 trains ~1.35x faster on CPU)
    compile: bool = False  # torch.compile the training forward/backward (needs a C++ compiler on CPU)
    deterministic: bool = True
    checkpoint_every: int = 1  # write last.pt every N epochs (and always at the end)
    progress: bool = True  # tqdm bars
    log_every: int = 0  # > 0: also log a line every N steps (useful in log files, with progress=false)
    val_every: int = 1
    stop_after: int = 0  # > 0: end this invocation after N epochs (continue later with --resume)
    pause_file: str = ""  # while this file exists, training waits before its next step (timing runs)
    snapshot_every: int = 0  # > 0: also keep the weights (no optimizer) every N epochs in snapshots/


@dataclass
class EvalConfig:
    # test sets evaluated after training by training.study / training.evaluate: name -> options table,
    # e.g. {aflw2000 = {root = "../shared/data/aflw2000-dev"}}
    datasets: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def resize(self) -> int:
        return self.data.resize or round(self.model.input_size * 240 / 224)


def from_dict(d: dict, base: TrainConfig | None = None) -> TrainConfig:
    cfg = base or TrainConfig()
    apply(cfg, d)
    return cfg


def load_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> TrainConfig:
    cfg = TrainConfig()
    if path:
        raw = load_toml(path)
        try:
            apply(cfg, raw)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    apply_overrides(cfg, list(overrides))
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    from posebridge.models.network import BACKBONES

    checks = [
        (cfg.model.backbone in BACKBONES, f"model.backbone: unknown {cfg.model.backbone!r} "
                                          f"(choose from {', '.join(BACKBONES)})"),
        (cfg.model.init in ("xavier", "default"), "model.init: expected 'xavier' or 'default'"),
        (cfg.model.crop_protocol in ("loose", "3ddfa"), "model.crop_protocol: expected 'loose' or '3ddfa'"),
        (cfg.model.input_size >= 32, "model.input_size: must be >= 32"),
        (cfg.loss.kind in ("multi", "cls", "reg"), "loss.kind: expected 'multi', 'cls' or 'reg'"),
        (cfg.loss.target in ("hard", "soft"), "loss.target: expected 'hard' or 'soft'"),
        (len(cfg.loss.weights) == 3, "loss.weights: expected three numbers (yaw, pitch, roll)"),
        (cfg.optim.optimizer in ("adam", "adamw", "sgd"), "optim.optimizer: expected adam, adamw or sgd"),
        (cfg.optim.schedule in ("none", "step", "cosine"), "optim.schedule: expected none, step or cosine"),
        (cfg.optim.batch_size >= 1, "optim.batch_size: must be >= 1"),
        (cfg.optim.epochs >= 1, "optim.epochs: must be >= 1"),
        (0.0 <= cfg.data.val_fraction < 1.0, "data.val_fraction: must be in [0, 1)"),
        (cfg.data.repeat >= 1, "data.repeat: must be >= 1"),
        (0.0 <= cfg.data.rotate_p <= 1.0, "data.rotate_p: must be in [0, 1]"),
        (0.0 <= cfg.data.rotate_decoy_p <= 1.0, "data.rotate_decoy_p: must be in [0, 1]"),
        (0.0 <= cfg.data.rotate_circle_p <= 1.0, "data.rotate_circle_p: must be in [0, 1]"),
        (0.0 <= cfg.data.rotate_max_tilt_deg <= 180.0, "data.rotate_max_tilt_deg: must be in [0, 180]"),
        (cfg.data.rotate_decoy_p == 0.0 or (cfg.data.rotate_deg > 0 and cfg.data.rotate_border == "constant"),
         "data.rotate_decoy_p: needs data.rotate_deg > 0 and rotate_border 'constant' (decoys are black)"),
        (0.0 <= cfg.data.rotate_min_deg <= max(cfg.data.rotate_deg, 0.0),
         "data.rotate_min_deg: must be in [0, data.rotate_deg]"),
        (cfg.data.rotate_border in ("constant", "replicate"),
         "data.rotate_border: expected 'constant' or 'replicate'"),
        (cfg.loss.flip_consistency >= 0.0, "loss.flip_consistency: must be >= 0"),
        (cfg.resize >= cfg.model.input_size, "data.resize: must be 0 or >= model.input_size"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
