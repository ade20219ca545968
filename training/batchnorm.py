"""BatchNorm statistics re-estimated with a model's final weights.

torchvision's MobileNetV3 uses BN momentum 0.01, so running statistics trail the weights by ~100 steps;
while the learning rate is high, eval-mode outputs collapse. A cumulative average over clean batches
with the final weights fixes the statistics exactly. Used by the study runner (`study_run`) and the
distillation (`distill`), each choosing its own batches.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def reestimate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> bool:
    """Reset every BatchNorm's running mean/variance and re-estimate them as a cumulative average over
    `batches` (input tensors on the model's device); the model is left in eval mode with its momenta
    restored. False (and no batch read) when the model has no BatchNorm."""
    bns = batchnorm_layers(model)
    if not bns:
        return False
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(batch)
    for m, mom in zip(bns, momenta, strict=True):
        m.momentum = mom
    model.eval()
    return True
