"""Per-angle loss and MAE of a run: the Meter that sums them over batches (training and validation) and
the validation pass over a loader in eval mode."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from posebridge.inference.meta import ANGLES
from posebridge.models.bins import BinSpec
from training.config import TrainConfig
from training.losses import box_loss, pose_loss


class Meter:
    """Sums of per-angle loss and absolute error over samples with a valid label."""

    def __init__(self) -> None:
        self.loss = dict.fromkeys(ANGLES, 0.0)
        self.err = dict.fromkeys(ANGLES, 0.0)
        self.n = dict.fromkeys(ANGLES, 0)
        self.total, self.batches = 0.0, 0
        self.box_err, self.box_n = torch.zeros(3), 0

    def add_box(self, err: torch.Tensor, n: int) -> None:
        self.box_err += err.cpu() * n
        self.box_n += n

    def add(self, total: torch.Tensor, parts: dict, angles: torch.Tensor) -> None:
        self.total += float(total.detach())
        self.batches += 1
        for i, a in enumerate(ANGLES):
            p = parts[a]
            k = int(p.valid.sum())
            if k:
                self.loss[a] += float(p.total.detach()) * k
                self.err[a] += float((p.pred[p.valid] - angles[:, i].to(p.pred.device)[p.valid]).abs().sum())
                self.n[a] += k

    def row(self, prefix: str) -> dict:
        out: dict[str, float] = {}
        for a in ANGLES:
            n = self.n[a]
            out[f"{prefix}_loss_{a}"] = self.loss[a] / n if n else math.nan
            out[f"{prefix}_mae_{a}"] = self.err[a] / n if n else math.nan
        maes = [out[f"{prefix}_mae_{a}"] for a in ANGLES if self.n[a]]
        out[f"{prefix}_loss"] = self.total / self.batches if self.batches else math.nan
        out[f"{prefix}_mae"] = float(np.mean(maes)) if maes else math.nan
        if self.box_n:  # box head: mean |error| of dx, dy (fractions of the crop side) and log scale
            for name, e in zip(("dx", "dy", "dlogs"), (self.box_err / self.box_n).tolist(), strict=True):
                out[f"{prefix}_box_{name}"] = e
        return out


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, bins: dict[str, BinSpec], cfg: TrainConfig,
             device: torch.device, prefix: str = "val", progress: bool = False) -> dict:
    """Per-angle loss and MAE of `model` (eval mode) over a loader of View items."""
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    meter = Meter()
    for batch in tqdm(loader, desc=prefix, leave=False, disable=not progress):
        x, y = batch["image"].to(device), batch["angles"]
        outputs = model(x, with_box=cfg.model.box_head)
        total, parts = pose_loss(outputs, y.to(device), bins, cfg.loss.kind, cfg.loss.alpha,
                                 cfg.loss.target, cfg.loss.soft_sigma, tuple(cfg.loss.weights))
        if cfg.model.box_head:
            _, err = box_loss(outputs[3], batch["box"])
            meter.add_box(err, len(x))
        meter.add(total, parts, y)
    model.train(was_training)
    return meter.row(prefix)
