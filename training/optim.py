"""The optimizer a config names and its learning-rate schedule (warm-up, cosine, step), per step."""

from __future__ import annotations

import math

import torch
from torch import nn

from training.config import TrainConfig


def lr_factor(cfg: TrainConfig, step: int, total_steps: int, steps_per_epoch: int,
              time_fraction: float = 0.0) -> float:
    """The schedule's multiplier at `step`; with a time budget, cosine follows the larger of the step
    fraction and the elapsed-time fraction."""
    o = cfg.optim
    if o.warmup_steps and step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    if o.schedule == "cosine":
        t = min(1.0, (step - o.warmup_steps) / max(1, total_steps - o.warmup_steps))
        t = max(t, min(1.0, time_fraction))
        return 0.5 * (1 + math.cos(math.pi * t))
    if o.schedule == "step":
        return o.gamma ** ((step // max(1, steps_per_epoch)) // max(1, o.step_epochs))
    return 1.0


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
