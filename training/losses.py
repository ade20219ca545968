"""The seed's multiple loss, per angle: cross-entropy on the bin + alpha x MSE on the expected angle,
optionally weighted per sample and angle (teacher agreement), plus the box head's smooth-L1 loss.

The expectation is `posebridge.models.bins.decode` (softmax over the bin angles of the checkpoint's
BinSpec, bin centres for models trained here), the same decoding inference uses. Variants: "cls"
(cross-entropy only), "reg" (MSE only). Targets: "hard" (the bin holding the angle) or "soft" (a
Gaussian over bin angles, sigma degrees). Missing labels (NaN) and angles outside the bins are masked
per angle: such a sample adds nothing to that head's loss or gradient. Flip consistency
(`loss.flip_consistency`): a batch of faces and their mirror images (`mirror_pairs`) whose decoded
angles should agree with yaw and roll negated (`flip_consistency_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from posebridge.inference.meta import ANGLES
from posebridge.models.bins import BinSpec, angle_to_bin, bin_angles, decode


@dataclass
class AngleLoss:
    """One head's loss terms, each averaged over the samples with a valid label (0 when none)."""

    total: torch.Tensor
    ce: torch.Tensor
    mse: torch.Tensor
    pred: torch.Tensor  # decoded angle per sample (degrees), detached
    valid: torch.Tensor  # bool mask of samples with a usable label


def soft_targets(angle: torch.Tensor, spec: BinSpec, sigma: float) -> torch.Tensor:
    """Gaussian label distribution over the bin angles, (N, num_bins), rows summing to 1."""
    centres = bin_angles(spec, angle.device)
    logits = -0.5 * ((centres[None, :] - angle[:, None]) / sigma) ** 2
    return torch.softmax(logits, dim=-1)


def angle_loss(logits: torch.Tensor, angle: torch.Tensor, spec: BinSpec, kind: str = "multi",
               alpha: float = 1.0, target: str = "hard", sigma: float = 3.0,
               weight: torch.Tensor | None = None) -> AngleLoss:
    """One head's loss; `weight` (N,) weighs each sample's terms (a weighted mean over valid samples)."""
    angle = angle.to(logits.device, torch.float32)
    finite = torch.isfinite(angle)
    safe = torch.where(finite, angle, torch.zeros_like(angle))
    idx, valid = angle_to_bin(safe, spec)
    valid = valid & finite
    pred, _ = decode(logits, spec)
    n = valid.sum()
    zero = logits.sum() * 0.0  # keeps the graph (DDP needs every head to take part)
    if n == 0:
        return AngleLoss(zero, zero, zero, pred.detach(), valid)
    lg, t = logits[valid].float(), safe[valid]
    w = None if weight is None else weight.to(logits.device, torch.float32)[valid]
    if target == "soft":
        ce_each = -(soft_targets(t, spec, sigma) * F.log_softmax(lg, dim=-1)).sum(-1)
    else:
        ce_each = F.cross_entropy(lg, idx[valid], reduction="none")
    mse_each = (pred[valid] - t) ** 2
    if w is None:
        ce, mse = ce_each.mean(), mse_each.mean()
    else:
        norm = w.sum().clamp_min(1e-6)
        ce, mse = (ce_each * w).sum() / norm, (mse_each * w).sum() / norm
    if kind == "cls":
        total = ce
    elif kind == "reg":
        total = mse
    else:
        total = ce + alpha * mse
    return AngleLoss(total, ce, mse, pred.detach(), valid)


def pose_loss(outputs: tuple[torch.Tensor, ...], angles: torch.Tensor, bins: dict[str, BinSpec],
              kind: str = "multi", alpha: float = 1.0, target: str = "hard", sigma: float = 3.0,
              weights: tuple[float, ...] = (1.0, 1.0, 1.0),
              sample_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, AngleLoss]]:
    """Sum over yaw, pitch, roll of weight x angle_loss. angles: (N, 3) degrees, NaN = missing;
    `sample_weights` (N, 3): per-sample, per-angle weights (None: all 1). `outputs` may carry a 4th
    tensor (the box head's), which is ignored here (see `box_loss`)."""
    parts = {
        name: angle_loss(out, angles[:, i], bins[name], kind, alpha, target, sigma,
                         None if sample_weights is None else sample_weights[:, i])
        for i, (name, out) in enumerate(zip(ANGLES, outputs[:3], strict=True))
    }
    total = sum(w * parts[a].total for w, a in zip(weights, ANGLES, strict=True))
    return total, parts


def box_loss(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The box head's smooth-L1 loss (beta 0.05) against the exact (dx, dy, log_scale) targets, and
    the mean absolute error per component (detached)."""
    target = target.to(pred.device, torch.float32)
    loss = F.smooth_l1_loss(pred.float(), target, beta=0.05)
    return loss, (pred.detach().float() - target).abs().mean(0)


def mirror_pairs(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                 box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's first half and its mirror images (yaw, roll and the box's dx negated): the same
    number of rows, half as many faces; row i + n is row i mirrored."""
    n = len(x) // 2
    sign = torch.tensor([-1.0, 1.0, -1.0], dtype=y.dtype)
    box_sign = torch.tensor([-1.0, 1.0, 1.0], dtype=box.dtype)
    x = torch.cat([x[:n], x[:n].flip(-1)])
    return (x, torch.cat([y[:n], y[:n] * sign]), torch.cat([w[:n], w[:n]]),
            torch.cat([box[:n], box[:n] * box_sign]))


def flip_consistency_loss(outputs: tuple[torch.Tensor, ...], bins: dict[str, BinSpec]) -> torch.Tensor:
    """Mean squared difference (degrees^2) between each face's decoded angles and its mirror image's
    (yaw and roll negated), over the pairs `mirror_pairs` built."""
    terms = []
    for out, a in zip(outputs[:3], ANGLES, strict=True):
        pred, _ = decode(out.float(), bins[a])
        n = len(pred) // 2
        mirrored = -pred[n:2 * n] if a in ("yaw", "roll") else pred[n:2 * n]
        terms.append(((pred[:n] - mirrored) ** 2).mean())
    return torch.stack(terms).mean()
